"""Who may do what, and where (docs/ledger-and-requests.md, Types; docs/security.md).

Permissions come from roles (``role_permissions``); the role ``admin`` has every permission
and acts on every location. Everyone else acts only on locations whose department is one of
theirs (``user_departments``) or lies below one of theirs in the department tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from cloudwatcher.domain.errors import RequestError

ADMIN_ROLE = "admin"

_ACTOR = """
SELECT u.id, u.email, u.is_active,
       coalesce(array_agg(DISTINCT rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}')
           AS permissions,
       coalesce(bool_or(r.name = 'admin'), false) AS is_admin
FROM users u
LEFT JOIN user_roles ur ON ur.user_id = u.id
LEFT JOIN roles r ON r.id = ur.role_id
LEFT JOIN role_permissions rp ON rp.role_id = r.id
WHERE lower(u.email) = lower($1)
GROUP BY u.id
ORDER BY (u.email = $1) DESC
LIMIT 1
"""

# A location by name, with whether the user's departments (or their descendants) cover it.
_LOCATION_IN_SCOPE = """
WITH RECURSIVE scope AS (
    SELECT dept_id FROM user_departments WHERE user_id = $2
    UNION
    SELECT d.id FROM departments d JOIN scope s ON d.parent_id = s.dept_id
)
SELECT l.id, l.name, l.dept_id, l.is_active,
       ($3 OR l.dept_id IN (SELECT dept_id FROM scope)) AS in_scope
FROM locations l
WHERE l.name = $1
"""

_LOCATION_ID_IN_SCOPE = """
WITH RECURSIVE scope AS (
    SELECT dept_id FROM user_departments WHERE user_id = $2
    UNION
    SELECT d.id FROM departments d JOIN scope s ON d.parent_id = s.dept_id
)
SELECT $3 OR EXISTS (SELECT 1 FROM locations l WHERE l.id = $1 AND l.dept_id IN (SELECT dept_id FROM scope))
"""


@dataclass(frozen=True)
class Actor:
    """The user an envelope names, with the permissions of all their roles."""

    id: UUID
    email: str
    is_admin: bool
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return self.is_admin or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise RequestError("forbidden", f"{self.email} lacks the permission {permission!r}")


@dataclass(frozen=True)
class Location:
    id: UUID
    name: str
    dept_id: UUID


async def load_actor(connection: asyncpg.Connection, email: str) -> Actor:
    """The active user behind ``email``; ``unknown_user`` / ``inactive_user`` otherwise."""
    row = await connection.fetchrow(_ACTOR, email)
    if row is None:
        raise RequestError("unknown_user", f"no user with email {email!r}")
    if not row["is_active"]:
        raise RequestError("inactive_user", f"user {row['email']!r} is inactive")
    return Actor(
        id=row["id"],
        email=row["email"],
        is_admin=row["is_admin"],
        permissions=frozenset(row["permissions"]),
    )


async def user_id_by_email(connection: asyncpg.Connection, email: str) -> UUID | None:
    """Best effort, for recording who sent an envelope that failed before authorisation."""
    value: UUID | None = await connection.fetchval(
        "SELECT id FROM users WHERE lower(email) = lower($1) ORDER BY (email = $1) DESC LIMIT 1", email
    )
    return value


async def location_in_scope(connection: asyncpg.Connection, actor: Actor, name: str) -> Location:
    """Resolve a location name the actor may act on: ``not_found`` or ``forbidden`` otherwise."""
    row = await connection.fetchrow(_LOCATION_IN_SCOPE, name, actor.id, actor.is_admin)
    if row is None or not row["is_active"]:
        raise RequestError("not_found", f"no active location named {name!r}")
    if not row["in_scope"]:
        raise RequestError("forbidden", f"{actor.email} may not act on location {name!r} (outside their departments)")
    return Location(id=row["id"], name=row["name"], dept_id=row["dept_id"])


async def require_location_id_in_scope(
    connection: asyncpg.Connection, actor: Actor, location_id: UUID, what: str
) -> None:
    """The same department rule for things that carry a location (orders)."""
    allowed = await connection.fetchval(_LOCATION_ID_IN_SCOPE, location_id, actor.id, actor.is_admin)
    if not allowed:
        raise RequestError(
            "forbidden", f"{actor.email} may not act on {what} (its location is outside their departments)"
        )

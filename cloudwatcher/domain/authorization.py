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
from cloudwatcher.schema.sql import query

ADMIN_ROLE = "admin"

_ACTOR = query("authorization", "actor")
_LOCATION_IN_SCOPE = query("authorization", "location_in_scope")
_LOCATION_ID_IN_SCOPE = query("authorization", "location_id_in_scope")
USER_BY_EMAIL = query("authorization", "user_by_email")


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
    value: UUID | None = await connection.fetchval(USER_BY_EMAIL, email)
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

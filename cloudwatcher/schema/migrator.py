"""Apply ``migrations/NNNN_name.sql`` in order, each in its own transaction, once.

Several daemons may start together on an empty database: a session-level advisory lock
serialises them, and the ``schema_migrations`` table records what ran.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cloudwatcher.schema import queries
from cloudwatcher.schema.sql import query

_LOCK = query("migrations", "lock")
_UNLOCK = query("migrations", "unlock")
_CREATE_MIGRATIONS_TABLE = query("migrations", "create_migrations_table")
_APPLIED = query("migrations", "applied")
_RECORD = query("migrations", "record")
_NEWEST = query("migrations", "newest")

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x636C_6F75_6477_0001  # "cloudw" + 1, a fixed bigint key for pg_advisory_lock
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every migration shipped in the package, in version order."""
    folder = resources.files("cloudwatcher.schema") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


async def apply_migrations(connection: asyncpg.Connection | PoolConnectionProxy) -> list[Migration]:
    """Bring the schema up to date; return the migrations applied now (empty when current)."""
    await connection.execute(_LOCK, MIGRATION_LOCK_KEY)
    try:
        await connection.execute(_CREATE_MIGRATIONS_TABLE)
        done = {row["version"] for row in await connection.fetch(_APPLIED)}
        applied: list[Migration] = []
        for migration in available_migrations():
            if migration.version in done:
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    _RECORD,
                    migration.version,
                    migration.name,
                )
            applied.append(migration)
        return applied
    finally:
        await connection.execute(_UNLOCK, MIGRATION_LOCK_KEY)


async def schema_problem(connection: asyncpg.Connection | PoolConnectionProxy) -> str | None:
    """Why this database's schema does not match this program, or None when it does.

    For the read-only commands, which must never change the schema: reads only.
    """
    if not await connection.fetchval(queries.TABLE_EXISTS, "schema_migrations"):
        return "the database is not migrated; run `cloudwatcher migrate` (or start the daemon)"
    done = {row["version"] for row in await connection.fetch(_APPLIED)}
    known = {migration.version for migration in available_migrations()}
    newer = sorted(done - known)
    if newer:
        return (
            f"the database was migrated by a newer cloudwatcher (migrations {', '.join(map(str, newer))} "
            "are unknown here); upgrade this one"
        )
    missing = sorted(known - done)
    if missing:
        return (
            f"the database schema is older than this cloudwatcher (migrations {', '.join(map(str, missing))} "
            "not applied); run `cloudwatcher migrate`"
        )
    return None


async def schema_version(connection: asyncpg.Connection | PoolConnectionProxy) -> int | None:
    """The newest migration applied, or None on a database that was never migrated."""
    if not await connection.fetchval(queries.TABLE_EXISTS, "schema_migrations"):
        return None
    version: int | None = await connection.fetchval(_NEWEST)
    return version

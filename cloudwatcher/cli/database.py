"""The database a command works on: found (and an embedded server started) once, released on exit.

A command may have to start the embedded server; it then stops it again when it ends, unless a
daemon uses it by then (``db-url`` alone leaves it up: its URL is for later use). Read-only
commands never change the schema; the others migrate first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg

from cloudwatcher.cli.common import fail
from cloudwatcher.config import Settings
from cloudwatcher.database import EmbeddedPostgresError, resolve_database_url
from cloudwatcher.database.embedded import EmbeddedPostgres
from cloudwatcher.schema import apply_migrations, schema_problem

__all__ = [
    "database_url_for",
    "embedded_bin_dir",
    "resolve_and_track",
    "stop_servers_started_here",
    "with_database",
]

T = TypeVar("T")


class SchemaMismatch(Exception):
    """The schema is not the one this program knows; a read-only command says so and exits 1."""


# Embedded servers this command uses (each holds its shared "in use" lock while referenced
# here), and those of them it had to start: stopped again on exit unless another process uses them.
_servers_in_use: list[EmbeddedPostgres] = []
_started_servers: list[EmbeddedPostgres] = []


def database_url_for(settings: Settings, *, keep_running: bool = False) -> str:
    """The URL of the database in use. ``keep_running``: an embedded server this command had to
    start stays up afterwards (``db-url``, whose URL is for later use); otherwise it is stopped
    when the command ends, unless a daemon is using it by then."""
    try:
        return resolve_and_track(settings, keep_running=keep_running)
    except EmbeddedPostgresError as exc:
        fail(str(exc), 2)


def resolve_and_track(settings: Settings, *, keep_running: bool = False) -> str:
    """:func:`database_url_for` without the exit: raises :class:`EmbeddedPostgresError`."""
    url, server = resolve_database_url(settings)
    if server is not None and not keep_running:
        _servers_in_use.append(server)
        if server.started_here:
            _started_servers.append(server)
    return url


def stop_servers_started_here() -> None:
    """Stop the embedded servers this command started, each unless another process uses it."""
    while _servers_in_use:
        _servers_in_use.pop().release()
    while _started_servers:
        _started_servers.pop().stop_if_unused()


def with_database(
    settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]], *, read_only: bool = False
) -> T:
    """Run ``action`` on a connection to a current schema; connection errors exit 1 with a message.

    ``read_only`` commands never change the schema: on a database that is not migrated, or was
    migrated by a newer version, they say so and exit 1. The others migrate first.
    """
    url = database_url_for(settings)

    async def run() -> T:
        connection = await asyncpg.connect(url, timeout=30)
        try:
            if read_only:
                problem = await schema_problem(connection)
                if problem is not None:
                    raise SchemaMismatch(problem)
            else:
                await apply_migrations(connection)
            return await action(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except SchemaMismatch as exc:
        fail(str(exc), 1)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        fail(f"database error: {exc}", 1)


def embedded_bin_dir(settings: Settings) -> Path | None:
    """The embedded server's own client tools (pg_dump/pg_restore that match it), if in use."""
    if settings.database_url:
        return None
    from cloudwatcher.database.resolve import embedded_server

    return embedded_server(settings).bin_dir

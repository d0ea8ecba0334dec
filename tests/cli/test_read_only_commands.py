"""``status``, ``files``, ``check`` and ``db-url`` never change the schema: they say what is wrong and exit 1."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from tests.support.daemon_process import DaemonProcess

Daemon = Callable[..., DaemonProcess]
READ_ONLY = [("status",), ("status", "--json"), ("files",), ("files", "--json"), ("check",), ("db-url",)]


async def empty_the_database(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def tables(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return [row["tablename"] for row in rows]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
async def test_on_an_unmigrated_database_a_read_only_command_exits_1_and_creates_no_table(
    daemon: Daemon, database_url: str, command: tuple[str, ...]
) -> None:
    await empty_the_database(database_url)
    result = daemon().command(*command, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not migrated" in result.stderr and "cloudwatcher migrate" in result.stderr
    assert await tables(database_url) == []


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
async def test_on_a_schema_from_a_newer_version_a_read_only_command_exits_1_saying_so(
    daemon: Daemon, db: asyncpg.Connection, command: tuple[str, ...]
) -> None:
    await db.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')")
    result = daemon().command(*command, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "newer" in result.stderr and "9999" in result.stderr
    assert await db.fetchval("SELECT count(*) FROM schema_migrations WHERE version = 9999") == 1


async def test_on_an_older_schema_status_asks_for_migrate_and_applies_nothing(
    daemon: Daemon, db: asyncpg.Connection
) -> None:
    newest = await db.fetchval("SELECT max(version) FROM schema_migrations")
    await db.execute("DELETE FROM schema_migrations WHERE version = $1", newest)
    result = daemon().command("status", check=False)
    assert result.returncode == 1
    assert "older" in result.stderr and str(newest) in result.stderr
    assert await db.fetchval("SELECT count(*) FROM schema_migrations WHERE version = $1", newest) == 0


async def test_migrate_then_status_works(daemon: Daemon, database_url: str) -> None:
    await empty_the_database(database_url)
    d = daemon()
    assert d.command("migrate").returncode == 0
    result = d.command("status", "--json", check=False)
    assert result.returncode == 0, result.stderr
    assert "schema_migrations" in await tables(database_url)

"""Backups of a populated database, restored into a fresh one on the same real server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.database.backup import (
    BackupError,
    _major_version,
    _split_password,
    backup_database,
    find_client_tool,
    latest_backup,
    restore_database,
    run_scheduled_backup,
    seconds_until_next_backup,
)
from cloudwatcher.database.embedded import find_postgres_bin
from tests.conftest import TestServer as PgServer

NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def new_database(pg_server: PgServer) -> AsyncIterator[NewDatabase]:
    """Create empty databases (from template0) on the test server; dropped afterwards."""
    names: list[str] = []

    async def create() -> str:
        name = f"cw_restore_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(pg_server.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await admin.close()
        names.append(name)
        return pg_server.url_for(name)

    yield create
    admin = await asyncpg.connect(pg_server.admin_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def populate(db: asyncpg.Connection, devices: int = 3, files_per_device: int = 20) -> None:
    instance = await db.fetchval(
        "INSERT INTO instances (host, pid, version, watch_root) VALUES ('h', 1, 'test', '/srv') RETURNING id"
    )
    await db.executemany(
        "INSERT INTO users (email, name) VALUES ($1, $2)",
        [(f"user{i}@example.com", f"User {i}") for i in range(5)],
    )
    rows = []
    for device in range(devices):
        for n in range(files_per_device):
            path = f"dev{device}/requests/file{n}.json"
            rows.append(
                (
                    "request",
                    "local",
                    100 + n,
                    "local",
                    f"dev{device}",
                    path,
                    hashlib.sha256(path.encode()).hexdigest(),
                    1,
                    instance,
                )
            )
    await db.executemany(
        """INSERT INTO cloud_file_refs (file_type, cloud_provider, file_size_bytes, target, device_id,
                                        local_path, content_sha256, file_mtime_ns, claimed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        rows,
    )  # fmt: skip


async def row_counts(url: str) -> dict[str, int]:
    """Rows of every table in the current schema, partitions included."""
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1"""
        )
        return {t["relname"]: await connection.fetchval(f'SELECT count(*) FROM "{t["relname"]}"') for t in tables}
    finally:
        await connection.close()


async def test_backup_restores_into_a_fresh_database_with_identical_rows(
    db: asyncpg.Connection, database_url: str, new_database: NewDatabase, tmp_path: Path
) -> None:
    await populate(db)
    before = await row_counts(database_url)
    assert before["cloud_file_refs"] == 60 and before["users"] == 5

    file = tmp_path / "ledger.dump"
    await asyncio.to_thread(backup_database, database_url, file)
    assert file.read_bytes()[:5] == b"PGDMP"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["ledger.dump"]

    fresh = await new_database()
    await asyncio.to_thread(restore_database, fresh, file)
    assert await row_counts(fresh) == before
    restored = await asyncpg.connect(fresh)
    try:
        emails = await restored.fetch("SELECT email FROM users ORDER BY email")
        assert [row["email"] for row in emails] == [f"user{i}@example.com" for i in range(5)]
        # Defaults and constraints came back too, not just rows.
        with pytest.raises(asyncpg.CheckViolationError):
            await restored.execute(
                """INSERT INTO cloud_file_refs (file_type, cloud_provider, file_size_bytes, target,
                   device_id, local_path, content_sha256, file_mtime_ns) VALUES
                   ('request', 'local', 1, 'local', 'd', 'p', 'not-a-hash', 1)"""
            )
    finally:
        await restored.close()


async def test_restore_into_a_database_with_tables_is_refused(
    db: asyncpg.Connection, database_url: str, tmp_path: Path
) -> None:
    await populate(db, devices=1, files_per_device=2)
    file = tmp_path / "ledger.dump"
    await asyncio.to_thread(backup_database, database_url, file)
    before = await row_counts(database_url)
    with pytest.raises(BackupError, match="not empty"):
        await asyncio.to_thread(restore_database, database_url, file)
    assert await row_counts(database_url) == before


async def test_restore_refuses_a_file_that_is_not_a_backup(new_database: NewDatabase, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    fresh = await new_database()
    with pytest.raises(BackupError, match="not a pg_dump custom-format archive"):
        restore_database(fresh, bogus)
    with pytest.raises(BackupError, match="cannot read"):
        restore_database(fresh, tmp_path / "missing.dump")


async def test_backup_is_consistent_while_writers_commit(
    db: asyncpg.Connection, database_url: str, new_database: NewDatabase, tmp_path: Path
) -> None:
    """Each writer transaction adds one user and one instance; a consistent snapshot has as many of each."""
    await db.execute("SET cloudwatcher.audit = 'off'")
    stop = asyncio.Event()

    async def writer() -> int:
        connection = await asyncpg.connect(database_url)
        done = 0
        try:
            while not stop.is_set():
                async with connection.transaction():
                    await connection.execute("INSERT INTO users (email, name) VALUES ($1, 'w')", f"w{done}@example.com")
                    await asyncio.sleep(0.002)  # widen the window between the two inserts
                    await connection.execute(
                        "INSERT INTO instances (host, pid, version, watch_root) VALUES ('w', $1, 'v', '/')",
                        done,
                    )
                done += 1
        finally:
            await connection.close()
        return done

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.1)
    file = tmp_path / "during-writes.dump"
    await asyncio.to_thread(backup_database, database_url, file)
    stop.set()
    written = await task
    fresh = await new_database()
    await asyncio.to_thread(restore_database, fresh, file)
    counts = await row_counts(fresh)
    assert counts["users"] == counts["instances"]
    assert 0 < counts["users"] <= written


def test_scheduled_backups_keep_the_newest_and_leave_no_partial_files(database_url: str, tmp_path: Path) -> None:
    backup_dir = tmp_path / "backups"
    assert seconds_until_next_backup(backup_dir, 24) == 0.0
    # The embedded server's own client tools, as the daemon passes them for the embedded default.
    tools = find_postgres_bin() if os.environ.get("CLOUDWATCHER_TEST_DATABASE_URL") is None else None
    made = [run_scheduled_backup(database_url, backup_dir, keep=2, bin_dir=tools) for _ in range(3)]

    remaining = sorted(backup_dir.iterdir())
    assert remaining == made[1:]
    assert all(path.name.startswith("cloudwatcher-") and path.suffix == ".dump" for path in remaining)
    assert latest_backup(backup_dir) == made[-1]
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    assert 23 * 3600 < (seconds_until_next_backup(backup_dir, 24) or 0) <= 24 * 3600
    assert seconds_until_next_backup(backup_dir, 0) is None


def test_scheduled_backup_leaves_other_files_alone_and_removes_stale_partials(
    database_url: str, tmp_path: Path
) -> None:
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    mine = backup_dir / "before-upgrade.dump"
    mine.write_bytes(b"PGDMP manual")
    stale = backup_dir / ".partial-1-cloudwatcher-old.dump"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))

    run_scheduled_backup(database_url, backup_dir, keep=1)
    names = sorted(path.name for path in backup_dir.iterdir())
    assert names[0] == "before-upgrade.dump"
    assert len(names) == 2 and names[1].startswith("cloudwatcher-")


def test_a_failed_backup_leaves_nothing_behind(pg_server: PgServer, tmp_path: Path) -> None:
    missing = pg_server.url_for(f"no_such_db_{uuid.uuid4().hex[:8]}")
    with pytest.raises(BackupError, match="pg_dump failed"):
        backup_database(missing, tmp_path / "x.dump")
    assert list(tmp_path.iterdir()) == []


async def test_the_chosen_pg_dump_is_not_older_than_the_server(db: asyncpg.Connection, database_url: str) -> None:
    server_major = int(await db.fetchval("SHOW server_version_num")) // 10000
    assert _major_version(find_client_tool("pg_dump")) >= server_major
    if os.environ.get("CLOUDWATCHER_TEST_DATABASE_URL") is None:
        # The test server is the embedded one: its own bundled tools work too.
        assert _major_version(find_client_tool("pg_dump", find_postgres_bin())) == server_major


def test_an_explicit_bin_dir_without_the_tool_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump not found in"):
        backup_database("postgresql:///x", tmp_path / "x.dump", bin_dir=tmp_path)


def test_passwords_move_from_the_url_to_the_environment() -> None:
    url, env = _split_password("postgresql://app:p%40ss@db.example:5433/cw?sslmode=require")
    assert url == "postgresql://app@db.example:5433/cw?sslmode=require"
    assert env == {"PGPASSWORD": "p@ss"}
    url, env = _split_password("postgresql://app@/cw?host=/run/postgresql&password=x")
    assert url == "postgresql://app@/cw?host=/run/postgresql"
    assert env == {"PGPASSWORD": "x"}
    assert _split_password("host=/tmp dbname=cw") == ("host=/tmp dbname=cw", {})

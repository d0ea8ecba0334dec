"""Who the embedded server runs as and who connects to it: never ``nobody``, no folder opened to
everyone, a socket folder nobody else can plant, and the daemon's role is not a superuser.

The suite runs as root (as CI does), the case where the server runs as ``postgres``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.database import EmbeddedPostgres, EmbeddedPostgresError
from cloudwatcher.schema import apply_migrations
from tests.conftest import world_readable_tempdir


@pytest.fixture
def base() -> Iterator[Path]:
    folder = world_readable_tempdir("cloudwatcher-ownership-")
    try:
        yield folder
    finally:
        for data_dir in folder.rglob("PG_VERSION"):
            EmbeddedPostgres(data_dir.parent).stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


def test_the_daemon_connects_as_a_role_that_owns_its_database_and_is_no_superuser(base: Path) -> None:
    server = EmbeddedPostgres(base / "postgres")
    url = server.ensure_running()

    async def check() -> tuple[str, bool, str]:
        connection = await asyncpg.connect(url)
        try:
            await apply_migrations(connection)  # the role can build the whole schema
            row = await connection.fetchrow(
                "SELECT current_user AS who, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb AS powerful, "
                "pg_get_userbyid(d.datdba) AS owner FROM pg_roles r, pg_database d "
                "WHERE r.rolname = current_user AND d.datname = current_database()"
            )
            assert row is not None
            return row["who"], row["powerful"], row["owner"]
        finally:
            await connection.close()

    assert asyncio.run(check()) == ("cloudwatcher", False, "cloudwatcher")


def test_a_database_an_earlier_version_made_as_the_superuser_is_handed_over_to_the_role(base: Path) -> None:
    server = EmbeddedPostgres(base / "postgres")
    server.ensure_running()
    admin = server.superuser_url("cloudwatcher")
    setup = [
        "CREATE TYPE mood AS ENUM ('ok', 'bad')",
        "CREATE TABLE legacy (id serial PRIMARY KEY, m mood)",
        "CREATE VIEW legacy_view AS SELECT id FROM legacy",
        "CREATE FUNCTION legacy_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ]
    for sql in setup:
        asyncio.run(_fetch(admin, sql))
    asyncio.run(_fetch(server.superuser_url(), 'ALTER DATABASE cloudwatcher OWNER TO "postgres"'))
    server.stop()

    again = EmbeddedPostgres(base / "postgres")
    url = again.ensure_running()

    owners = asyncio.run(
        _fetch(
            admin,
            "SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname IN "
            "('legacy', 'legacy_view', 'legacy_id_seq') UNION ALL "
            "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'legacy_fn' UNION ALL "
            "SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'mood' UNION ALL "
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'cloudwatcher'",
        )
    )
    assert [row["owner"] for row in owners] == ["cloudwatcher"] * 6
    asyncio.run(_fetch(url, "ALTER TABLE legacy ADD COLUMN note text"))  # the role may migrate it


def test_a_socket_folder_someone_else_planted_is_refused_and_left_alone(base: Path) -> None:
    long_dir = base / ("deep-" * 20) / "postgres"  # too long for a socket path: the socket goes to /tmp
    server = EmbeddedPostgres(long_dir)
    socket_dir = server._socket_dir()
    assert socket_dir.parent == Path(tempfile.gettempdir())
    elsewhere = base / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    socket_dir.symlink_to(elsewhere)
    try:
        with pytest.raises(EmbeddedPostgresError, match="not a private folder"):
            server.ensure_running()
        assert socket_dir.is_symlink() and list(elsewhere.iterdir()) == []
        assert elsewhere.stat().st_mode & 0o777 == 0o755
    finally:
        socket_dir.unlink()


def _enters(account: str, folder: Path) -> bool:
    entered = subprocess.run(
        [
            "setpriv",
            f"--reuid={account}",
            f"--regid={account}",
            "--clear-groups",
            "sh",
            "-c",
            'cd -- "$1"',
            "sh",
            str(folder),
        ],
        capture_output=True,
        check=False,
    )
    return entered.returncode == 0


def test_a_data_folder_under_a_private_folder_is_reached_by_the_server_user_alone(base: Path) -> None:
    private = base / "private"
    private.mkdir(mode=0o700)  # root's own, like /root: the server user may not pass by mode
    server = EmbeddedPostgres(private / "state" / "postgres")

    server.ensure_running()

    assert private.stat().st_mode & 0o007 == 0  # never opened to everyone
    assert _enters("postgres", private / "state")
    assert not _enters("daemon", private)  # any other account stays out
    assert asyncio.run(_fetch(server.url(), "SELECT 1 AS one"))[0]["one"] == 1


def test_a_data_folder_the_server_user_cannot_reach_even_with_an_acl_is_refused(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudwatcher.database import search_acl

    def refuse(path: Path, uid: int) -> None:
        raise OSError(95, "Operation not supported", str(path))

    monkeypatch.setattr(search_acl, "grant_search", refuse)  # a filesystem without ACLs
    private = base / "private"
    private.mkdir(mode=0o700)
    server = EmbeddedPostgres(private / "state" / "postgres")

    with pytest.raises(EmbeddedPostgresError, match="cannot reach"):
        server.ensure_running()

    assert private.stat().st_mode & 0o777 == 0o700


def test_the_server_never_runs_as_nobody(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudwatcher.database import embedded

    real = embedded.pwd.getpwnam

    def without_postgres(name: str):  # type: ignore[no-untyped-def]
        if name == "postgres":
            raise KeyError(name)
        return real(name)

    monkeypatch.setattr(embedded.pwd, "getpwnam", without_postgres)
    with pytest.raises(EmbeddedPostgresError, match="no 'postgres' system user"):
        EmbeddedPostgres(base / "postgres")

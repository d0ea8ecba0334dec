"""Shared fixtures: one real PostgreSQL server per test session, one fresh database per test.

The server is the embedded one (the same code the daemon uses) unless
``CLOUDWATCHER_TEST_DATABASE_URL`` names another; each test gets its own database cloned
from a migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cloudwatcher.database import EmbeddedPostgres
from cloudwatcher.schema import apply_migrations
from tests.support.daemon_process import DaemonProcess

# One template per pytest-xdist worker: on a shared external server two workers must not drop
# and rebuild each other's template.
TEMPLATE = f"cloudwatcher_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@dataclass
class PgTestServer:
    admin_url: str  # a URL to a maintenance database on the server
    embedded: EmbeddedPostgres | None

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))


def world_readable_tempdir(prefix: str) -> Path:
    """A temp folder the embedded server's user can reach when tests run as root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


async def _create_template(server: PgTestServer) -> None:
    admin = await asyncpg.connect(server.admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await admin.close()
    template = await asyncpg.connect(server.url_for(TEMPLATE))
    try:
        await apply_migrations(template)
    finally:
        await template.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTestServer]:
    external = os.environ.get("CLOUDWATCHER_TEST_DATABASE_URL")
    if external:
        server = PgTestServer(admin_url=external, embedded=None)
        asyncio.run(_create_template(server))
        yield server
        return
    base = world_readable_tempdir("cloudwatcher-test-pg-")
    embedded = EmbeddedPostgres(
        base / "postgres",
        # Throwaway test data: durability is not under test here, speed is welcome.
        extra_settings={
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        },
    )
    embedded.ensure_running()
    server = PgTestServer(admin_url=embedded.superuser_url(), embedded=embedded)
    asyncio.run(_create_template(server))
    try:
        yield server
    finally:
        embedded.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database_url(pg_server: PgTestServer) -> Iterator[str]:
    """A fresh, fully migrated database for this test; dropped afterwards."""
    name = f"cw_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await asyncpg.connect(pg_server.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        finally:
            await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(pg_server.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    yield pg_server.url_for(name)
    asyncio.run(drop())


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on this test's database (what the daemon and the domain code take)."""
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=6)
    assert created is not None
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to this test's database."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def daemon(tmp_path: Path, database_url: str) -> Iterator[Callable[..., DaemonProcess]]:
    """Build (not start) daemon subprocesses on this test's database; all are stopped afterwards."""
    made: list[DaemonProcess] = []

    def make(**overrides: object) -> DaemonProcess:
        workdir = tmp_path / f"daemon{len(made)}"
        workdir.mkdir()
        process = DaemonProcess(workdir, database_url, **overrides)
        made.append(process)
        return process

    yield make
    for process in made:
        if process.process is not None:
            process.kill()


@pytest.fixture
def private_server() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test's own, which it may stop and start without disturbing others."""
    base = world_readable_tempdir("cloudwatcher-private-pg-")
    server = EmbeddedPostgres(base / "postgres", extra_settings={"fsync": "off"})
    server.ensure_running()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


# The name other test modules imported first.
TestServer = PgTestServer

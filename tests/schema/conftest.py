"""A database with no schema at all, for the migration tests (every other test gets the migrated
template from tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import PgTestServer


@pytest.fixture
async def empty_database_url(pg_server: PgTestServer) -> AsyncIterator[str]:
    name = f"cw_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server.admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url_for(name)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()

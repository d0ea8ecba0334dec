"""Fixtures for the domain tests: the example fleet company loaded, a watch root, and a
``Devices`` helper (tests/support/domain.py) that drops envelopes the way a field device does and
records them in the ledger the way the daemon does, then calls the domain API."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.domain import IngestContext, load_catalog_file
from tests.support.domain import EXAMPLE_CATALOG, Devices


@pytest.fixture
async def fleet(db: asyncpg.Connection) -> asyncpg.Connection:
    """The example fleet-maintenance company (examples/catalog.json) loaded."""
    await load_catalog_file(db, EXAMPLE_CATALOG)
    return db


@pytest.fixture
def watch_root(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    root.mkdir()
    return root


@pytest.fixture
def devices(pool: asyncpg.Pool, watch_root: Path, fleet: asyncpg.Connection) -> Devices:
    return Devices(pool, IngestContext(watch_root=watch_root, instance_id=None, max_request_bytes=64 * 1024))

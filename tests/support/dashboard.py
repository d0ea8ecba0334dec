"""The dashboard's app against a test database without the rest of the daemon, and ledger rows to
show in it: shared by the dashboard's API, token and browser tests (their fixtures live in
tests/daemon/http/dashboard/conftest.py)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from cloudwatcher.config import Settings
from cloudwatcher.daemon.ledger.store import retry_failed
from cloudwatcher.daemon.ops.status import StatusSnapshot, collect_status
from tests.support.http_app import start_app

TOKEN = "dash-token-5f1c"


@dataclass
class FakeMonitoring:
    """What add_dashboard_routes uses of the daemon's Monitoring."""

    settings: Settings
    pool: asyncpg.Pool

    async def status(self) -> StatusSnapshot:
        return await collect_status(self.pool, self.settings)

    async def health(self) -> tuple[bool, str]:
        return True, ""

    async def retry(self, ref_ids: list[str] | None) -> int:
        return await retry_failed(self.pool, None if ref_ids is None else [uuid.UUID(v) for v in ref_ids])


@dataclass
class Dashboard:
    base: str
    http: aiohttp.ClientSession
    settings: Settings
    token: str | None  # the configured http_token, which get() sends unless told otherwise

    async def get(self, path: str, *, token: str | None = None, expect: int = 200) -> Any:
        """GET with ``token`` as the bearer; None sends the configured one, "" sends none."""
        presented = self.token if token is None else token
        headers = {"Authorization": f"Bearer {presented}"} if presented else {}
        async with self.http.get(self.base + path, headers=headers) as response:
            assert response.status == expect, await response.text()
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()


Serve = Callable[..., Awaitable[Dashboard]]


async def add_ref(
    db: asyncpg.Connection,
    local_path: str,
    *,
    target: str = "mirror",
    status: str = "pending",
    device: str = "truck-1",
    content: bytes | None = None,
    file_type: str = "attachment",
    **columns: Any,
) -> uuid.UUID:
    """One ledger row, with the columns its status needs."""
    values: dict[str, Any] = {
        "target": target,
        "cloud_provider": "local",
        "device_id": device,
        "local_path": local_path,
        "file_type": file_type,
        "sync_status": status,
        "content_sha256": hashlib.sha256(content if content is not None else local_path.encode()).hexdigest(),
        "file_size_bytes": len(content if content is not None else local_path.encode()),
        "file_mtime_ns": 1,
    }
    if status == "synced":
        values.setdefault("uploaded_at", columns.pop("uploaded_at", None) or _now())
    if status == "uploading":
        values["lease_expires_at"] = _now()
    values.update(columns)
    names = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    sql = f"INSERT INTO cloud_file_refs ({names}) VALUES ({placeholders}) RETURNING id"
    return await db.fetchval(sql, *values.values())


def _now() -> datetime:
    return datetime.now(UTC)


async def start_dashboard(monitoring: FakeMonitoring, *, token: str | None, reads_need_token: bool) -> web.AppRunner:
    """The HTTP app with the dashboard's routes, listening on 127.0.0.1 at a port of its own."""
    return await start_app(monitoring, token=token, reads_need_token=reads_need_token, dashboard=True)

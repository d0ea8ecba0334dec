"""The dashboard's app on a real port against this test's database, and rows to show in it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from cloudwatcher.config import LocalTarget, Settings
from cloudwatcher.daemon.http.app import bound_port, build_http_app, start_http_server
from cloudwatcher.daemon.http.dashboard import add_dashboard_routes
from cloudwatcher.daemon.ledger.store import retry_failed
from cloudwatcher.daemon.ops.status import collect_status
from tests.support.browser import start_browser

TOKEN = "dash-token-5f1c"


@dataclass
class FakeMonitoring:
    """What add_dashboard_routes uses of the daemon's Monitoring."""

    settings: Settings
    pool: asyncpg.Pool

    async def status(self) -> dict[str, Any]:
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


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        watch_root=tmp_path / "inbox",
        database_url=database_url,
        http_bind="",
        targets=[
            LocalTarget(name="mirror", provider="local", root=tmp_path / "mirror"),
            LocalTarget(name="offsite", provider="local", root=tmp_path / "offsite"),
        ],
    )


@pytest.fixture
async def serve(settings: Settings, database_url: str) -> AsyncIterator[Serve]:
    """Start the HTTP app with the dashboard on 127.0.0.1:0 (with a token unless ``token=None``;
    ``reads_need_token`` is what the daemon sets for a bind off loopback)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    runners = []
    http = aiohttp.ClientSession()

    async def start(*, reads_need_token: bool = False, token: str | None = TOKEN) -> Dashboard:
        monitoring = FakeMonitoring(settings, pool)
        app = build_http_app(
            status=monitoring.status,
            health=monitoring.health,
            retry=monitoring.retry,
            token=token,
            require_token_for_reads=reads_need_token,
        )
        add_dashboard_routes(app, monitoring)  # type: ignore[arg-type]
        runner = await start_http_server("127.0.0.1:0", app)
        runners.append(runner)
        return Dashboard(f"http://127.0.0.1:{bound_port(runner)}", http, settings, token)

    yield start
    await http.close()
    for runner in runners:
        await runner.cleanup()
    await pool.close()


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


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium per test module (starting one takes a second or two)."""
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()

"""The dashboard's app on a real port against this test's database (tests/support/dashboard.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from cloudwatcher.config import LocalTarget, Settings
from cloudwatcher.daemon.http.app import bound_port
from tests.support.browser import start_browser
from tests.support.dashboard import TOKEN, Dashboard, FakeMonitoring, Serve, start_dashboard


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
        runner = await start_dashboard(FakeMonitoring(settings, pool), token=token, reads_need_token=reads_need_token)
        runners.append(runner)
        return Dashboard(f"http://127.0.0.1:{bound_port(runner)}", http, settings, token)

    yield start
    await http.close()
    for runner in runners:
        await runner.cleanup()
    await pool.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium per test module (starting one takes a second or two)."""
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()

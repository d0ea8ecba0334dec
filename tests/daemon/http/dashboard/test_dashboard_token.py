"""In a real browser, a dashboard whose reads need the token (as when ``http_bind`` is not loopback):
the shell loads and asks for the token; once typed, the pages fill in, and the token stays in the
tab's sessionStorage only, never in the page."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudwatcher.config import Settings
from cloudwatcher.daemon.http.app import bound_port
from tests.support.browser import css, needs_browser, wait
from tests.support.dashboard import TOKEN, FakeMonitoring, add_ref, start_dashboard

pytestmark = [pytest.mark.slow, needs_browser]


class ThreadedDashboard:
    """The HTTP app with the dashboard on its own event loop in a thread (selenium blocks)."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.pool: asyncpg.Pool | None = None

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> str:
        self.pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=2)
        self.runner = await start_dashboard(
            FakeMonitoring(self.settings, self.pool), token=TOKEN, reads_need_token=True
        )
        return f"http://127.0.0.1:{bound_port(self.runner)}"

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.pool is not None:
            await self.pool.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def guarded(settings: Settings, database_url: str) -> Iterator[str]:
    async def seed() -> None:
        db = await asyncpg.connect(database_url)
        try:
            await add_ref(db, "truck-1/requests/secret-report.pdf", status="synced")
        finally:
            await db.close()

    asyncio.run(seed())
    server = ThreadedDashboard(settings, database_url)
    base = server.start()
    try:
        yield base
    finally:
        server.stop()


def test_pages_ask_for_the_token_and_fill_in_once_it_is_typed(guarded: str, browser: WebDriver, tmp_path: Path) -> None:
    browser.get(guarded + "/#/files")
    error = wait(browser, "the token request", lambda d: css(d, ".load-error .error"))[0]
    assert "Token" in error.text
    assert "secret-report" not in browser.page_source
    browser.save_screenshot(str(tmp_path / "needs-token.png"))

    browser.find_element(By.ID, "token").send_keys("wrong")
    browser.find_element(By.ID, "token").clear()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    wait(browser, "the file row", lambda d: "secret-report.pdf" in d.find_element(By.ID, "page").text)
    assert not css(browser, ".load-error .error")
    assert browser.execute_script("return sessionStorage.getItem('cloudwatcher.token')") == TOKEN
    browser.refresh()  # a reload in the same tab keeps the token for this tab only
    wait(browser, "the file row again", lambda d: "secret-report.pdf" in d.find_element(By.ID, "page").text)
    assert TOKEN not in browser.page_source and TOKEN not in browser.current_url
    browser.execute_script("sessionStorage.clear()")

"""The dashboard in a real browser: Debian's headless Chromium, driven by selenium through
chromedriver, against a running daemon with real data (a working and a failing target, envelopes
answered with the example catalog, device file names that look like markup).

The three tests share one daemon and one browser (to stay well under a minute) and run in file
order: the pages first, then a live change, then Retry, which changes the data.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import TEMPLATE, PgTestServer
from tests.support.browser import LIVE, click, css, needs_browser, wait
from tests.support.daemon_process import DaemonProcess
from tests.support.domain import EXAMPLE_CATALOG
from tests.support.net import free_port

pytestmark = [pytest.mark.slow, needs_browser]

TOKEN = "browser-token-9d2e"
SCRIPT_NAME = 'truck-1/requests/<script>alert("x")</script>.txt'
IMG_NAME = "truck-1/requests/<img src=x onerror=window.pwned=1>.txt"
NAV = ["Overview", "Devices", "Files", "Failures", "Requests"]
FILES = 8  # 3 envelopes, 2 attachments, 3 responses


def envelope(kind: str, user: str, payload: dict[str, object]) -> bytes:
    return json.dumps({"type": kind, "user": user, "payload": payload, "metadata": {"app": "2.1"}}).encode()


@dataclass
class World:
    daemon: DaemonProcess
    base: str
    offsite_block: Path  # a file where the offsite target's folder should be: its uploads fail

    def count(self, sql: str, *args: object) -> int:
        async def run() -> int:
            return int((await self.daemon.query(sql, *args))[0][0])

        return asyncio.run(run())


async def _database(server: PgTestServer, name: str, *, drop: bool = False) -> None:
    admin = await asyncpg.connect(server.admin_url)
    try:
        if drop:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()


async def _seed(d: DaemonProcess) -> None:
    await d.wait_started()
    d.drop(
        "truck-1/requests/parts.json",
        envelope("get_parts", "rita.kowalski@northwind-fleet.example", {"location": "North Depot"}),
    )
    d.drop(
        "truck-1/requests/order.json",
        envelope(
            "create_order",
            "sam.becker@northwind-fleet.example",
            {"location": "North Depot", "items": [{"part_code": "BRK-DSC-F", "quantity": 2}]},
        ),
    )
    d.drop("truck-1/requests/broken.json", b"{not json")
    d.drop(SCRIPT_NAME, b"device-chosen name")
    d.drop(IMG_NAME, b"another device-chosen name")

    async def settled() -> bool:
        counts = await d.query(
            "SELECT count(*) FILTER (WHERE target = 'mirror' AND sync_status = 'synced') AS synced, "
            "count(*) FILTER (WHERE target = 'offsite' AND sync_status = 'failed' AND next_attempt_at IS NULL) "
            "AS gave_up "
            "FROM cloud_file_refs"
        )
        return counts[0]["synced"] == FILES and counts[0]["gave_up"] == FILES

    await d.wait_for(settled, 60, "mirror synced and offsite given up")


@pytest.fixture(scope="module")
def world(pg_server: PgTestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    name = f"cw_dash_{uuid.uuid4().hex[:12]}"
    asyncio.run(_database(pg_server, name))
    workdir = tmp_path_factory.mktemp("dashboard-daemon")
    block = workdir / "offsite"
    block.write_bytes(b"")
    port = free_port()
    d = DaemonProcess(
        workdir,
        pg_server.url_for(name),
        http_bind=f"127.0.0.1:{port}",
        http_token=TOKEN,
        targets=[
            {"name": "mirror", "provider": "local", "root": str(workdir / "mirror")},
            {"name": "offsite", "provider": "local", "root": str(block)},
        ],
        # One attempt: failures give up at once, so only Retry brings them back.
        retry={"initial_delay_seconds": 0.5, "max_delay_seconds": 2, "max_attempts": 1, "interval_seconds": 0.5},
    )
    try:
        d.command("load", str(EXAMPLE_CATALOG))
        d.start()
        asyncio.run(_seed(d))
        yield World(d, f"http://127.0.0.1:{port}", block)
    finally:
        if d.process is not None:
            d.kill()
        asyncio.run(_database(pg_server, name, drop=True))


def go(driver: WebDriver, page: str) -> None:
    driver.find_element(By.LINK_TEXT, page).click()
    wait(driver, f"the {page} page", lambda d: d.find_element(By.TAG_NAME, "h1").text == page)


def snapshot(driver: WebDriver, selector: str) -> dict[str, dict[str, Any]]:
    """Text, class and chart bars of the elements ``selector`` names, keyed by their data-* name,
    read in one go (the overview re-renders every poll, so element handles go stale)."""
    found: dict[str, dict[str, Any]] = driver.execute_script(
        """
        const found = {};
        for (const el of document.querySelectorAll(arguments[0])) {
          const key = el.dataset.target || el.dataset.device || el.dataset.refId;
          found[key] = {text: el.innerText, class: el.className, bars: el.querySelectorAll("rect.bar").length};
        }
        return found;
        """,
        selector,
    )
    return found


def assert_nothing_injected(driver: WebDriver) -> None:
    assert driver.execute_script("return window.pwned === undefined")
    assert len(css(driver, "script")) == 1  # the shell's own module, nothing a name brought in
    assert css(driver, "img") == []


def enter_token(driver: WebDriver) -> None:
    """Type the token into the Token field (kept in the tab's sessionStorage across pages)."""
    field = driver.find_element(By.ID, "token")
    if field.get_attribute("value") != TOKEN:
        field.clear()
        field.send_keys(TOKEN)


def test_every_page_shows_what_the_ledger_holds_and_device_names_stay_text(
    world: World, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(world.base + "/")
    assert [a.text for a in css(browser, "nav a")] == NAV
    assert browser.find_element(By.CSS_SELECTOR, "label[for=token]").text == "Token"
    # The daemon has a token: even on loopback, the shell shows no data until it is typed in.
    error = wait(browser, "the token request", lambda d: css(d, ".load-error .error"))[0]
    assert "Token" in error.text
    assert "truck-1" not in browser.page_source
    enter_token(browser)

    # Overview: one card per target with its light, counts and the last hour's uploads.
    wait(browser, "target cards", lambda d: len(css(d, "article.target")) == 2)
    cards = snapshot(browser, "article.target")
    mirror, offsite = cards["mirror"], cards["offsite"]
    assert "light-green" in mirror["class"] and "Green" in mirror["text"]
    assert "light-red" in offsite["class"] and f"{FILES} gave up" in offsite["text"]
    assert f"{FILES}\nsynced" in mirror["text"]
    assert f"{FILES} uploads in the last hour" in mirror["text"]
    assert mirror["bars"] >= 1
    assert len(css(browser, "tr.instance-running")) == 1
    browser.save_screenshot(str(tmp_path / "overview.png"))

    # Devices
    go(browser, "Devices")
    wait(browser, "truck-1's row", lambda d: css(d, "tr[data-device='truck-1']"))
    row = snapshot(browser, "tr[data-device]")["truck-1"]
    assert "online" in row["text"]
    browser.save_screenshot(str(tmp_path / "devices.png"))

    # Files: the path search finds the file whose name looks like markup, shown as text.
    go(browser, "Files")
    search = browser.find_element(By.ID, "files-path")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=files-path]").text == "Path contains"
    search.send_keys("<script>")
    wait(browser, "two rows for the <script> file", lambda d: len(css(d, "tbody tr[data-ref-id]")) == 2)
    links = css(browser, "tbody tr[data-ref-id] td.path a")
    assert {link.text for link in links} == {SCRIPT_NAME}
    assert_nothing_injected(browser)
    browser.save_screenshot(str(tmp_path / "files.png"))
    search.clear()
    search.send_keys("onerror")
    wait(browser, "the <img> file", lambda d: {a.text for a in css(d, "tbody td.path a")} == {IMG_NAME})
    assert_nothing_injected(browser)

    # A file's page: its ledger rows on both targets.
    css(browser, "tbody td.path a")[0].click()
    wait(browser, "the file page", lambda d: len(css(d, "table.ledger tbody tr")) == 2)
    assert browser.find_element(By.CSS_SELECTOR, ".file-path").text == IMG_NAME
    targets = {r.get_attribute("data-target"): r.text for r in css(browser, "table.ledger tbody tr")}
    assert "synced" in targets["mirror"] and "gave up" in targets["offsite"]
    assert_nothing_injected(browser)
    browser.save_screenshot(str(tmp_path / "file.png"))

    # Requests: counts by type and outcome, and a request's page with envelope and response.
    go(browser, "Requests")
    wait(browser, "the summary", lambda d: len(css(d, "table.summary tbody tr")) == 3)
    summary = {r.get_attribute("data-type"): r.text for r in css(browser, "table.summary tbody tr")}
    assert set(summary) == {"get_parts", "create_order", "invalid"}
    browser.save_screenshot(str(tmp_path / "requests.png"))
    rows = {r.find_elements(By.TAG_NAME, "td")[2].text: r for r in css(browser, "tr[data-request-id]")}
    assert set(rows) == {"get_parts", "create_order", "invalid"}
    rows["create_order"].find_element(By.CSS_SELECTOR, "td a").click()
    wait(browser, "create_order's page", lambda d: css(d, "pre.response-json") and css(d, "tr.audit-row"))
    page = browser.find_element(By.ID, "page").text
    assert '"type": "create_order"' in page  # the envelope, pretty-printed
    response = browser.find_element(By.CSS_SELECTOR, "pre.response-json").text
    assert response.startswith("{\n") and '"status": "completed"' in response
    assert "created" in page and "pending-approval" in page  # order and its history
    assert css(browser, "tr.audit-row")
    browser.save_screenshot(str(tmp_path / "request.png"))

    # Failures: one group for the failing target, a Retry button on the group and every row.
    go(browser, "Failures")
    wait(browser, "the offsite group", lambda d: css(d, "section.failure-group[data-target=offsite]"))
    group = browser.find_element(By.CSS_SELECTOR, "section.failure-group[data-target=offsite]")
    assert len(css(group, "tbody tr")) == FILES
    assert len(css(group, "tbody button.retry")) == FILES
    assert css(group, "button.retry-group")[0].text == f"Retry all {FILES}"
    assert_nothing_injected(browser)
    browser.save_screenshot(str(tmp_path / "failures.png"))


def test_a_new_file_shows_up_without_reloading(world: World, browser: WebDriver) -> None:
    browser.get(world.base + "/#/files?path=live-")
    enter_token(browser)
    wait(browser, "an empty result", lambda d: css(d, "p.empty"))
    browser.execute_script("window.notReloaded = true")
    world.daemon.drop("truck-1/requests/live-1.txt", b"live")

    async def recorded() -> bool:
        rows = await world.daemon.query("SELECT 1 FROM cloud_file_refs WHERE local_path LIKE '%live-1.txt'")
        return bool(rows)

    asyncio.run(world.daemon.wait_for(recorded, 20, "the new file's rows"))
    wait(browser, "the new file's rows", lambda d: len(css(d, "tbody tr[data-ref-id]")) == 2)
    assert browser.execute_script("return window.notReloaded === true")


def test_retry_with_the_token_requeues_a_row_and_then_a_group(world: World, browser: WebDriver, tmp_path: Path) -> None:
    browser.get(world.base + "/#/failures")
    enter_token(browser)  # without it the page holds no rows to retry (see the first test)
    wait(browser, "failure rows", lambda d: css(d, "section.failure-group tbody tr"))
    failed = world.count("SELECT count(*) FROM cloud_file_refs WHERE sync_status = 'failed'")
    assert failed >= FILES
    notice = browser.find_element(By.ID, "notice")

    world.offsite_block.unlink()  # the target works again
    ref_id = css(browser, "section.failure-group tbody tr")[0].get_attribute("data-ref-id")
    click(browser, f"button.retry[data-ref-id='{ref_id}']", "the row's Retry")
    wait(browser, "the row to go", lambda d: not css(d, f"tr[data-ref-id='{ref_id}']"))
    assert "Re-queued 1 upload" in notice.text
    started = time.monotonic()
    click(browser, "button.retry-group", "the group's Retry")
    wait(browser, "no failures left", lambda d: css(d, "p.no-failures"))
    assert time.monotonic() - started < LIVE + 1
    assert TOKEN not in browser.page_source and TOKEN not in browser.current_url

    async def all_synced() -> bool:
        rows = await world.daemon.query("SELECT count(*) FROM cloud_file_refs WHERE sync_status <> 'synced'")
        return rows[0][0] == 0

    asyncio.run(world.daemon.wait_for(all_synced, 30, "every row synced"))
    go(browser, "Overview")
    offsite = "article[data-target=offsite]"
    wait(
        browser,
        "offsite green",
        lambda d: "light-green" in (d.find_element(By.CSS_SELECTOR, offsite).get_attribute("class") or ""),
    )
    browser.save_screenshot(str(tmp_path / "overview-after-retry.png"))

"""A dashboard tab that is hidden stops polling the daemon, and catches up at once when shown.

Headless Chromium never hides a tab by itself, so the page gets ``document.hidden`` from the test
(through a script installed before the dashboard's own) and a ``visibilitychange`` event, as a
browser sends when the user switches tabs. The same script counts the page's fetches and its
running intervals.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.browser import needs_browser, wait
from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = [pytest.mark.slow, needs_browser]

POLL_SECONDS = 2.0  # dashboard.js's POLL_MS

INSTRUMENT = """
window.__fetches = 0;
const realFetch = window.fetch.bind(window);
window.fetch = (...args) => { window.__fetches += 1; return realFetch(...args); };
window.__intervals = new Set();
const realSetInterval = window.setInterval.bind(window);
const realClearInterval = window.clearInterval.bind(window);
window.setInterval = (...args) => { const id = realSetInterval(...args); window.__intervals.add(id); return id; };
window.clearInterval = (id) => { window.__intervals.delete(id); realClearInterval(id); };
let hidden = false;
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true,
  get: () => (hidden ? "hidden" : "visible"),
});
window.__setHidden = (value) => {
  hidden = value;
  document.dispatchEvent(new Event("visibilitychange"));
  return { fetches: window.__fetches, intervals: window.__intervals.size };
};
"""


def fetches(browser: WebDriver) -> int:
    return int(browser.execute_script("return window.__fetches"))


def set_hidden(browser: WebDriver, hidden: bool) -> dict[str, int]:
    """Hide or show the tab; the page's fetch count and running intervals right after the event."""
    result: dict[str, int] = browser.execute_script("return window.__setHidden(arguments[0])", hidden)
    return result


async def test_a_hidden_dashboard_stops_polling_and_fetches_at_once_when_shown_again(
    daemon: Callable[..., DaemonProcess], browser: WebDriver
) -> None:
    port = free_port()
    d = daemon(http_bind=f"127.0.0.1:{port}").start()
    await d.wait_started()
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": INSTRUMENT})
    browser.get(f"http://127.0.0.1:{port}/")
    first = wait(browser, "the first load", fetches)
    wait(browser, "a poll while visible", lambda b: fetches(b) > first, timeout=3 * POLL_SECONDS)

    hidden = set_hidden(browser, True)
    assert hidden["intervals"] == 0
    # Three poll periods in the page's own clock: a poll that kept running would fetch in them.
    during = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];setTimeout(() => done(window.__fetches), arguments[0]);",
        int(3 * POLL_SECONDS * 1000),
    )
    assert during == hidden["fetches"]

    shown = set_hidden(browser, False)
    assert shown["fetches"] > hidden["fetches"]  # fetched in the event handler itself, not a poll later
    assert shown["intervals"] == 1
    assert set_hidden(browser, False)["intervals"] == 1  # a repeated "visible" does not start a second poll
    wait(browser, "polling again", lambda b: fetches(b) > shown["fetches"], timeout=3 * POLL_SECONDS)
    assert d.stop() == 0

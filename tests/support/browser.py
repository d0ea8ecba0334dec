"""Headless Debian Chromium through its chromedriver (selenium), and waits that survive re-renders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
LIVE = 5.0  # pages reflect changes within this many seconds (the dashboard refreshes every 2 s, README.md, Operations)

# `make test` installs them; under CI a missing browser is a failure, not a skip.
needs_browser = pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"), reason="needs Debian's chromium and chromium-driver"
)


def start_browser(profile: Path) -> WebDriver:
    """Headless Chromium with the flags this closed network needs (no background connections)."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1300",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait(driver: WebDriver, what: str, check: Callable[[WebDriver], Any], timeout: float = LIVE) -> Any:
    """Wait until ``check(driver)`` is truthy; fail naming ``what``."""
    # Pages re-render as data changes: an element seen a moment ago may be gone; look again.
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
    try:
        return waiter.until(check, what)
    except Exception as exc:
        raise AssertionError(f"{what} (waited {timeout} s)") from exc


def click(driver: WebDriver, selector: str, what: str) -> None:
    """Click the element ``selector`` names, finding it again if a re-render replaced it."""

    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    wait(driver, what, clicked)


def css(driver: WebDriver | WebElement, selector: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, selector)

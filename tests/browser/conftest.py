"""A real browser for the web pages: Debian's chromium driven by Playwright for Python.

Playwright's own browser downloads are never used (no internet is assumed): chromium is the
system's (``apt-get install chromium``; ``.ci/run`` installs it when missing), or the one named by
``CLINIC_CHROMIUM``. Every page a test opens reports its console errors and uncaught exceptions;
a test fails on any it did not expect. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.accessibility import AxeCheck

CHROMIUM = os.environ.get("CLINIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# A client far from London, so every time shows the clinic's time beside it.
CLIENT_ZONE = "America/New_York"
# Chromium logs every non-2xx fetch as a console error; a test names those it provokes.
FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"No chromium at {CHROMIUM}: `apt-get install chromium` (or set "
                    "CLINIC_CHROMIUM). The browser tests never download a browser.")
    # Not `with sync_playwright()`: under eventlet's monkey patching (tests/conftest.py) stopping
    # Playwright waits forever for its driver's exit through asyncio's child watcher. The driver
    # ends by itself when its stdin closes, that is when this test process ends.
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught exceptions of the pages of one context."""

    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)

    def expect_http_error(self, status: int, path_part: str) -> None:
        """A failed load the test provokes on purpose (say a 409 for a taken time)."""
        self.expected.append((status, path_part))

    def on_console(self, message) -> None:
        if message.type != "error":
            return
        failed = FAILED_LOAD.search(message.text)
        url = (message.location or {}).get("url", "")
        if failed and any(int(failed.group(1)) == status and part in url
                          for status, part in self.expected):
            return
        self.problems.append(f"console error: {message.text} ({url})")

    def watch(self, page: Page) -> Page:
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        return page


@dataclass
class Pages:
    """Opens pages in browser contexts (one per viewport) and checks them afterwards."""

    browser: Browser
    console: ConsoleWatch = field(default_factory=ConsoleWatch)
    contexts: list[BrowserContext] = field(default_factory=list)

    def open(self, viewport: dict[str, int] = DESKTOP, *, phone: bool = False) -> Page:
        context = self.browser.new_context(
            viewport=viewport, timezone_id=CLIENT_ZONE, locale="en-GB", accept_downloads=True,
            is_mobile=phone, has_touch=phone, device_scale_factor=1)
        self.contexts.append(context)
        return self.console.watch(context.new_page())

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()
    assert opened.console.problems == [], "\n".join(opened.console.problems)


@pytest.fixture
def screenshot(request) -> Callable[[Page, str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def axe() -> AxeCheck:
    """``axe(page, "state")``: no WCAG 2.0/2.1/2.2 A or AA violation on the page as it is now."""
    return AxeCheck()

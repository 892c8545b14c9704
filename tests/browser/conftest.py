"""Browser fixtures: Playwright's sync API driving Debian's headless Chromium.

Playwright's own browser download needs the internet, which CI and the sandbox lack, so the
browser is always ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` does it).
One browser serves each test module; each test gets fresh contexts (no cookies, storage or cache
shared between tests), and any console error or uncaught exception in them fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.browser.console_errors import ConsoleErrors

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: CI runs as root in a container. The rest keep the browser from reaching out to
# the internet (updates, sync, QUIC probes) and from waiting for a GPU it does not have.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000  # a local page that takes longer is a bug; fail instead of waiting 30 s


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_console_errors(*patterns): browser errors matching any of the regular "
        "expressions (any error, without patterns) do not fail the test",
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (starting it is the slow part). Not one per
    session: while Playwright's sync API is open it keeps an event loop running in the main
    thread, and every later test that calls ``asyncio.run`` would fail."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install chromium); Playwright cannot download its own here",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console_errors(request: pytest.FixtureRequest) -> Iterator[ConsoleErrors]:
    """The browser errors of this test's contexts; unless allowed, any fails it at teardown.

    The contexts depend on this fixture, so they are closed (and every event delivered) before
    it checks."""
    errors = ConsoleErrors()
    yield errors
    marker = request.node.get_closest_marker("allow_console_errors")
    if marker is None:
        errors.check()
    elif marker.args:
        errors.check(allowed=[str(pattern) for pattern in marker.args])


def _context(
    browser: Browser, console_errors: ConsoleErrors, viewport: ViewportSize
) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    console_errors.watch(context)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def context(browser: Browser, console_errors: ConsoleErrors) -> Iterator[BrowserContext]:
    """A fresh desktop-sized context (1280x900); its pages' errors fail the test."""
    yield from _context(browser, console_errors, DESKTOP)


@pytest.fixture
def phone(browser: Browser, console_errors: ConsoleErrors) -> Iterator[BrowserContext]:
    """A fresh phone-sized context (390x844), for the console's narrow layout; watched too."""
    yield from _context(browser, console_errors, PHONE)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page of ``context`` that waits at most 10 s for anything (closed with the context)."""
    new = context.new_page()
    new.set_default_timeout(TIMEOUT_MS)
    return new

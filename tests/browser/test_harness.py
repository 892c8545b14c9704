"""The browser-test harness against a tiny app of its own, before the console relies on it.

The app sends the console's strict Content-Security-Policy, so these tests show that axe runs
under it, that axe's findings reach the test, and that refused or failing scripts fail a test.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import BrowserContext, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.browser import shots
from tests.browser.axe import assert_accessible, serious_violations
from tests.browser.console_errors import ConsoleErrors

CSP = "default-src 'self'; script-src 'self'"
# A 1x1 transparent PNG: the images below and the favicon, so that they load without errors.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<script src="/app.js"></script></head>\n<body>{body}</body></html>\n'
    )


PAGES = {
    "/": _html(
        "Accessible",
        '<header><nav aria-label="Sections"><a href="/long">Long page</a></nav></header>'
        "<main><h1>Flags</h1><p id=status>Loading</p>"
        '<img src="/pixel.png" alt="A transparent pixel" width="40" height="40">'
        '<form><label for="key">Flag key</label><input id="key" name="key">'
        "<button type=submit>Create</button></form></main>",
    ),
    "/broken": _html(
        "Broken",
        '<main><h1>Broken</h1><img src="/pixel.png" width="40" height="40">'
        '<button type="button" id="nameless"></button></main>',
    ),
    "/inline": _html(
        "Inline", "<main><h1>Inline</h1><script>document.title = 'ran'</script></main>"
    ),
    "/throws": _html("Throws", '<main><h1>Throws</h1><script src="/throws.js"></script></main>'),
    "/long": _html(
        "Long",
        "<main><h1>Long</h1>" + "".join(f"<p>Paragraph {i}.</p>" for i in range(60)) + "</main>",
    ),
}
SCRIPTS = {
    # Proves that scripts from 'self' still run under the policy.
    "/app.js": "document.addEventListener('DOMContentLoaded', () => {\n"
    "  const status = document.getElementById('status');\n"
    "  if (status) status.textContent = 'Ready';\n"
    "});\n",
    "/throws.js": "throw new Error('boom from throws.js');\n",
}


async def _page(request: Request) -> Response:
    headers = {"Content-Security-Policy": CSP}
    path = request.url.path
    if path in PAGES:
        return Response(PAGES[path], media_type="text/html", headers=headers)
    if path in SCRIPTS:
        return Response(SCRIPTS[path], media_type="text/javascript", headers=headers)
    return Response(PIXEL, media_type="image/png", headers=headers)


# Chromium asks for /favicon.ico by itself, and logs a console error when it is missing.
APP = Starlette(routes=[Route(p, _page) for p in [*PAGES, *SCRIPTS, "/pixel.png", "/favicon.ico"]])


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The app served by uvicorn in a thread, on a port the kernel picks; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(APP, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="browser-harness", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # set once the socket listens
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the harness server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_axe_finds_nothing_serious_on_an_accessible_page_under_a_strict_csp(
    page: Page, site: str
) -> None:
    response = page.goto(f"{site}/")
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    assert page.viewport_size == {"width": 1280, "height": 900}
    assert page.text_content("#status") == "Ready"  # scripts from 'self' ran
    assert serious_violations(page) == []
    assert_accessible(page)  # and axe itself caused no console error (checked at teardown)


def test_axe_reports_the_violations_and_the_helper_fails_on_them(page: Page, site: str) -> None:
    page.goto(f"{site}/broken")
    violations = {v["id"]: v for v in serious_violations(page)}
    assert {"image-alt", "button-name"} <= set(violations)
    assert violations["image-alt"]["targets"] == ["img"]
    assert violations["button-name"]["targets"] == ["#nameless"]
    assert violations["image-alt"]["impact"] in {"serious", "critical"}
    with pytest.raises(AssertionError, match=r"image-alt \(critical\).*\n.*img") as failed:
        assert_accessible(page)
    assert "button-name" in str(failed.value)
    assert f"{site}/broken" in str(failed.value)


@pytest.mark.allow_console_errors("Content Security Policy")
def test_an_inline_script_refused_by_the_csp_is_recorded(
    page: Page, console_errors: ConsoleErrors, site: str
) -> None:
    with page.expect_console_message(lambda m: m.type == "error"):
        page.goto(f"{site}/inline")
    assert page.title() == "Inline"  # the inline script did not run
    assert any(
        "inline script" in m and "Content Security Policy" in m for m in console_errors.messages
    ), console_errors.messages


@pytest.mark.allow_console_errors("boom from throws.js")
def test_an_uncaught_exception_is_recorded(
    page: Page, console_errors: ConsoleErrors, site: str
) -> None:
    with page.expect_event("pageerror"):
        page.goto(f"{site}/throws")
    assert console_errors.messages == [f"uncaught Error: boom from throws.js [{site}/throws]"]


def test_unexpected_errors_fail_the_test_and_allowed_ones_do_not() -> None:
    errors = ConsoleErrors()
    errors.check()  # nothing recorded, nothing to fail on
    errors.messages += ["console error: Refused to execute inline script", "uncaught Error: boom"]
    with pytest.raises(pytest.fail.Exception, match=r"2 error\(s\)(.|\n)*inline(.|\n)*boom"):
        errors.check()
    with pytest.raises(pytest.fail.Exception, match="boom") as failed:
        errors.check(allowed=["inline script"])
    assert "inline" not in str(failed.value)
    errors.check(allowed=["inline script", "boom"])


def test_screenshot_saves_the_whole_page(
    phone: BrowserContext, site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shots, "SHOTS", tmp_path / "console")  # not the real docs/console
    page = phone.new_page()
    page.goto(f"{site}/long")
    path = shots.screenshot(page, "long-page")
    assert path == tmp_path / "console" / "long-page.png"
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert width == 390
    assert height > 844  # the full page, not only the phone's viewport
    with pytest.raises(ValueError, match="screenshot name"):
        shots.screenshot(page, "../escape")

"""What the browser reported as errors while a test ran.

A page can look right and still be broken: a script refused by the Content-Security-Policy, or
one that threw, only shows in the browser's console. The ``console_errors`` fixture records
those for every page of the test's browser contexts and fails the test at teardown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, WebError

__all__ = ["ConsoleErrors"]


class ConsoleErrors:
    """Console errors and uncaught exceptions of the watched contexts, as readable lines."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        """Record the errors of every page of ``context``, present and future (popups too)."""
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url") or (message.page.url if message.page else "")
        self.messages.append(f"console error: {message.text} [{where}]")

    def _on_web_error(self, web_error: WebError) -> None:
        error = web_error.error
        where = web_error.page.url if web_error.page else ""
        self.messages.append(f"uncaught {error.name or 'error'}: {error.message} [{where}]")

    def unexpected(self, allowed: Sequence[str] = ()) -> list[str]:
        """The messages that none of the ``allowed`` regular expressions matches."""
        return [m for m in self.messages if not any(re.search(p, m) for p in allowed)]

    def check(self, allowed: Sequence[str] = ()) -> None:
        """Fail, listing them, when the browser reported errors that were not allowed."""
        unexpected = self.unexpected(allowed)
        if unexpected:
            listed = "\n".join(f"  {m}" for m in unexpected)
            pytest.fail(
                f"the browser reported {len(unexpected)} error(s) during the test:\n{listed}\n"
                "(an expected one: mark the test @pytest.mark.allow_console_errors(pattern))",
                pytrace=False,
            )

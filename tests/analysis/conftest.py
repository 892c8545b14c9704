"""Shared setup for the analysis tests: a headless matplotlib backend, and a summary of the
rates the statistical simulations measured (printed at the end of the pytest run)."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

_MEASURED: list[str] = []


@pytest.fixture
def measured() -> list[str]:
    """Append a line such as ``"A/A binary: sequential 0.021"``; it is printed at the end."""
    return _MEASURED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MEASURED:
        terminalreporter.section("rates measured by the analysis simulations")
        for line in _MEASURED:
            terminalreporter.write_line(line)

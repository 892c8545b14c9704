"""The real-server fixture of the rollout tests: its own controller stays asleep.

These tests run the controller's rounds themselves, on a second store. The server's built-in
controller would otherwise take the lead after its first interval (10 s, which a PostgreSQL run
reaches) and lease the rollouts away from the test's rounds, which then decide nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rollwise_server.testing import CENTURY, LiveServer, live_server

ASLEEP = {"controller_interval": CENTURY}
"""Settings for a server whose own controller never runs a round during a test."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, **ASLEEP) as running:
        yield running

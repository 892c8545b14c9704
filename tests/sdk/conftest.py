"""Fixtures of the SDK's online tests: a real server holding the example flag and its segment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rollwise_server.testing import LiveServer, live_server
from tests.server.conftest import EU_SEGMENT, example_flag


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "server") as running:
        admin = running.session()
        base = f"{running.url}/api/v1/envs/production"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
        yield running

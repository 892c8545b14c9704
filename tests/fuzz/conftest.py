"""A real server (uvicorn on 127.0.0.1, a free port, fresh SQLite) shared by a module's tests:
the HTTP fuzz sends hundreds of hostile bodies, and none of them may change what the next sees."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollwise_server.testing import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fuzz-server")) as running:
        yield running

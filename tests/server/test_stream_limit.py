"""At most ``max_streams_per_token`` open SDK streams per token; closing one frees its slot."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from rollwise_server.testing import LiveServer, live_server
from tests.sdk.test_online import wait_for
from tests.server.documented import assert_documented

LIMIT = 2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, max_streams_per_token=LIMIT) as running:
        yield running


def _open(server: LiveServer, token: str) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v1/sdk/stream",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        stream=True,
        timeout=10,
    )


def _connected(server: LiveServer) -> int:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(r"^rollwise_sse_streams (\S+)$", text, re.MULTILINE)
    assert match is not None
    return int(float(match.group(1)))


def test_one_stream_too_many_is_429_and_closing_one_frees_its_slot(server: LiveServer) -> None:
    token = server.token("sdk", env="production")
    with ExitStack() as streams:
        opened = [streams.enter_context(_open(server, token)) for _ in range(LIMIT)]
        assert [response.status_code for response in opened] == [200] * LIMIT
        assert wait_for(lambda: _connected(server) == LIMIT)

        refused = _open(server, token)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["code"] == "too_many_streams"
        assert f"{LIMIT} streams" in problem["detail"]
        assert int(refused.headers["Retry-After"]) > 0
        assert_documented("GET", "/api/v1/sdk/stream", refused)

        other = _open(server, server.token("sdk", env="production"))  # its own allowance
        assert other.status_code == 200
        other.close()

        opened[0].close()
        assert wait_for(lambda: _connected(server) == LIMIT - 1)
        again = streams.enter_context(_open(server, token))
        assert again.status_code == 200


def test_a_stream_that_never_started_frees_its_slot(server: LiveServer) -> None:
    """A HEAD of the stream (answered without running the stream) holds no slot afterwards."""
    token = server.token("sdk", env="production")
    for _ in range(LIMIT + 1):
        head = requests.head(
            f"{server.url}/api/v1/sdk/stream",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert head.status_code == 200
    assert wait_for(lambda: _connected(server) == 0)
    with _open(server, token) as first, _open(server, token) as second:
        assert (first.status_code, second.status_code) == (200, 200)

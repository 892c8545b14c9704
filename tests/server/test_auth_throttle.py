"""Failed authentications are throttled per client address, counted and logged once.

Once an address has failed ``auth_failures_per_minute`` times in a minute, every request from it
that needs a token is 429 with ``Retry-After`` until the minute is over, whatever its token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rollwise_server.testing import LiveServer, live_server
from rollwise_server.throttle import AuthThrottle, client_key
from tests.server.documented import assert_documented

LIMIT = 5


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, auth_failures_per_minute=LIMIT) as running:
        yield running


def _metric(server: LiveServer, name: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


def test_failed_authentications_are_throttled_counted_and_logged_once(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rollwise")
    envs = f"{server.url}/api/v1/envs"
    bad = {"Authorization": "Bearer rw_not-a-token"}
    for _ in range(LIMIT - 1):
        assert requests.get(envs, headers=bad, timeout=10).status_code == 401
    assert server.session().get(envs, timeout=10).status_code == 200  # not yet throttled
    assert requests.get(envs, headers=bad, timeout=10).status_code == 401  # the last one

    for headers in (bad, {}, {"Authorization": f"Bearer {server.admin_token}"}):
        throttled = requests.get(envs, headers=headers, timeout=10)
        assert throttled.status_code == 429, headers
        assert throttled.headers["content-type"] == "application/problem+json"
        assert throttled.json()["code"] == "too_many_auth_failures"
        assert 0 < int(throttled.headers["Retry-After"]) <= 60
        assert_documented("GET", "/api/v1/envs", throttled)
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200

    assert _metric(server, "rollwise_auth_failures_total") == LIMIT
    assert _metric(server, "rollwise_auth_throttled_total") == 3
    logged = [r for r in caplog.records if "failed authentications" in r.getMessage()]
    assert len(logged) == 1
    assert "127.0.0.1" in logged[0].getMessage()


def test_a_forbidden_token_is_not_an_authentication_failure(server: LiveServer) -> None:
    viewer = server.session(server.token("viewer"))
    for _ in range(LIMIT + 2):
        assert viewer.get(f"{server.url}/api/v1/tokens", timeout=10).status_code == 403
    assert server.session().get(f"{server.url}/api/v1/envs", timeout=10).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_lifts_when_the_minute_is_over() -> None:
    clock = Clock()
    throttle = AuthThrottle(3, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    clock.now += 20
    assert throttle.retry_after("10.0.0.1") == 40
    assert throttle.retry_after("10.0.0.2") is None  # another address is not concerned
    clock.now += 40
    assert throttle.retry_after("10.0.0.1") is None


def test_the_first_failure_over_the_limit_says_so_once() -> None:
    clock = Clock()
    throttle = AuthThrottle(2, clock=clock)
    assert [throttle.failed("a") for _ in range(4)] == [False, True, False, False]
    clock.now += 61
    assert [throttle.failed("a") for _ in range(2)] == [False, True]  # a new minute


def test_memory_is_bounded_whatever_the_number_of_addresses() -> None:
    throttle = AuthThrottle(3, max_addresses=100)
    for i in range(10_000):
        throttle.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle) <= 100


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one IPv6 host holds a whole /64
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_addresses_are_grouped_as_one_client_holds_them(host: str | None, key: str) -> None:
    assert client_key(host) == key

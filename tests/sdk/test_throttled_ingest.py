"""A 429 from the event endpoints is "try again later": the SDK keeps the events (issue 12:
an application that shares an address with a throttled client must not lose its events)."""

from __future__ import annotations

from pathlib import Path

import requests

import rollwise
from rollwise_server.testing import live_server
from tests.sdk.test_online import wait_for
from tests.server.conftest import EU_SEGMENT, example_flag


def test_events_answered_429_are_kept_not_rejected(tmp_path: Path) -> None:
    with live_server(tmp_path / "server", auth_failures_per_minute=3) as server:
        admin = server.session()
        base = f"{server.url}/api/v1/envs/production"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
        client = rollwise.Client(
            server.url,
            server.token("sdk", env="production"),
            cache_dir=tmp_path / "cache",
            flush_interval=0.05,
            close_timeout=1,
        )
        try:
            assert client.wait_until_ready(10)
            for _ in range(3):  # another client on this address guesses tokens
                guess = requests.get(
                    f"{server.url}/api/v1/sdk/rules",
                    headers={"Authorization": "Bearer wrong"},
                    timeout=10,
                )
                assert guess.status_code == 401
            client.track("converted", "u1", True)
            assert wait_for(lambda: "429" in str(client.stats()["last_error"]), 10)
            # retried, then kept in the spool for later: never counted as refused
            assert wait_for(lambda: client.stats()["events_spooled"] >= 1, 20)
            stats = client.stats()
            assert (stats["outcomes_rejected"], stats["outcomes_sent"]) == (0, 0)
            assert stats["events_in_spool"] == 1
        finally:
            client.close()

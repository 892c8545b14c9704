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


def test_a_huge_integer_in_a_context_costs_no_other_event(tmp_path: Path) -> None:
    """``country=10**5000`` (a cohort attribute) made the whole batch fail to encode: 100 of
    150 exposures were lost, uncounted. Now it is a float or null, and nothing is lost."""
    split = [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 1}]
    flag = {"key": "everyone", "variants": {"a": {}, "b": {}}, "off_variant": "a",
            "default_variant": "a", "cohort_attributes": ["country"],
            "rules": [{"id": "all", "conditions": [], "serve": {"split": split}}]}  # fmt: skip
    with live_server(tmp_path / "server") as server:
        base = f"{server.url}/api/v1/envs/production"
        server.session().post(f"{base}/flags", json=flag).raise_for_status()
        key = server.token("sdk", env="production")
        with rollwise.Client(server.url, key, cache_dir=tmp_path / "cache") as client:
            assert client.wait_until_ready(10)
            contexts = [{"user_id": f"before{i}", "country": "DE"} for i in range(50)]
            contexts += [
                {"user_id": "huge", "country": 10**5000},
                {"user_id": "x", "country": 2**60},
            ]
            contexts += [{"user_id": f"after{i}", "country": "DE"} for i in range(50)]
            for context in contexts:
                client.variant("everyone", context)
            client.track("converted", "huge", True, attrs={"country": 10**5000})
            assert client.flush(10)
            stats = client.stats()
        assert stats["exposures_sent"] == 102, stats
        assert stats["outcomes_sent"] == 1, stats
        assert (stats["exposures_rejected"], stats["outcomes_rejected"]) == (0, 0)

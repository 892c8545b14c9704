"""The online client against a real server: sync, streaming, polling, cache, events, status."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

import rollwise
from rollwise_server.testing import LiveServer, ServerProcess, free_port
from tests.server.conftest import EU_SEGMENT, example_flag


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def make_client(server: LiveServer, tmp_path: Path, **options: Any) -> rollwise.Client:
    key = server.token("sdk", env="production")
    options.setdefault("cache_dir", tmp_path / "cache")
    options.setdefault("flush_interval", 0.05)
    return rollwise.Client(server.url, key, **options)


def set_enabled(server: LiveServer, enabled: bool) -> int:
    admin = server.session()
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model"
    current = admin.get(url).json()
    response = admin.put(
        url,
        json={**example_flag(), "enabled": enabled, "reason": "test"},
        headers={"If-Match": f'"{current["version"]}"'},
    )
    response.raise_for_status()
    return int(admin.get(f"{server.url}/api/v1/envs").json()["environments"][1]["revision"])


QA = {"user_id": "u1"}


def test_connects_streams_and_follows_changes(server: LiveServer, tmp_path: Path) -> None:
    with make_client(server, tmp_path) as client:
        assert client.wait_until_ready(10)
        assert client.variant("fraud-model", QA) == "v2"
        assert wait_for(lambda: client.status().connection == "streaming")
        status = client.status()
        assert (status.origin, status.revision, status.ready) == ("server", 2, True)
        revision = set_enabled(server, False)
        assert wait_for(lambda: client.variant("fraud-model", QA) == "v1", 5)
        assert client.evaluate("fraud-model", QA).reason is rollwise.Reason.DISABLED
        assert client.status().revision == revision


def test_polling_when_streaming_is_off(server: LiveServer, tmp_path: Path) -> None:
    with make_client(server, tmp_path, streaming=False, poll_interval=0.1) as client:
        assert client.wait_until_ready(10)
        set_enabled(server, False)
        assert wait_for(lambda: client.variant("fraud-model", QA) == "v1", 5)
        assert client.status().connection == "polling"


def test_exposures_and_outcomes_reach_the_server_exactly_once(
    server: LiveServer, tmp_path: Path
) -> None:
    with make_client(server, tmp_path) as client:
        assert client.wait_until_ready(10)
        for i in range(3000):
            context = {"user_id": f"user-{i}", "country": "DE", "amount": 100}
            client.variant("fraud-model", context)
            client.variant("fraud-model", context)  # a repeat: de-duplicated
            client.track("fraud_caught", f"user-{i}", i % 3 == 0, attrs={"country": "DE"})
        client.track("latency_ms", "user-1", float("nan"))  # invalid: ignored, never raises
        assert client.flush(20)
        stats = client.stats()
    db = sqlite3.connect(server.db)
    assert db.execute("SELECT count(*), count(DISTINCT unit) FROM exposures").fetchone() == (
        3000,
        3000,
    )
    assert db.execute("SELECT count(*), sum(value) FROM outcomes").fetchone() == (3000, 1000)
    assert db.execute("SELECT DISTINCT flag, flag_version, rule FROM exposures").fetchall() == [
        ("fraud-model", 1, "eu-small")
    ]
    assert stats["exposures_sent"] == 3000
    assert stats["exposures_duplicated"] == 3000
    assert stats["outcomes_sent"] == 3000
    assert stats["evaluations"] == 6000


def test_serves_the_disk_cache_while_the_server_is_down(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "server")
    process.start()
    try:
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {process.admin_token}"
        base = f"{process.url}/api/v1/envs/production"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
        key = admin.post(
            f"{process.url}/api/v1/tokens", json={"name": "app", "role": "sdk", "env": "production"}
        ).json()["token"]
        options: dict[str, Any] = {"cache_dir": tmp_path / "cache", "max_backoff": 0.5}
        with rollwise.Client(process.url, key, **options) as first:
            assert first.wait_until_ready(10)
        process.kill()
        with rollwise.Client(process.url, key, connect_timeout=0.5, **options) as client:
            assert client.variant("fraud-model", QA) == "v2"  # at once, from the cache
            status = client.status()
            assert (status.origin, status.revision, status.ready) == ("disk_cache", 2, False)
            assert status.age_seconds is not None
            process.start()
            assert client.wait_until_ready(15)
            admin.post(f"{base}/flags/fraud-model/kill", json={"reason": "test"}).raise_for_status()
            assert wait_for(lambda: client.variant("fraud-model", QA) == "v1", 15)
            assert client.status().origin == "server"
    finally:
        process.stop()


def test_a_corrupt_cache_is_ignored_with_a_warning(
    server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = server.token("sdk", env="production")
    with rollwise.Client(server.url, key, cache_dir=tmp_path / "cache") as client:
        assert client.wait_until_ready(10)
    (snapshot,) = (tmp_path / "cache").glob("rules-*.json")
    snapshot.write_text("{ not json")
    with (
        caplog.at_level("WARNING", logger="rollwise"),
        rollwise.Client(
            "http://127.0.0.1:9", key, cache_dir=tmp_path / "cache", connect_timeout=0.2
        ) as client,
    ):
        assert client.status().origin is None
    with (
        caplog.at_level("WARNING", logger="rollwise"),
        rollwise.Client(server.url, key, cache_dir=tmp_path / "cache") as client,
    ):
        # the corrupt cache is never used (the server's document may already have arrived:
        # the first fetch starts at once, so the origin is None or "server", never "cache")
        assert client.status().origin != "cache"
        assert client.wait_until_ready(10)
    assert str(snapshot) in caplog.text


def test_bootstrap_serves_before_the_first_fetch(tmp_path: Path) -> None:
    bootstrap = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
    with rollwise.Client(
        "http://127.0.0.1:9", "rw_nothing", bootstrap=bootstrap, cache_dir=None, connect_timeout=0.2
    ) as client:
        assert client.variant("fraud-model", QA) == "v2"
        status = client.status()
        assert (status.origin, status.revision, status.ready) == ("bootstrap", 12, False)
        assert not client.wait_until_ready(0.2)
        assert wait_for(lambda: client.status().last_error is not None, 5)
        assert "unreachable" in (client.status().last_error or "")


def test_a_bad_sdk_key_is_reported(server: LiveServer, tmp_path: Path) -> None:
    with rollwise.Client(server.url, "rw_wrong", cache_dir=None) as client:
        started = time.monotonic()
        assert not client.wait_until_ready(60)  # the key was refused: no waiting in vain
        assert time.monotonic() - started < 30
        assert client.status().connection == "unauthorized"
        assert wait_for(lambda: client.status().last_error is not None, 5)
        assert "401" in (client.status().last_error or "")
        assert client.variant("fraud-model", QA, default="safe") == "safe"


def test_configuration_errors_name_the_option() -> None:
    with pytest.raises(rollwise.ConfigurationError, match="url"):
        rollwise.Client("ftp://x", "key")
    with pytest.raises(rollwise.ConfigurationError, match="poll_interval"):
        rollwise.Client("http://127.0.0.1:9", "key", poll_interval=0)
    with pytest.raises(TypeError):
        rollwise.Client("http://127.0.0.1:9", "key", no_such_option=1)
    with pytest.raises(rollwise.ConfigurationError, match="ROLLWISE_URL"):
        rollwise.ClientConfig.from_env({})
    environ = {
        "ROLLWISE_URL": "http://127.0.0.1:9/",
        "ROLLWISE_SDK_KEY": "k",
        "ROLLWISE_STREAMING": "off",
        "ROLLWISE_POLL_INTERVAL": "2.5",
        "ROLLWISE_CACHE_DIR": "",
    }
    config = rollwise.ClientConfig.from_env(environ)
    assert (config.url, config.streaming, config.poll_interval, config.cache_dir) == (
        "http://127.0.0.1:9", False, 2.5, None,
    )  # fmt: skip
    assert "sdk_key='***'" in repr(config)
    fallbacks = rollwise.ClientConfig.from_env(
        {**environ, "ROLLWISE_FALLBACK_URLS": " http://10.0.0.2:8000/ , https://b.example "}
    ).fallback_urls
    assert fallbacks == ("http://10.0.0.2:8000", "https://b.example")
    with pytest.raises(rollwise.ConfigurationError, match=r"fallback_urls\[1\]: .* 'b:9'"):
        rollwise.Client("http://127.0.0.1:9", "key", fallback_urls=["http://a:9", "b:9"])


def test_requests_go_to_the_next_replica_when_one_is_unreachable(server: LiveServer) -> None:
    """The transport alone: a refused connection moves it to the next URL, which it keeps."""
    from rollwise.config import ClientConfig
    from rollwise.transport import RequestsTransport

    key = server.token("sdk", env="production")
    config = ClientConfig(url=f"http://127.0.0.1:{free_port()}", sdk_key=key,
                          fallback_urls=[server.url], connect_timeout=1.0)  # fmt: skip
    transport = RequestsTransport(config)
    with pytest.raises(rollwise.ServerUnavailableError, match=f"next: {server.url}"):
        transport.fetch_rules(None)
    assert transport.url == server.url
    assert transport.fetch_rules(None).status == 200
    assert transport.fetch_rules(None).status == 200  # it stays there


def test_from_env(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLWISE_URL", server.url)
    monkeypatch.setenv("ROLLWISE_SDK_KEY", server.token("sdk", env="production"))
    monkeypatch.setenv("ROLLWISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ROLLWISE_STREAMING", "false")
    with rollwise.Client.from_env(poll_interval=0.2) as client:
        assert client.wait_until_ready(10)
        assert client.variant("fraud-model", QA) == "v2"
        assert wait_for(lambda: client.status().connection == "polling")


def test_the_spool_cap_drops_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with rollwise.Client(
        "http://127.0.0.1:9", "rw_key", cache_dir=tmp_path, spool_max_bytes=20_000,
        connect_timeout=0.2, max_backoff=60, flush_interval=0.05,
    ) as client:  # fmt: skip
        for i in range(400):
            client.track("latency_ms", f"user-{i}", 12.5)
        assert not client.flush(3)  # the server is away: nothing can be delivered
        stats = client.stats()
    assert stats["outcomes_tracked"] == 400
    assert 0 < stats["events_spooled"] < 400
    assert stats["events_dropped_at_spool_cap"] == 400 - stats["events_spooled"]
    assert "spool" in caplog.text.lower()


def test_a_backlog_spills_to_the_spool_and_is_delivered(server: LiveServer, tmp_path: Path) -> None:
    """When the sender falls behind (a queue half full), it spills to disk instead of dropping."""
    with make_client(server, tmp_path, max_queue=200, flush_interval=0.5) as client:
        assert client.wait_until_ready(10)
        for i in range(180):  # faster than one flush interval: the queue passes half of 200
            client.track("clicked", f"user-{i}", 1)
        assert client.flush(30)
        stats = client.stats()
    assert stats["outcomes_dropped"] == 0
    assert stats["events_spooled"] > 0
    assert stats["events_replayed"] == stats["events_spooled"]
    db = sqlite3.connect(server.db)
    assert db.execute("SELECT count(*), count(DISTINCT unit) FROM outcomes").fetchone() == (
        180,
        180,
    )

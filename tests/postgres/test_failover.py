"""An SDK given several replicas (``fallback_urls``) keeps its rules fresh and loses no event,
stores none twice, when the replica it talks to is killed (``kill -9``) mid-stream."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

import rollwise
from rollwise_server.testing import (
    DEFAULT_POSTGRESQL,
    ServerProcess,
    connect,
    new_database,
    postgresql_under_test,
)
from tests.sdk.test_online import QA, wait_for
from tests.server.conftest import EU_SEGMENT, example_flag

EVENTS = 20_000


def test_an_sdk_fails_over_to_another_replica_and_every_event_is_stored_once(
    tmp_path: Path,
) -> None:
    db = new_database(tmp_path, postgresql_under_test() or DEFAULT_POSTGRESQL)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a, b = (ServerProcess(tmp_path / name, db=db) for name in ("a", "b"))
    try:
        a.start()
        b.start()
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {a.admin_token}"
        base = f"{a.url}/api/v1/envs/production"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
        key = admin.post(
            f"{a.url}/api/v1/tokens", json={"name": "app", "role": "sdk", "env": "production"}
        ).json()["token"]
        options = {"cache_dir": tmp_path / "cache", "flush_interval": 0.02, "max_backoff": 0.5,
                   "connect_timeout": 1.0, "fallback_urls": [b.url]}  # fmt: skip
        with rollwise.Client(a.url, key, **options) as client:
            assert client.wait_until_ready(10)
            half = threading.Event()

            def evaluate() -> None:
                for i in range(EVENTS):
                    client.variant(
                        "fraud-model", {"user_id": f"user-{i}", "country": "DE", "amount": 100}
                    )
                    if i == EVENTS // 2:
                        half.set()
                    if i % 500 == 0:
                        time.sleep(0.01)  # spread over the kill

            worker = threading.Thread(target=evaluate)
            worker.start()
            assert half.wait(30)
            a.kill()  # mid-stream, with batches in flight
            worker.join()
            admin.headers["Authorization"] = f"Bearer {b.admin_token}"
            killed = admin.post(
                f"{b.url}/api/v1/envs/production/flags/fraud-model/kill", json={"reason": "drill"}
            )
            killed.raise_for_status()
            assert wait_for(lambda: client.variant("fraud-model", QA) == "v1", 15)
            assert client.flush(30), client.stats()
            stats = client.stats()
        rows = connect(db)
        assert rows.execute("SELECT count(*), count(DISTINCT id) FROM exposures").fetchone() == (
            EVENTS,
            EVENTS,
        ), stats
    finally:
        a.stop()
        b.stop()

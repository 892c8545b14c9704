"""Fault tests: a server killed mid-stream, one answering errors, garbage or nothing, a bad
document, and a fork. Real servers on 127.0.0.1 (the real one, or ``FaultServer`` for faults
the real one cannot be made to produce)."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import rollwise
from rollwise_server.testing import ServerProcess
from tests.sdk.faultserver import FaultServer
from tests.sdk.test_online import wait_for
from tests.server.conftest import EU_SEGMENT, example_flag

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
QA = {"user_id": "u1"}


def _prepare(process: ServerProcess) -> str:
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {process.admin_token}"
    base = f"{process.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    flag = example_flag()
    flag["rules"][1]["serve"]["split"] = [
        {"variant": "v2", "weight": 50},
        {"variant": "v1", "weight": 50},
    ]
    admin.post(f"{base}/flags", json=flag).raise_for_status()
    response = admin.post(
        f"{process.url}/api/v1/tokens", json={"name": "app", "role": "sdk", "env": "production"}
    )
    return str(response.json()["token"])


@pytest.mark.slow
def test_200k_exposures_survive_two_kill_9s(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "server")
    process.start()
    units = 200_000
    try:
        key = _prepare(process)
        client = rollwise.Client(
            process.url,
            key,
            cache_dir=tmp_path / "cache",
            flush_interval=0.05,
            max_backoff=0.5,
            connect_timeout=1,
            max_queue=units,
        )
        assert client.wait_until_ready(10)
        kills = spooled = 0
        for i in range(units):
            client.variant("fraud-model", {"user_id": f"user-{i}", "country": "FR", "amount": 10})
            if i in (60_000, 130_000):
                process.kill()  # SIGKILL while batches are in flight
                kills += 1
            if i in (90_000, 170_000):
                # stay down until the client has spooled something: the outage is real
                assert wait_for(lambda n=spooled: client.stats()["events_spooled"] > n, 30)
                spooled = client.stats()["events_spooled"]
                process.start()
        assert kills == 2
        assert client.flush(120), client.stats()
        stats = client.stats()
        client.close()
    finally:
        process.stop()
    db = sqlite3.connect(process.db)
    assert db.execute("SELECT count(*), count(DISTINCT unit) FROM exposures").fetchone() == (
        units,
        units,
    )
    assert stats["events_spooled"] > 0  # the outages really were spooled and replayed
    assert stats["events_replayed"] == stats["events_spooled"]
    assert stats["exposures_recorded"] == units


def _document(revision: int, variant: str) -> dict[str, Any]:
    doc = json.loads(EXAMPLE.read_text())
    doc["revision"] = revision
    doc["flags"]["fraud-model"]["rules"][0]["serve"]["variant"] = variant
    return doc


@pytest.mark.parametrize("mode", ["error", "garbage", "hang"])
def test_a_misbehaving_server_never_disturbs_evaluation(tmp_path: Path, mode: str) -> None:
    with FaultServer(_document(1, "v2")) as server:
        client = rollwise.Client(
            server.url, "rw_key", cache_dir=tmp_path, read_timeout=1, stream_timeout=1,
            poll_interval=0.5, max_backoff=0.2, flush_interval=0.05,
        )  # fmt: skip
        try:
            assert client.wait_until_ready(10)
            server.mode = mode
            results = set()
            for i in range(3000):  # about three seconds of traffic while the server misbehaves
                results.add(client.variant("fraud-model", QA))
                context = {"user_id": f"u-{i}", "country": "DE", "amount": 1}
                client.variant("fraud-model", context)
                client.track("fraud_caught", f"u-{i}", 1)
                time.sleep(0.001)
            assert results == {"v2"}  # the last good rules, every time
            assert client.status().revision == 1
            assert wait_for(lambda: client.status().last_error is not None, 5)
            server.mode = "ok"
            server.publish(_document(2, "v1"))
            assert wait_for(lambda: client.variant("fraud-model", QA) == "v1", 15)
            assert client.flush(15), client.stats()
        finally:
            client.close()
        assert any(e.get("metric") == "fraud_caught" for e in server.received)


def test_an_invalid_document_is_rejected_and_the_last_good_one_stays(tmp_path: Path) -> None:
    with (
        FaultServer(_document(1, "v2")) as server,
        rollwise.Client(server.url, "rw_key", cache_dir=tmp_path, max_backoff=0.2) as client,
    ):
        assert client.wait_until_ready(10)
        bad = copy.deepcopy(_document(2, "v1"))
        bad["flags"]["fraud-model"]["default_variant"] = "v9"
        server.publish(bad)
        assert wait_for(lambda: "rejected rules revision 2" in (client.status().last_error or ""))
        assert "flags.fraud-model.default_variant" in (client.status().last_error or "")
        assert client.variant("fraud-model", QA) == "v2"
        assert client.status().revision == 1
        server.publish(_document(3, "v1"))
        assert wait_for(lambda: client.variant("fraud-model", QA) == "v1")


def _child(url: str, key: str, cache: str, queue: Any) -> None:
    client = _CLIENTS[0]
    for i in range(500):
        client.variant("fraud-model", {"user_id": f"child-{i}", "country": "DE", "amount": 1})
    client.track("fraud_caught", "child-1", 1)
    queue.put((client.flush(20), os.getpid(), client.stats()["exposures_sent"]))


_CLIENTS: list[rollwise.Client] = []


def test_a_forked_child_gets_working_threads_and_its_own_spool(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "server")
    process.start()
    try:
        key = _prepare(process)
        client = rollwise.Client(
            process.url, key, cache_dir=tmp_path / "cache", flush_interval=0.05
        )
        _CLIENTS[:] = [client]
        assert client.wait_until_ready(10)
        for i in range(500):
            client.variant("fraud-model", {"user_id": f"parent-{i}", "country": "DE", "amount": 1})
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_child, args=(process.url, key, str(tmp_path), queue))
        child.start()
        flushed, pid, sent = queue.get(timeout=60)
        child.join(30)
        assert (flushed, child.exitcode, sent) == (True, 0, 500)
        assert client.flush(20)
        client.close()
        _CLIENTS.clear()
        spools = sorted(p.name for p in (tmp_path / "cache").glob("events-*.sqlite"))
        assert any(name.endswith(f"-{pid}.sqlite") for name in spools), spools
    finally:
        process.stop()
    db = sqlite3.connect(process.db)
    units = {u for (u,) in db.execute("SELECT unit FROM exposures")}
    assert units == {f"parent-{i}" for i in range(500)} | {f"child-{i}" for i in range(500)}
    assert db.execute("SELECT count(*) FROM outcomes").fetchone() == (1,)


def test_threads_stop_on_close(tmp_path: Path) -> None:
    with FaultServer(_document(1, "v2")) as server:
        before = {t.name for t in threading.enumerate()}
        client = rollwise.Client(server.url, "rw_key", cache_dir=tmp_path)
        assert client.wait_until_ready(10)
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 5
        after = {t.name for t in threading.enumerate() if t.name.startswith("rollwise-")}
        assert after <= before
        assert client.status().connection == "closed"
        assert client.variant("fraud-model", QA) == "v2"  # evaluation outlives close()

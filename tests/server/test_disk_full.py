"""A full disk, for real: the server's database on a small tmpfs that the test fills up.

A write that fails for lack of space answers 503 ``storage_full`` with ``Retry-After`` (never a
generic 500), ``/readyz`` answers 503 until the database can be written again, each change is
logged once, and events refused meanwhile reach the database once there is room (the SDK keeps
them and retries).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

import rollwise
from rollwise_server.errors import StorageFull
from rollwise_server.rollouts.controller import Controller
from rollwise_server.storage import open_store
from rollwise_server.storage.checkpoint import WalCheckpointer
from rollwise_server.testing import LiveServer, live_server
from tests.sdk.test_online import wait_for
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag
from tests.server.documented import assert_documented

pytestmark = pytest.mark.sqlite_only(
    reason="a full disk is made with a small filesystem under the SQLite file"
)

SIZE = "16m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of its own (``mount`` needs root, as on this project's CI machines)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        pytest.skip(f"a small filesystem is needed (mount -t tmpfs): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)  # noqa: S603, S607


@pytest.fixture
def server(small_disk: Path) -> Iterator[LiveServer]:
    with live_server(small_disk) as running:
        yield running


def fill(server: LiveServer) -> Path:
    """Leave no free byte on the server's filesystem; the file to delete to make room again.

    The WAL is truncated first (a ``TRUNCATE`` checkpoint): otherwise SQLite writes the next
    transactions over the WAL's old frames, which needs no new space, and the first writes
    after the disk fills may still succeed (as they would in production)."""
    with sqlite3.connect(server.db, timeout=10) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    return fill_up(Path(server.db).parent)


def fill_up(directory: Path) -> Path:
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as out:
        while chunk:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    return filler


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_full_disk_is_503_storage_full_and_not_ready_until_there_is_room(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rollwise")
    admin = server.session()
    segments = f"{server.url}/api/v1/envs/production/segments"
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    filler = fill(server)

    for attempt in range(3):
        response = admin.post(segments, json={**EU_SEGMENT, "key": f"s{attempt}"}, timeout=10)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "storage_full"
        assert "disk" in response.json()["detail"]
        assert 0 < int(response.headers["Retry-After"]) <= 60
        assert_documented("POST", "/api/v1/envs/{env}/segments", response)

    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert "cannot be written" in ready.json()["detail"]
    assert_documented("GET", "/readyz", ready)
    assert "rollwise_storage_writable 0.0" in requests.get(f"{server.url}/metrics", timeout=10).text
    assert admin.get(segments, timeout=10).status_code == 200  # reads still work
    assert len(_messages(caplog, "cannot be written")) == 1  # once per change, not per request

    filler.unlink()
    assert wait_for(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, 10)
    assert admin.post(segments, json=EU_SEGMENT, timeout=10).status_code == 201
    assert "rollwise_storage_writable 1.0" in requests.get(f"{server.url}/metrics", timeout=10).text
    assert len(_messages(caplog, "can be written again")) == 1
    assert len(_messages(caplog, "cannot be written")) == 1


def _outcomes(server: LiveServer) -> int:
    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=10) as conn:
        query = "SELECT count(*) FROM outcomes WHERE unit LIKE 'user-%'"  # the client's
        return int(conn.execute(query).fetchone()[0])


def test_events_refused_for_a_full_disk_arrive_once_there_is_room(
    server: LiveServer, tmp_path: Path
) -> None:
    key = server.token("sdk", env="production")
    events = f"{server.url}/api/v1/sdk/events"
    auth = {"Authorization": f"Bearer {key}"}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stored = {"id": str(uuid.uuid4()), "ts": now, "metric": "converted", "unit_type": "user_id",
              "unit": "u-0", "value": 1}  # fmt: skip
    assert requests.post(events, json=[stored], headers=auth, timeout=10).json()["accepted"] == 1
    filler = fill(server)

    event = {**stored, "id": str(uuid.uuid4()), "unit": "u-1"}
    refused = requests.post(events, json=[event], headers=auth, timeout=10)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "storage_full"
    assert int(refused.headers["Retry-After"]) > 0
    assert_documented("POST", "/api/v1/sdk/events", refused)
    # A batch stored already needs no write: it is answered, and proves nothing about space.
    again = requests.post(events, json=[stored], headers=auth, timeout=10)
    assert again.json()["duplicates"] == 1
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 503

    client = rollwise.Client(
        server.url, key, cache_dir=tmp_path / "cache", flush_interval=0.05, max_backoff=0.5
    )
    try:
        for unit in range(500):
            client.track("converted", f"user-{unit}", 1)
        assert wait_for(lambda: "503" in str(client.stats()["last_error"]), 20), client.stats()
        assert _outcomes(server) == 0
        filler.unlink()
        assert client.flush(30), client.stats()
        assert wait_for(lambda: _outcomes(server) == 500, 20), _outcomes(server)
        assert client.stats()["outcomes_rejected"] == 0
    finally:
        client.close()


def test_checkpoints_failing_for_a_full_disk_are_logged_once(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(small_disk / "wal.db")
    writer = sqlite3.connect(path, isolation_level=None)  # open to the end: no checkpoint on close
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x BLOB)")
    writer.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,) for _ in range(2000)])
    filler = fill_up(small_disk)  # the WAL's frames cannot be copied into the database file
    checkpointer = WalCheckpointer(path, interval=0.01)
    try:
        assert wait_for(lambda: checkpointer.failures >= 5)
        assert len(_messages(caplog, "WAL checkpoints fail")) == 1
        filler.unlink()
        assert wait_for(lambda: _messages(caplog, "WAL checkpoints work again") != [])
        assert len(_messages(caplog, "WAL checkpoints fail")) == 1
    finally:
        checkpointer.close()
        writer.close()


PLAN: dict[str, Any] = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-small",
    "stages": [{"share": 0.2, "min_units": 300}, {"share": 1.0, "min_units": 600}],
    "guardrails": [
        {"metric": "fraud_caught", "kind": "binary", "harm": "decrease", "cohorts": ["country"]}
    ],
}


class Notices:
    """Where the controller's webhook notices go (none are expected)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def notify(self, *notice: Any) -> None:
        self.sent.append(notice)


def test_a_full_disk_puts_no_rollout_on_the_control(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The controller's round stops at the full disk (said once, by the store) and does not
    mark the rollout errored: a full disk is the operator's to fix, not the candidate's fault."""
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    define_metrics(server)
    rollout = f"{base}/flags/fraud-model/rollout"
    admin.put(rollout, json=PLAN).raise_for_status()
    admin.post(f"{rollout}/start").raise_for_status()
    store = open_store(server.db)
    try:
        notices = Notices()
        controller = Controller(store, notices, lambda env, revision: None, 1.0)  # type: ignore[arg-type]
        filler = fill(server)
        for _ in range(3):
            with pytest.raises(StorageFull):
                asyncio.run(controller.round())
        assert not [r for r in caplog.records if r.exc_info]  # no traceback per round
        assert len(_messages(caplog, "cannot be written")) == 1
        filler.unlink()
        asyncio.run(controller.round())
        assert admin.get(rollout).json()["state"]["status"] == "running"
        assert notices.sent == []
    finally:
        store.close()

"""Concurrent editors lose no update; a server killed mid-ingest loses and half-stores nothing."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from rollwise_server.testing import LiveServer, ServerProcess, connect
from tests.server.conftest import EU_SEGMENT, example_flag

EDITORS = 8
EDITS = 10


def test_concurrent_editors_with_if_match(server: LiveServer) -> None:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    url = f"{base}/flags/fraud-model"
    accepted: list[tuple[int, str]] = []
    conflicts: list[int] = []
    lock = threading.Lock()

    def editor(number: int) -> None:
        session = server.session()
        for edit in range(EDITS):
            description = f"editor {number} edit {edit}"
            while True:
                current = session.get(url).json()
                body = {**example_flag(), "description": description}
                response = session.put(
                    url, json=body, headers={"If-Match": f'"{current["version"]}"'}
                )
                with lock:
                    if response.status_code == 200:
                        accepted.append((response.json()["version"], description))
                        break
                    assert response.status_code == 409, response.text
                    assert response.json()["current_version"] > current["version"]
                    conflicts.append(number)

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(EDITORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = admin.get(f"{url}/history", params={"limit": 100}).json()["versions"]
    assert EDITORS * EDITS + 1 <= 100  # one page holds them all
    updates = [
        (h["version"], h["body"]["description"]) for h in history if h["action"] == "flag.update"
    ]
    assert sorted(accepted) == updates  # every accepted edit exactly once, in version order
    assert len(updates) == EDITORS * EDITS
    assert [v for v, _ in updates] == list(range(2, EDITORS * EDITS + 2))
    final = admin.get(url).json()
    assert (final["version"], final["description"]) == max(accepted)
    assert len(conflicts) > 0  # the editors really did collide


def _batch(units: range) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"exposure-{unit}")),
            "ts": "2026-11-25T10:00:00Z",
            "flag": "fraud-model",
            "flag_version": 1,
            "variant": "v2" if unit % 10 == 0 else "v1",
            "rule": "eu-small",
            "unit_type": "user_id",
            "unit": f"user-{unit}",
            "attrs": {"country": "DE"},
        }
        for unit in units
    ]


def test_kill_9_mid_ingest_then_resend(tmp_path: Path) -> None:
    batches = [_batch(range(start, start + 1000)) for start in range(0, 40_000, 1000)]
    process = ServerProcess(tmp_path)
    process.start()
    token = requests.post(
        f"{process.url}/api/v1/tokens",
        json={"name": "sdk", "role": "sdk", "env": "production"},
        headers={"Authorization": f"Bearer {process.admin_token}"},
        timeout=10,
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    sent = threading.Event()

    def send_all() -> None:
        with requests.Session() as session:
            for batch in batches:
                try:
                    session.post(
                        f"{process.url}/api/v1/sdk/exposures",
                        json={"events": batch},
                        headers=headers,
                        timeout=10,
                    )
                except requests.ConnectionError:
                    return
                sent.set()

    sender = threading.Thread(target=send_all)
    sender.start()
    sent.wait(timeout=30)
    deadline = time.monotonic() + 30
    watcher = connect(process.db)
    while watcher.execute("SELECT count(*) FROM exposures").fetchone()[0] < 5000:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.kill()  # SIGKILL, while batches keep arriving
    sender.join()
    conn = connect(process.db)
    if not conn.postgresql:  # PostgreSQL checks itself (WAL replay after a crash)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = conn.execute("SELECT count(*) FROM exposures").fetchone()[0]
    assert 0 < stored < 40_000, "the kill should land mid-ingest"
    assert stored % 1000 == 0, "a batch is stored whole or not at all"
    process.start()
    try:
        totals = [0, 0]
        with requests.Session() as session:
            for batch in batches:
                result = session.post(
                    f"{process.url}/api/v1/sdk/exposures",
                    json={"events": batch},
                    headers=headers,
                    timeout=30,
                ).json()
                totals[0] += result["accepted"]
                totals[1] += result["duplicates"]
    finally:
        process.stop()
    assert totals == [40_000 - stored, stored]
    conn = connect(process.db)
    assert conn.execute("SELECT count(*), count(DISTINCT id) FROM exposures").fetchone() == (
        40_000,
        40_000,
    )

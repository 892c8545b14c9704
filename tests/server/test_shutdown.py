"""A graceful shutdown (SIGTERM): the streams end, the process exits, and every ingestion
batch the server acknowledged is stored whole, however the stop falls among the requests."""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from rollwise_server.testing import ServerProcess, connect
from tests.server.test_sdk_endpoints import exposure


def test_sigterm_ends_the_streams_and_stores_every_acknowledged_batch(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, log_level="info")
    server.start()
    assert server.process is not None
    sdk_token = requests.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "sdk", "role": "sdk", "env": "production"},
        headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10,
    ).json()["token"]  # fmt: skip
    headers = {"Authorization": f"Bearer {sdk_token}"}
    stream = requests.get(
        f"{server.url}/api/v1/sdk/stream", headers=headers, stream=True, timeout=30
    )
    assert stream.status_code == 200
    lines = stream.iter_lines(decode_unicode=True)
    assert next(line for line in lines if line.startswith("event:")) == "event: rules"
    ended = threading.Event()

    def read_to_the_end() -> None:
        # some uvicorn versions end the response, others drop the connection: both end it
        with contextlib.suppress(requests.RequestException):
            for _ in lines:
                pass
        ended.set()

    threading.Thread(target=read_to_the_end, daemon=True).start()
    batches = [[exposure(id=str(uuid.uuid4()), unit=f"b{b}-u{i}") for i in range(200)]
               for b in range(60)]  # fmt: skip
    started = threading.Event()

    def send(batch: list[dict[str, object]]) -> int | None:
        started.set()
        try:
            return requests.post(
                f"{server.url}/api/v1/sdk/exposures", json={"events": batch}, headers=headers,
                timeout=30,
            ).status_code  # fmt: skip
        except requests.ConnectionError:
            return None  # refused: the server had stopped listening

    with ThreadPoolExecutor(4) as pool:
        results = pool.map(send, batches)
        assert started.wait(10)
        server.process.terminate()  # SIGTERM while batches are in flight
        statuses = list(results)
    # uvicorn re-raises the signal once it has shut down: the exit is by SIGTERM, after the
    # lifespan's shutdown (streams ended, the ingest queue stored, the database closed)
    assert server.process.wait(timeout=30) in (0, -15)
    log = server.log.read_text()
    assert "Application shutdown complete" in log, log[-2000:]
    assert ended.wait(10), "the SDK stream did not end at shutdown"
    with connect(server.db) as db:
        stored = {unit for (unit,) in db.execute("SELECT unit FROM exposures")}
    for status, batch in zip(statuses, batches, strict=True):
        units = {str(event["unit"]) for event in batch}
        if status == 200:
            assert units <= stored  # acknowledged: all there
        else:
            assert not units & stored or units <= stored  # never half of a batch
    assert any(status == 200 for status in statuses)

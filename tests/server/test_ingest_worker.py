"""The ingestion worker: group commit across concurrent requests, canonical and other forms of
ids and times, the event tables' migration, and a store failure reaching every waiting request."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlite_utils import Database

from rollwise_server.ingest_worker import IngestWorker
from rollwise_server.storage import open_store
from rollwise_server.storage.base import EventRow, IngestCounts
from rollwise_server.storage.migrations_sqlite import migrations
from rollwise_server.testing import LiveServer, connect
from tests.server.test_sdk_endpoints import exposure, sdk_session


def test_concurrent_batches_each_get_their_own_counts(server: LiveServer) -> None:
    """8 threads post 25 batches each; every batch repeats 10 ids of a shared pool and carries
    one bad event. Whatever batches are committed together, each answer counts its own events,
    and the table holds each id once."""
    url = f"{server.url}/api/v1/sdk/exposures"
    shared = [str(uuid.uuid4()) for _ in range(10)]
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        sdk = sdk_session(server)
        for b in range(25):
            own = [exposure(unit=f"w{worker}-b{b}-{i}") for i in range(40)]
            repeated = [exposure(id=i, unit="shared") for i in shared]
            body = {"events": [*own, *repeated, exposure(ts="never")]}
            answer = sdk.post(url, json=body, timeout=30).json()
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 200
    assert all(a["rejected"] == 1 and a["errors"][0]["index"] == 50 for a in answers)
    assert all(a["accepted"] + a["duplicates"] == 50 for a in answers)
    assert sum(a["accepted"] for a in answers) == 200 * 40 + 10
    stored = connect(server.db).execute("SELECT count(*), count(DISTINCT id) FROM exposures")
    assert stored.fetchone() == (200 * 40 + 10, 200 * 40 + 10)


@pytest.mark.parametrize(
    ("field", "sent", "stored"),
    [
        ("id", "0190A3B2-C4D5-7E6F-8A9B-0C1D2E3F4A5B", "0190a3b2-c4d5-7e6f-8a9b-0c1d2e3f4a5b"),
        ("id", "0190a3b2c4d57e6f8a9b0c1d2e3f4a5b", "0190a3b2-c4d5-7e6f-8a9b-0c1d2e3f4a5b"),
        ("ts", "2026-11-25T11:00:00+01:00", "2026-11-25T10:00:00.000Z"),
        ("ts", "2026-11-25T10:00:00.123456Z", "2026-11-25T10:00:00.123Z"),
        ("ts", "2028-02-29T10:00:00.000Z", "2028-02-29T10:00:00.000Z"),
        ("ts", "2026-01-31T23:59:59.999Z", "2026-01-31T23:59:59.999Z"),
    ],
)
def test_other_forms_are_stored_canonical(
    server: LiveServer, field: str, sent: str, stored: str
) -> None:
    answer = sdk_session(server).post(
        f"{server.url}/api/v1/sdk/exposures", json={"events": [exposure(**{field: sent})]}
    )
    assert answer.json()["accepted"] == 1
    row = connect(server.db).execute(f"SELECT {field} FROM exposures").fetchone()  # noqa: S608
    assert row == (stored,)


@pytest.mark.parametrize(
    "ts",
    [
        "2026-02-29T10:00:00.000Z",  # not a leap year
        "2026-04-31T10:00:00.000Z",
        "2026-13-01T10:00:00.000Z",
        "2026-11-25T24:00:00.000Z",
        "2026-11-25T10:60:00.000Z",
        "2026-11-25",
    ],
)
def test_impossible_times_are_rejected(server: LiveServer, ts: str) -> None:
    answer = (
        sdk_session(server)
        .post(f"{server.url}/api/v1/sdk/exposures", json={"events": [exposure(ts=ts)]})
        .json()
    )
    assert (answer["accepted"], answer["rejected"]) == (0, 1)
    assert answer["errors"][0]["problems"] == [
        {"path": "ts", "message": "must be an RFC 3339 date-time"}
    ]


def test_the_event_tables_migration_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m003_event_tables_in_arrival_order")
    db.execute(
        "INSERT INTO exposures VALUES ('b', 'production', '2026-11-25T10:00:00.000Z', 'f', 1, 'v1',"
        " NULL, 'user_id', 'u1', '{}', '2026-11-25T10:00:01.000000Z')"
    )
    db.execute(
        "INSERT INTO exposures VALUES ('a', 'production', '2026-11-25T09:00:00.000Z', 'f', 1, 'v2',"
        " 'r', 'user_id', 'u2', '{\"country\":\"DE\"}', '2026-11-25T10:00:02.000000Z')"
    )
    db.execute(
        "INSERT INTO outcomes VALUES ('o', 'production', '2026-11-25T10:00:00.000Z', 'm',"
        " 'user_id', 'u1', 2.5, '{}', '2026-11-25T10:00:03.000000Z')"
    )
    db.conn.commit()
    db.close()
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    assert conn.execute(
        "SELECT seq, id, variant, rule, attrs FROM exposures ORDER BY seq"
    ).fetchall() == [
        (1, "b", "v1", None, "{}"),
        (2, "a", "v2", "r", '{"country":"DE"}'),
    ]
    assert conn.execute("SELECT seq, id, value FROM outcomes").fetchall() == [(1, "o", 2.5)]
    indexes = {row[1] for row in conn.execute("SELECT * FROM sqlite_master WHERE type = 'index'")}
    assert {"exposures_flag_unit", "outcomes_metric_unit"} <= indexes
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO exposures (id, env, ts, flag, flag_version, variant, unit_type, unit,"
            " attrs, received_at) SELECT id, env, ts, flag, flag_version, variant, unit_type,"
            " unit, attrs, received_at FROM exposures WHERE id = 'a'"
        )


class _BrokenStore:
    """A store whose disk fails (a fault the tests cannot cause for real on this machine)."""

    ingest_writers = 1

    def __init__(self) -> None:
        self.release = threading.Event()

    def ingest_many(
        self, batches: Sequence[tuple[Literal["exposures", "outcomes"], Sequence[EventRow]]]
    ) -> list[IngestCounts]:
        self.release.wait(10)
        raise sqlite3.OperationalError("disk I/O error")


def test_a_store_failure_reaches_every_request_of_the_group() -> None:
    store = _BrokenStore()
    worker = IngestWorker(store, max_body_bytes=1_000_000, max_events=100)  # type: ignore[arg-type]

    async def main() -> list[BaseException | Any]:
        body = json.dumps({"events": [exposure()]}).encode()
        tasks = [
            asyncio.ensure_future(worker.submit("exposures", body, None, "production"))
            for _ in range(5)
        ]
        tasks.append(asyncio.ensure_future(worker.submit("exposures", b"{nope", None, "prod")))
        await asyncio.sleep(0.2)
        store.release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        store.release.set()
        worker.close()
    assert all(isinstance(r, sqlite3.OperationalError) for r in results[:5])
    assert type(results[5]).__name__ == "BadRequest"

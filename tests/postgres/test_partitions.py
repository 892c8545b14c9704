"""The PostgreSQL event tables: monthly partitions by event time, retention by dropping whole
months, and rows of a month that had no partition moved into it when it is made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollwise_server.storage.postgres import PostgresStore
from rollwise_server.storage.sql import now_iso
from rollwise_server.testing import DEFAULT_POSTGRESQL, connect, new_database, postgresql_under_test

YEAR = 365 * 86_400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PostgresStore]:
    db = new_database(tmp_path, postgresql_under_test() or DEFAULT_POSTGRESQL)
    opened = PostgresStore(db, event_max_age=3 * YEAR, event_max_future=86_400.0)
    yield opened
    opened.close()


def _exposure(ts: datetime) -> tuple[object, ...]:
    text = ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (str(uuid.uuid4()), "production", text, "f", 1, "on", None, "user", "u", "{}",
            now_iso())  # fmt: skip


def _partitions(store: PostgresStore, table: str) -> dict[str, int]:
    rows = connect(store.url)
    names = [
        name
        for (name,) in rows.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ?"
            " AND p.relnamespace = to_regnamespace(current_schema())::oid",
            (table,),
        )
    ]
    return {n: rows.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}  # noqa: S608


def test_events_go_to_their_month_and_old_months_are_dropped_whole(store: PostgresStore) -> None:
    now = datetime.now(UTC)
    recent = [_exposure(now - timedelta(days=d)) for d in (0, 1, 40, 80)]
    old = [_exposure(now - timedelta(days=d)) for d in (500, 700)]  # before the partitions
    counts = store.ingest("exposures", recent + old)
    assert (counts.accepted, counts.duplicates) == (6, 0)
    parts = _partitions(store, "exposures")
    assert parts["exposures_default"] == 2  # older than the 12 months partitioned
    assert parts[now.strftime("exposures_p%Y%m")] >= 1
    assert sum(parts.values()) == 6
    assert len([n for n in parts if n != "exposures_default"]) >= 14  # 12 back, 2 ahead

    result = store.maintain(retention=200 * 86_400.0)
    gone = now - timedelta(days=200)
    assert result["dropped"]
    assert all(n.split("_", 1)[1] < gone.strftime("p%Y%m") for n in result["dropped"])
    assert store.count_events("exposures") == 6  # the default partition is never dropped
    assert store.ingest("exposures", recent).duplicates == 4  # still stored once


def test_a_month_made_later_takes_its_rows_from_the_default_partition(
    store: PostgresStore,
) -> None:
    from rollwise_server.storage import migrations_postgres

    far = datetime.now(UTC) + timedelta(days=400)  # beyond the months made ahead
    row = _exposure(far)
    store.ingest("exposures", [row])
    assert _partitions(store, "exposures")["exposures_default"] == 1
    with store._pool.connection() as conn:
        created = migrations_postgres.ensure_partitions(conn, far, far)
    assert created == [
        far.strftime("exposures_p%Y%m"),
        far.strftime("outcomes_p%Y%m"),
        far.strftime("predictions_p%Y%m"),
    ]
    parts = _partitions(store, "exposures")
    assert (parts["exposures_default"], parts[far.strftime("exposures_p%Y%m")]) == (0, 1)
    assert store.ingest("exposures", [row]).duplicates == 1

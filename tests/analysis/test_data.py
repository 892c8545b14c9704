"""Loading events into DataFrames from a server database, and reducing in the database.

The SQLite file is written by the server's own store (``SQLiteStore.ingest``), as ingestion
writes it; the PostgreSQL tables live in a throwaway schema. Loaded frames reduced with pandas
must give what the database computes itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rollwise.analysis.data import (
    EXPOSURE_COLUMNS,
    OUTCOME_COLUMNS,
    connect,
    load_exposures,
    load_outcomes,
    reduce_database,
)
from rollwise.analysis.reduce import reduce_frame
from rollwise.errors import ConfigurationError
from rollwise_server.storage.sqlite import SQLiteStore
from tests.analysis.test_reduce import (
    BASE,
    CASES,
    ENV,
    FLAG,
    assert_same,
    case_args,
    generate,
    load_postgres,
    postgres_schema,
    rows,
)
from tests.analysis.test_reduce import EXPOSURE_COLUMNS as EXPOSURE_ROW
from tests.analysis.test_reduce import OUTCOME_COLUMNS as OUTCOME_ROW

EVENTS = generate(21, units=60)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server database holding ``EVENTS`` (written through the store)."""
    path = tmp_path_factory.mktemp("data") / "rollwise.db"
    store = SQLiteStore(path)
    try:
        exposures, outcomes = EVENTS
        assert store.ingest("exposures", rows(exposures, EXPOSURE_ROW)).accepted == len(exposures)
        assert store.ingest("outcomes", rows(outcomes, OUTCOME_ROW)).accepted == len(outcomes)
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[Any, str]]:
    with postgres_schema() as (conn, schema):
        load_postgres(conn, *EVENTS)
        yield conn, schema


def test_exposures_load_with_filters(database: Path) -> None:
    exposures, _ = EVENTS
    frame = load_exposures(f"sqlite:///{database}", env=ENV, flag=FLAG)
    assert list(frame.columns) == list(EXPOSURE_COLUMNS)
    wanted = [e for e in exposures if e["env"] == ENV and e["flag"] == FLAG]
    assert sorted(frame["id"]) == sorted(e["id"] for e in wanted)
    assert isinstance(frame["ts"].dtype, pd.DatetimeTZDtype)
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame["ts"].is_monotonic_increasing
    assert all(isinstance(a, dict) for a in frame["attrs"])
    by_id = {e["id"]: e for e in wanted}
    for record in frame.head(20).to_dict("records"):
        assert record["attrs"] == by_id[record["id"]]["attrs"]
        assert record["variant"] == by_id[record["id"]]["variant"]
    raw = load_exposures(str(database), flag=[FLAG, "other-flag"], parse_attrs=False)
    assert set(raw["flag"]) == {FLAG, "other-flag"}
    assert set(raw["env"]) == {ENV, "staging"}
    assert all(isinstance(a, str) for a in raw["attrs"])
    assert load_exposures(str(database), flag=[]).empty


def test_outcomes_load_within_a_time_range(database: Path) -> None:
    _, outcomes = EVENTS
    since, until = BASE + timedelta(hours=3), BASE + timedelta(hours=9)
    frame = load_outcomes(
        f"sqlite:///{database}", env=ENV, metric=["conv", "latency"], since=since, until=until
    )
    assert list(frame.columns) == list(OUTCOME_COLUMNS)
    assert not frame.empty
    assert frame["ts"].min() >= pd.Timestamp(since)
    assert frame["ts"].max() < pd.Timestamp(until)
    wanted = {
        o["id"]
        for o in outcomes
        if o["env"] == ENV
        and o["metric"] in ("conv", "latency")
        and since <= datetime.fromisoformat(o["ts"]) < until
    }
    assert set(frame["id"]) == wanted
    as_text = load_outcomes(str(database), metric="conv", since="2026-11-01T12:00:00Z")
    assert set(as_text["metric"]) == {"conv"}
    assert (as_text["ts"] >= pd.Timestamp("2026-11-01T12:00:00Z")).all()
    naive = load_outcomes(str(database), metric="conv", until=datetime(2026, 11, 1, 12))
    everything = load_outcomes(str(database), metric="conv")
    assert len(naive) + len(as_text) == len(everything)  # a naive time is UTC


def test_a_connection_is_used_and_left_open(database: Path) -> None:
    conn = sqlite3.connect(database)
    frame = load_outcomes(conn, metric="errors")
    assert set(frame["metric"]) == {"errors"}
    assert conn.execute("SELECT 1").fetchone() == (1,)  # still open
    conn.close()


def test_urls_open_read_only(database: Path, tmp_path: Path) -> None:
    conn = connect(f"sqlite:///{database}")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM outcomes")
    conn.close()
    with pytest.raises(ConfigurationError, match="no SQLite database"):
        connect(str(tmp_path / "missing.db"))
    with pytest.raises(ConfigurationError, match="unsupported"):
        connect("mysql://localhost/x")


@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: "-".join(str(v) for v in c.values()))
def test_loaded_frames_reduce_as_the_database_does(
    database: Path, postgres: tuple[Any, str], case: dict[str, Any]
) -> None:
    args = case_args(case)
    metric = args.pop("metric")
    url = f"sqlite:///{database}"
    from_frames = reduce_frame(
        load_exposures(url), load_outcomes(url), FLAG, metric, env=ENV, **args
    )
    assert from_frames.cells
    assert_same(reduce_database(url, FLAG, metric, env=ENV, **args), from_frames)
    conn, _ = postgres
    assert_same(reduce_database(conn, FLAG, metric, env=ENV, **args), from_frames)


def test_postgresql_loads_the_same_frames(database: Path, postgres: tuple[Any, str]) -> None:
    conn, schema = postgres
    since = datetime(2026, 11, 1, 6, tzinfo=UTC)
    lite = load_outcomes(str(database), env=ENV, metric="latency", since=since)
    pg = load_outcomes(conn, env=ENV, metric="latency", since=since)
    pd.testing.assert_frame_equal(pg, lite)
    url = f"postgresql://{conn.info.user}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    by_url = load_exposures(url, env=ENV, flag=FLAG)
    pd.testing.assert_frame_equal(by_url, load_exposures(str(database), env=ENV, flag=FLAG))

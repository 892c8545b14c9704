"""The unit-level reduction: SQLite, PostgreSQL and pandas agree, and each rule holds.

The same generated events (with the edge cases: units exposed to two variants, exposures tied
on ``ts``, outcomes before the exposure, at the window's edges, units without outcomes, other
flags, environments, metrics and unit types) go into SQLite (the server's own schema), into a
throwaway PostgreSQL schema and into DataFrames; the three reductions must give the same
statistics. A hand-made example pins the rules themselves.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from rollwise.analysis.reduce import (
    DEFAULT_WINDOW_SECONDS,
    ReductionResult,
    ReductionSpec,
    band_label,
    format_window,
    parse_window,
    reduce_frame,
    reduce_sql,
    reduction_sql,
)
from rollwise.analysis.suffstats import SufficientStats
from rollwise_server.storage.migrations_sqlite import migrations

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
FLAG = "fraud-model"
ENV = "production"


def iso(moment: datetime) -> str:
    """The server's timestamp format: RFC 3339 UTC with milliseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def at(seconds: float) -> str:
    return iso(BASE + timedelta(seconds=seconds))


def exposure(
    unit: str, seconds: float, variant: str, attrs: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    event = {
        "id": str(uuid.uuid4()), "env": ENV, "ts": at(seconds), "flag": FLAG, "flag_version": 1,
        "variant": variant, "rule": "r1", "unit_type": "user_id", "unit": unit,
        "attrs": attrs or {},
    }  # fmt: skip
    event.update(extra)
    return event


def outcome(unit: str, seconds: float, metric: str, value: float, **extra: Any) -> dict[str, Any]:
    event = {
        "id": str(uuid.uuid4()), "env": ENV, "ts": at(seconds), "metric": metric,
        "unit_type": "user_id", "unit": unit, "value": value, "attrs": {},
    }  # fmt: skip
    event.update(extra)
    return event


COUNTRIES = ["DE", "FR", "NL", "US"]
METRICS = ["conv", "latency", "errors", "requests"]
WINDOW = 3600.0


def generate(seed: int, units: int = 80) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Random events around ``units`` units, every edge case included with some probability."""
    rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
    exposures: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for i in range(units):
        unit = f"u{i}"
        variant = rng.choice(["control", "candidate"])
        t0 = rng.randrange(0, 86400) + rng.randrange(1000) / 1000
        attrs: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.7:
            attrs["country"] = rng.choice(COUNTRIES)
        elif roll < 0.8:
            attrs["country"] = None
        elif roll < 0.85:
            attrs["country"] = rng.choice([1, 2.5, True])
        amount_roll = rng.random()
        if amount_roll < 0.75:
            attrs["amount"] = rng.choice([-5, 0, 99.999, 100, 250, 499.5, 500, 12000])
        elif amount_roll < 0.85:
            attrs["amount"] = rng.choice(["120", True, None])
        exposures.append(exposure(unit, t0, variant, attrs))
        for _ in range(rng.choice([0, 0, 1, 2])):  # later exposures, same variant, other attrs
            later = exposure(unit, t0 + rng.randrange(0, 7200), variant, {"country": "XX"})
            exposures.append(later)
        if rng.random() < 0.15:  # a tie on ts: the smaller id decides the cohort
            exposures.append(exposure(unit, t0, variant, {"country": rng.choice(COUNTRIES)}))
        if rng.random() < 0.08:  # a second variant: the unit is left out
            other = "candidate" if variant == "control" else "control"
            exposures.append(exposure(unit, t0 + rng.choice([-60, 0, 60]), other, attrs))
        if rng.random() < 0.05:  # another flag, another environment: ignored
            exposures.append(exposure(unit, t0 - 10, "control", flag="other-flag"))
            exposures.append(exposure(unit, t0 - 10, "weird", env="staging"))
        for _ in range(rng.choice([0, 1, 2, 3, 5])):
            metric = rng.choice(METRICS)
            offset = rng.choice(
                [
                    -1.0, -0.001, 0.0, 0.001, 1.0, 600.0, WINDOW - 0.001, WINDOW, WINDOW + 1,
                    2 * DEFAULT_WINDOW_SECONDS, rng.uniform(0, WINDOW),
                ]
            )  # fmt: skip
            value = {
                "conv": rng.choice([0.0, 1.0, 1.0, 0.5, -1.0]),
                "latency": round(rng.uniform(5, 500), 3),
                "errors": float(rng.choice([0, 0, 1, 2])),
                "requests": float(rng.choice([0, 1, 3, 10])),
            }[metric]
            outcomes.append(outcome(unit, t0 + offset, metric, value))
        if rng.random() < 0.05:  # same unit id, another unit type or environment: ignored
            outcomes.append(outcome(unit, t0 + 1, "conv", 1.0, unit_type="device_id"))
            outcomes.append(outcome(unit, t0 + 1, "conv", 1.0, env="staging"))
    rng.shuffle(exposures)
    rng.shuffle(outcomes)
    return exposures, outcomes


# --- loading the same events into each backend ----------------------------------------------

EXPOSURE_COLUMNS = (
    "id", "env", "ts", "flag", "flag_version", "variant", "rule", "unit_type", "unit", "attrs",
    "received_at",
)  # fmt: skip
OUTCOME_COLUMNS = (
    "id", "env", "ts", "metric", "unit_type", "unit", "value", "attrs", "received_at",
)  # fmt: skip


def rows(events: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    out = []
    for event in events:
        record = {**event, "attrs": json.dumps(event["attrs"], sort_keys=True)}
        record["received_at"] = iso(BASE)
        out.append(tuple(record[c] for c in columns))
    return out


def sqlite_db(exposures: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]]) -> Any:
    """An in-memory database with the server's schema (its migrations) holding the events."""
    conn = sqlite3.connect(":memory:")
    migrations.apply(Database(conn))
    for table, events, columns in (
        ("exposures", exposures, EXPOSURE_COLUMNS),
        ("outcomes", outcomes, OUTCOME_COLUMNS),
    ):
        marks = ", ".join("?" * len(columns))
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            rows(events, columns),
        )
    conn.commit()
    return conn


def frames(
    exposures: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.DataFrame.from_records(list(exposures), columns=list(EXPOSURE_COLUMNS[:-1])),
        pd.DataFrame.from_records(list(outcomes), columns=list(OUTCOME_COLUMNS[:-1])),
    )


POSTGRES_DDL = """
CREATE TABLE {schema}.exposures (
    id TEXT PRIMARY KEY, env TEXT NOT NULL, ts TEXT NOT NULL, flag TEXT NOT NULL,
    flag_version INTEGER NOT NULL, variant TEXT NOT NULL, rule TEXT, unit_type TEXT NOT NULL,
    unit TEXT NOT NULL, attrs TEXT NOT NULL, received_at TEXT NOT NULL
);
CREATE INDEX ON {schema}.exposures (env, flag, variant, ts);
CREATE INDEX ON {schema}.exposures (env, flag, unit_type, unit, ts);
CREATE TABLE {schema}.outcomes (
    id TEXT PRIMARY KEY, env TEXT NOT NULL, ts TEXT NOT NULL, metric TEXT NOT NULL,
    unit_type TEXT NOT NULL, unit TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
    attrs TEXT NOT NULL, received_at TEXT NOT NULL
);
CREATE INDEX ON {schema}.outcomes (env, metric, unit_type, unit, ts);
"""


def postgres_connect() -> Any:
    psycopg = pytest.importorskip("psycopg")
    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            return psycopg.connect(
                host="127.0.0.1", port=5432, dbname="test", user=user, connect_timeout=5
            )
        except psycopg.OperationalError as exc:
            last = exc
    pytest.fail(f"PostgreSQL on 127.0.0.1:5432 (database test) is needed: {last}")


@contextlib.contextmanager
def postgres_schema() -> Iterator[tuple[Any, str]]:
    """A connection whose ``search_path`` is a new schema with the two tables; dropped after."""
    conn = postgres_connect()
    schema = f"rw_reduce_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(POSTGRES_DDL.format(schema=schema))
    conn.execute(f"SET search_path TO {schema}")
    conn.commit()
    try:
        yield conn, schema
    finally:
        conn.rollback()
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.commit()
        conn.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    with postgres_schema() as (conn, _):
        yield conn


def load_postgres(
    conn: Any, exposures: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]]
) -> None:
    conn.execute("TRUNCATE exposures, outcomes")
    with conn.cursor() as cursor:
        for table, events, columns in (
            ("exposures", exposures, EXPOSURE_COLUMNS),
            ("outcomes", outcomes, OUTCOME_COLUMNS),
        ):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows(events, columns):
                    copy.write_row(row)
    conn.commit()


# --- comparing results ----------------------------------------------------------------------


def assert_same(a: ReductionResult, b: ReductionResult) -> None:
    assert a.multiple_variants == b.multiple_variants
    assert [(c.variant, c.cohort, c.units, c.stats.n) for c in a.cells] == [
        (c.variant, c.cohort, c.units, c.stats.n) for c in b.cells
    ]
    for left, right in zip(a.cells, b.cells, strict=True):
        assert left.stats.kind == right.stats.kind
        for field in ("total", "m2", "den_total", "den_m2", "comoment"):
            x, y = getattr(left.stats, field), getattr(right.stats, field)
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (left, right, field)


CASES: list[dict[str, Any]] = [
    {"kind": "binary", "metric": "conv"},
    {"kind": "binary", "metric": "conv", "cohort": "country"},
    {"kind": "count", "metric": "errors", "cohort": "amount", "bands": [0, 100, 500]},
    {"kind": "mean", "metric": "latency", "cohort": "country", "window_seconds": None},
    {"kind": "mean", "metric": "latency", "window_seconds": DEFAULT_WINDOW_SECONDS},
    {"kind": "ratio", "metric": "errors", "denominator_metric": "requests"},
    {"kind": "ratio", "metric": "errors", "denominator_metric": "requests", "cohort": "amount",
     "bands": [100]},
    {"kind": "ratio", "metric": "requests", "denominator_metric": "requests"},
    {"kind": "count", "metric": "conv", "cohort": "missing-attribute"},
]  # fmt: skip
CROSSINGS: list[dict[str, Any]] = [
    {"kind": "binary", "metric": "conv", "cohort": "amount", "bands": [0, 100, 500],
     "cross": "country"},
    {"kind": "count", "metric": "errors", "cohort": "country", "cross": "amount",
     "cross_bands": [100]},
    {"kind": "mean", "metric": "latency", "cohort": "country", "cross": "missing-attribute"},
]  # fmt: skip
"""Intersectional cohorts (the server's guardrail crossings), in every dialect."""


def case_args(case: dict[str, Any]) -> dict[str, Any]:
    return {"window_seconds": WINDOW, **case}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sqlite_postgresql_and_pandas_give_the_same_statistics(seed: int, postgres: Any) -> None:
    exposures, outcomes = generate(seed)
    lite = sqlite_db(exposures, outcomes)
    load_postgres(postgres, exposures, outcomes)
    exp_df, out_df = frames(exposures, outcomes)
    for case in [*CASES, *CROSSINGS]:
        args = case_args(case)
        metric = args.pop("metric")
        from_sqlite = reduce_sql(lite, FLAG, metric, env=ENV, **args)
        from_postgres = reduce_sql(postgres, FLAG, metric, env=ENV, dialect="postgresql", **args)
        from_pandas = reduce_frame(exp_df, out_df, FLAG, metric, env=ENV, **args)
        assert from_sqlite.cells, case
        assert_same(from_sqlite, from_pandas)
        assert_same(from_postgres, from_pandas)
    assert from_sqlite.multiple_variants > 0  # the edge cases are there


@pytest.mark.parametrize("seed", range(10, 16))
def test_sqlite_and_pandas_agree_on_more_seeds(seed: int) -> None:
    exposures, outcomes = generate(seed, units=40)
    lite = sqlite_db(exposures, outcomes)
    exp_df, out_df = frames(exposures, outcomes)
    for case in [*CASES, *CROSSINGS]:
        args = case_args(case)
        metric = args.pop("metric")
        assert_same(
            reduce_sql(lite, FLAG, metric, env=ENV, **args),
            reduce_frame(exp_df, out_df, FLAG, metric, env=ENV, **args),
        )


# --- property: any events, any query --------------------------------------------------------

SECONDS = st.integers(min_value=0, max_value=40).map(lambda s: s * 0.5)
ATTR_VALUES = st.one_of(
    st.none(), st.sampled_from(["DE", "FR", "1", ""]), st.integers(-3, 3), st.booleans(),
    st.sampled_from([0.5, 2.25, -1.5]),
)  # fmt: skip


@st.composite
def event_sets(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    units = [f"u{i}" for i in range(draw(st.integers(1, 8)))]
    exposures = [
        exposure(
            draw(st.sampled_from(units)),
            draw(SECONDS),
            draw(st.sampled_from(["a", "b", "c"])),
            draw(st.dictionaries(st.sampled_from(["country", "amount"]), ATTR_VALUES)),
            id=str(draw(st.uuids())),
            flag=draw(st.sampled_from([FLAG, FLAG, FLAG, "other"])),
        )
        for _ in range(draw(st.integers(0, 14)))
    ]
    outcomes = [
        outcome(
            draw(st.sampled_from(units)),
            draw(SECONDS),
            draw(st.sampled_from(["m", "d"])),
            draw(st.sampled_from([0.0, 1.0, -1.0, 2.5, 10.0])),
            id=str(draw(st.uuids())),
            unit_type=draw(st.sampled_from(["user_id", "user_id", "device_id"])),
        )
        for _ in range(draw(st.integers(0, 20)))
    ]
    return exposures, outcomes


QUERIES = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["binary", "count", "mean", "ratio"]),
        "window_seconds": st.sampled_from([None, 0.5, 3.0, 10.0]),
        "cohort": st.sampled_from([None, "country", "amount"]),
        "bands": st.sampled_from([None, [0.0], [-1, 1, 2.25]]),
    }
)


def query_args(query: dict[str, Any]) -> dict[str, Any]:
    """A drawn query as keyword arguments: bands only with a cohort, a ratio's denominator."""
    args = dict(query)
    if args["cohort"] is None:
        args["bands"] = None
    if args["kind"] == "ratio":
        args["denominator_metric"] = "d"
    return args


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_sets(), query=QUERIES)
def test_sqlite_and_pandas_agree_on_any_events(
    events: tuple[list[dict[str, Any]], list[dict[str, Any]]], query: dict[str, Any]
) -> None:
    exposures, outcomes = events
    args = query_args(query)
    exp_df, out_df = frames(exposures, outcomes)
    assert_same(
        reduce_sql(sqlite_db(exposures, outcomes), FLAG, "m", env=ENV, **args),
        reduce_frame(exp_df, out_df, FLAG, "m", env=ENV, **args),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_sets(), query=QUERIES)
def test_postgresql_and_pandas_agree_on_any_events(
    events: tuple[list[dict[str, Any]], list[dict[str, Any]]], query: dict[str, Any], postgres: Any
) -> None:
    """PostgreSQL compares times as text and takes the first attributes by the smallest
    ``[ts, id, attrs]``: same instants, ties and window ends as pandas' parsed times."""
    exposures, outcomes = events
    args = query_args(query)
    load_postgres(postgres, exposures, outcomes)
    exp_df, out_df = frames(exposures, outcomes)
    assert_same(
        reduce_sql(postgres, FLAG, "m", env=ENV, dialect="postgresql", **args),
        reduce_frame(exp_df, out_df, FLAG, "m", env=ENV, **args),
    )


# --- the rules, on a hand-made example ------------------------------------------------------


def hand_made() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Six units, one rule each (window 100 s)."""
    first = "00000000-0000-4000-8000-000000000001"
    second = "00000000-0000-4000-8000-000000000002"
    exposures = [
        # u1: control; its later exposure (other attrs) changes nothing
        exposure("u1", 10, "control", {"country": "DE", "amount": 50}),
        exposure("u1", 20, "control", {"country": "FR", "amount": 900}),
        # u2: candidate, two exposures at the same ms: the smaller id gives the cohort
        exposure("u2", 10, "candidate", {"country": "NL", "amount": 100}, id=second),
        exposure("u2", 10, "candidate", {"country": "FR", "amount": 100}, id=first),
        # u3: exposed to both variants: left out, counted
        exposure("u3", 10, "control", {"country": "DE"}),
        exposure("u3", 30, "candidate", {"country": "DE"}),
        # u4: candidate, no outcome at all, no country
        exposure("u4", 10, "candidate", {"amount": 499.5}),
        # u5: control; another flag's exposure to candidate does not count
        exposure("u5", 10, "control", {"country": "DE", "amount": "cheap"}),
        exposure("u5", 10, "candidate", flag="other-flag"),
        # u6: candidate in staging only: not in production's results
        exposure("u6", 10, "candidate", env="staging"),
    ]
    outcomes = [
        outcome("u1", 9.999, "conv", 1.0),  # before the exposure: ignored
        outcome("u1", 10, "conv", 0.0),  # at the exposure: counts
        outcome("u1", 109.999, "lat", 30.0),  # last ms of the window: counts
        outcome("u1", 110, "conv", 1.0),  # the window's end: ignored
        outcome("u1", 50, "lat", 10.0),
        outcome("u1", 50, "req", 4.0),
        outcome("u1", 60, "err", 1.0),
        outcome("u2", 11, "conv", 1.0),
        outcome("u2", 12, "conv", 1.0),
        outcome("u2", 12, "req", 0.0),
        outcome("u2", 13, "err", 2.0),  # errors without requests: no ratio for u2
        outcome("u3", 11, "conv", 1.0),  # the left-out unit's outcomes count nowhere
        outcome("u5", 20, "conv", 1.0, unit_type="device_id"),  # another unit type
        outcome("u5", 20, "lat", 5.0, env="staging"),  # another environment
        outcome("u5", 20, "req", 2.0),
    ]
    return exposures, outcomes


def all_backends(
    exposures: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    metric: str,
    postgres: Any,
    **args: Any,
) -> ReductionResult:
    """The reduction by pandas, checked to equal SQLite's and PostgreSQL's."""
    exp_df, out_df = frames(exposures, outcomes)
    from_pandas = reduce_frame(exp_df, out_df, FLAG, metric, env=ENV, **args)
    assert_same(
        reduce_sql(sqlite_db(exposures, outcomes), FLAG, metric, env=ENV, **args), from_pandas
    )
    load_postgres(postgres, exposures, outcomes)
    assert_same(
        reduce_sql(postgres, FLAG, metric, env=ENV, dialect="postgresql", **args), from_pandas
    )
    return from_pandas


def summary(result: ReductionResult) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    return {
        (c.variant, c.cohort): (c.units, c.stats.n, c.stats.total, c.stats.m2) for c in result.cells
    }


def test_the_rules_binary_by_country(postgres: Any) -> None:
    result = all_backends(
        *hand_made(), "conv", postgres, kind="binary", window_seconds=100, cohort="country"
    )
    assert result.multiple_variants == 1  # u3
    assert summary(result) == {
        ("candidate", None): (1, 1, 0.0, 0.0),  # u4
        ("candidate", "FR"): (1, 1, 1.0, 0.0),  # u2, from its first (smaller id) exposure
        ("control", "DE"): (2, 2, 0.0, 0.0),  # u1 (0 in window), u5 (other unit type)
    }
    assert result.units_by_variant() == {"candidate": 2, "control": 2}
    assert result.stats("candidate", "FR").kind == "binary"


def test_the_rules_count_mean_ratio(postgres: Any) -> None:
    events = hand_made()
    count = all_backends(*events, "conv", postgres, kind="count", window_seconds=100)
    assert summary(count) == {
        ("candidate", None): (2, 2, 2.0, 2.0),  # 2 and 0: Σ(x − 1)² = 2
        ("control", None): (2, 2, 1.0, 0.5),  # 1 and 0
    }
    mean = all_backends(*events, "lat", postgres, kind="mean", window_seconds=100)
    assert summary(mean) == {
        ("candidate", None): (2, 0, 0.0, 0.0),
        ("control", None): (2, 1, 20.0, 0.0),
    }
    unbounded = all_backends(*events, "conv", postgres, kind="count", window_seconds=None)
    assert summary(unbounded)[("control", None)] == (2, 2, 2.0, 2.0)  # u1's late one counts
    ratio = all_backends(
        *events, "err", postgres, kind="ratio", denominator_metric="req", window_seconds=100
    )
    control = ratio.stats("control")
    assert (control.n, control.total, control.den_total, control.comoment) == (2, 1.0, 6.0, 1.0)
    assert ratio.stats("candidate").n == 0  # u2 has errors but no requests, u4 nothing
    assert control.mean == pytest.approx(1 / 6)


def test_the_rules_amount_bands(postgres: Any) -> None:
    result = all_backends(
        *hand_made(),
        "conv",
        postgres,
        kind="binary",
        window_seconds=100,
        cohort="amount",
        bands=[100, 500],
    )
    assert {(c.variant, c.cohort): c.units for c in result.cells} == {
        ("candidate", "[100, 500)"): 2,  # u2 (100), u4 (499.5)
        ("control", None): 1,  # u5: "cheap" is not a number
        ("control", "(-inf, 100)"): 1,  # u1: 50, from its first exposure
    }
    assert band_label([100, 500], 2) == "[500, inf)"
    assert band_label([0.25], 0) == "(-inf, 0.25)"


def test_no_events_no_cells(postgres: Any) -> None:
    result = all_backends([], [], "conv", postgres, kind="binary", cohort="country")
    assert (result.cells, result.multiple_variants, result.overall(), result.units) == (
        (),
        0,
        {},
        0,
    )
    assert result.stats("control").n == 0


# --- the SQL runs in the database, on the indexes ---------------------------------------------


def test_sqlite_plan_searches_the_indexes() -> None:
    conn = sqlite_db(*hand_made())
    spec = ReductionSpec(flag=FLAG, metric="conv", kind="binary", env=ENV, cohort="country")
    sql, params = reduction_sql(spec, "sqlite")
    plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    # covering: the variants and the values come from the indexes, no table row is read
    assert "SEARCH exposures USING COVERING INDEX exposures_flag_unit (env=? AND flag=?)" in plan
    outcome_search = "(env=? AND metric=? AND unit_type=? AND unit=? AND ts>? AND ts<?)"
    assert f"SEARCH o USING COVERING INDEX outcomes_metric_unit {outcome_search}" in plan
    assert "SCAN exposures" not in plan
    assert "SCAN o" not in plan
    assert plan.count("CORRELATED SCALAR SUBQUERY") <= 2  # once per unit, not once per use


def test_the_sqlite_connection_settings_are_restored(tmp_path: Any) -> None:
    conn = sqlite3.connect(tmp_path / "events.db")
    migrations.apply(Database(conn))
    conn.execute("PRAGMA cache_size = -1234")
    before = [
        conn.execute(f"PRAGMA {name}").fetchone() for name in ("cache_size", "mmap_size", "threads")
    ]
    reduce_sql(conn, FLAG, "conv", env=ENV, kind="binary")
    after = [
        conn.execute(f"PRAGMA {name}").fetchone() for name in ("cache_size", "mmap_size", "threads")
    ]
    assert before == after


class Recording:
    """A real connection whose cursors' statements are written down, in order."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.statements = conn, list[str]()

    def cursor(self) -> Any:
        cursor, statements = self.conn.cursor(), self.statements

        class Cursor:
            def execute(self, sql: str, params: Any = None) -> Any:
                statements.append(sql.split()[0] + " " + sql.split()[1])
                return cursor.execute(sql, params)

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return Cursor()


def test_postgresql_reduces_without_jit_and_restores_the_setting(postgres: Any) -> None:
    load_postgres(postgres, *hand_made())
    postgres.execute("SET jit = on")
    recording = Recording(postgres)
    result = reduce_sql(recording, FLAG, "conv", env=ENV, kind="binary", dialect="postgresql")
    assert result.units == 4
    assert recording.statements[1:3] == ["SET jit", "WITH exposed"]  # the query ran without
    assert postgres.execute("SELECT current_setting('jit')").fetchone() == ("on",)
    postgres.commit()


def test_a_failed_postgresql_reduction_raises_its_own_error(postgres: Any) -> None:
    psycopg = pytest.importorskip("psycopg")
    postgres.execute("SET jit = on")
    postgres.execute("ALTER TABLE outcomes RENAME TO outcomes_away")
    try:
        # the query fails in the caller's transaction: its error, not the restore's, is raised
        with pytest.raises(psycopg.errors.UndefinedTable):
            reduce_sql(postgres, FLAG, "conv", env=ENV, kind="binary", dialect="postgresql")
    finally:
        postgres.rollback()  # the rename and the SET go with the transaction
    assert postgres.execute("SELECT current_setting('jit')").fetchone() == ("on",)
    assert postgres.execute("SELECT count(*) FROM outcomes").fetchone() is not None
    postgres.commit()


def test_postgresql_sql_is_one_query_with_named_parameters() -> None:
    spec = ReductionSpec(
        flag=FLAG,
        metric="e",
        kind="ratio",
        env=None,
        cohort="amount",
        bands=[1, 2],
        denominator_metric="r",
    )
    sql, params = reduction_sql(spec, "postgresql")
    assert sql.startswith("WITH exposed AS")
    assert sql.count("GROUP BY variant, cohort") == 1
    assert "env =" not in sql  # env=None: every environment
    assert params == {
        "env": None,
        "flag": FLAG,
        "metric": "e",
        "attribute": "amount",
        "edge0": 1.0,
        "edge1": 2.0,
        "window": DEFAULT_WINDOW_SECONDS,
        "denominator": "r",
    }
    with pytest.raises(ValueError, match="dialect"):
        reduction_sql(spec, "mysql")  # type: ignore[arg-type]


# --- the specification and the JSON form ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"kind": "median"}, "kind"),
        ({"kind": "ratio"}, "denominator_metric"),
        ({"denominator_metric": "x"}, "only a ratio"),
        ({"bands": [1]}, "cohort attribute"),
        ({"cohort": "c", "bands": []}, "1 to 64"),
        ({"cohort": "c", "bands": [2, 1]}, "increasing"),
        ({"cohort": "c", "bands": [1, 1]}, "increasing"),
        ({"cohort": "c", "bands": [math.inf]}, "finite"),
        ({"cohort": 'a"b'}, "cohort"),
        ({"cohort": ""}, "cohort"),
        ({"window_seconds": 0}, "window"),
        ({"window_seconds": math.nan}, "window"),
        ({"metric": ""}, "metric"),
    ],
)
def test_bad_specifications_are_refused(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReductionSpec(**{"flag": FLAG, "metric": "m", "kind": "mean", **args})


def test_windows_parse_and_format() -> None:
    assert parse_window("14d") == DEFAULT_WINDOW_SECONDS
    assert parse_window(" 90 ".strip()) == 90.0
    assert parse_window("1.5h") == 5400.0
    assert parse_window("250ms") == 0.25
    assert parse_window("none") is None
    for text in ("", "d", "-1d", "1y", "1e3s", "0s"):
        with pytest.raises(ValueError, match="window"):
            parse_window(text)
    assert [format_window(s) for s in (1209600, 86400, 5400, 90, 0.25, None)] == [
        "2w", "1d", "90m", "90s", "250ms", "none",
    ]  # fmt: skip
    for seconds in (1209600.0, 3600.0, 1.5, 0.001, 12345.678):
        assert parse_window(format_window(seconds)) == seconds


def test_json_round_trip_and_frame(postgres: Any) -> None:
    result = all_backends(
        *hand_made(), "err", postgres, kind="ratio", denominator_metric="req", window_seconds=100,
        cohort="country",
    )  # fmt: skip
    body = json.loads(json.dumps(result.to_json()))
    assert body["diagnostics"] == {"units": 4, "multiple_variants": 1}
    assert (body["window"], body["kind"], body["denominator"]) == ("100s", "ratio", "req")
    again = ReductionResult.from_json(body)
    assert again == result
    frame = result.to_frame()
    assert list(frame["variant"]) == [c.variant for c in result.cells]
    assert frame.loc[frame["cohort"] == "DE", "den_total"].item() == 6.0
    overall = result.overall()
    assert overall["control"] == SufficientStats.from_sums(
        n=2, total=1.0, total_sq=1.0, kind="ratio", den_total=6.0, den_total_sq=20.0, cross=4.0
    )
    arms = result.arms("control", "candidate")
    assert set(arms) == {"overall", ("country", "DE"), ("country", "FR"), ("country", None)}
    assert arms[("country", "DE")][1].n == 0  # no candidate unit there: empty, not missing


def test_a_crossing_is_labelled_by_both_attributes_and_adds_up() -> None:
    exposures, outcomes = generate(4)
    exp_df, out_df = frames(exposures, outcomes)
    crossed = reduce_frame(
        exp_df, out_df, FLAG, "conv", env=ENV, kind="binary", cohort="amount", bands=[100],
        cross="country",
    )  # fmt: skip
    labels = {tuple(json.loads(c)) for c in crossed.cohorts if c is not None}
    assert ("[100, inf)", "DE") in labels
    assert any("missing" in label for label in labels)  # units without a country, or amount
    single = reduce_frame(
        exp_df, out_df, FLAG, "conv", env=ENV, kind="binary", cohort="amount", bands=[100]
    )
    summed: dict[tuple[str, str], int] = {}
    for cell in crossed.cells:
        band = json.loads(cell.cohort)[0] if cell.cohort is not None else "missing"
        key = (cell.variant, band)
        summed[key] = summed.get(key, 0) + cell.units
    expected = {(c.variant, c.cohort or "missing"): c.units for c in single.cells}
    assert summed == expected  # the crossings partition each band

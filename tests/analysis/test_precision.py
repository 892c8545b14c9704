"""Variances keep their precision when a metric's mean is large next to its spread.

The review's case: Σx² − (Σx)²/n over 200,000 values of mean 1e8 and sd 1 gave a variance of
221.5 (true: 1). The same 200,000 units (half in each variant) carry metrics of that shape —
scores around 1e8, timestamps around 1.7e9 s, amounts in cents around 1e7, and the ratio of
scores to amounts — and every path must give the variance (and the ratio's delta-method variance)
that NumPy's two-pass computation gives, within 1e-6: ``SufficientStats`` from values and
merged from many parts, ``reduce_sql`` on SQLite and on PostgreSQL, and ``reduce_frame``. The
raw sums of the same values must miss it (else the data would not test anything).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rollwise.analysis.reduce import ReductionResult, reduce_frame, reduce_sql
from rollwise.analysis.suffstats import SufficientStats
from tests.analysis.test_reduce import (
    ENV,
    EXPOSURE_COLUMNS,
    FLAG,
    OUTCOME_COLUMNS,
    at,
    postgres_schema,
    sqlite_db,
)

UNITS = 200_000
VARIANTS = ("control", "candidate")
METRICS = {  # name: (mean, sd)
    "score": (1e8, 1.0),  # the review's case
    "seen_at": (1.7e9, 30.0),  # a timestamp, in seconds
    "cents": (1e7, 1.0),  # an amount in cents; the ratio is score / cents
}
TOLERANCE = 1e-6


class Data:
    """The units' values per metric (NumPy), and the same as events."""

    def __init__(self) -> None:
        rng = np.random.default_rng(20261201)
        self.variant = np.where(np.arange(UNITS) % 2 == 0, "control", "candidate")
        self.values = {
            name: mean + sd * rng.standard_normal(UNITS) for name, (mean, sd) in METRICS.items()
        }
        received = at(0)
        self.exposures = [
            (f"e{i}", ENV, at(i / 1000), FLAG, 1, str(self.variant[i]), "r1", "user_id", f"u{i}",
             "{}", received)
            for i in range(UNITS)
        ]  # fmt: skip
        self.outcomes = [
            (f"o{name}{i}", ENV, at(i / 1000 + 1), name, "user_id", f"u{i}", float(values[i]),
             "{}", received)
            for name, values in self.values.items()
            for i in range(UNITS)
        ]  # fmt: skip

    def arm(self, metric: str, variant: str) -> np.ndarray:
        return np.asarray(self.values[metric][self.variant == variant], dtype=float)

    def expected_variance(self, metric: str, variant: str) -> float:
        """NumPy's two-pass variance (ddof 1), or the delta method's for score / cents."""
        if metric != "ratio":
            return float(np.var(self.arm(metric, variant), ddof=1))
        xs, ys = self.arm("score", variant), self.arm("cents", variant)
        cov = np.cov(xs, ys, ddof=1)
        r, mean_y = xs.sum() / ys.sum(), ys.mean()
        return float((cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / mean_y**2)


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


def event_dicts(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [dict(zip(columns[:-1], row[:-1], strict=True)) for row in rows]


READINGS = [
    ("score", {"kind": "mean"}),
    ("seen_at", {"kind": "mean"}),
    ("cents", {"kind": "mean"}),
    ("ratio", {"kind": "ratio", "denominator_metric": "cents"}),
]


def reduce_all(reduce: Any) -> dict[str, ReductionResult]:
    """``reduce(metric, **args)`` for every reading."""
    return {
        name: reduce("score" if name == "ratio" else name, window_seconds=None, **args)
        for name, args in READINGS
    }


def assert_precise(results: dict[str, ReductionResult], data: Data) -> None:
    for name, result in results.items():
        overall = result.overall()
        for variant in VARIANTS:
            stats = overall[variant]
            assert stats.n == UNITS // 2
            expected = data.expected_variance(name, variant)
            assert stats.variance == pytest.approx(expected, rel=TOLERANCE), (name, variant)
        both = overall["control"] + overall["candidate"]  # merged across the arms
        if name != "ratio":
            reference = float(np.var(data.values[name], ddof=1))
            assert both.variance == pytest.approx(reference, rel=TOLERANCE), name


def test_raw_sums_lose_the_variance_of_this_data(data: Data) -> None:
    """The harness can fail: Σx² − (Σx)²/n is far off on the same values."""
    xs = data.values["score"]
    naive = SufficientStats.from_sums(
        n=UNITS, total=float(xs.sum()), total_sq=float((xs * xs).sum()), kind="mean"
    )
    assert abs(naive.variance / float(np.var(xs, ddof=1)) - 1) > 0.1


def test_from_values_and_merged_parts_keep_the_variance(data: Data) -> None:
    for name in ("score", "seen_at", "cents"):
        xs = data.values[name]
        expected = float(np.var(xs, ddof=1))
        whole = SufficientStats.from_values(xs.tolist(), kind="mean")
        assert whole.variance == pytest.approx(expected, rel=TOLERANCE), name
        parts = [
            SufficientStats.from_values(xs[i : i + 997].tolist(), kind="mean")
            for i in range(0, UNITS, 997)
        ]
        merged = SufficientStats.combine(parts)
        assert merged is not None
        assert merged.n == UNITS
        assert merged.variance == pytest.approx(expected, rel=TOLERANCE), name
        assert merged.mean == pytest.approx(float(xs.mean()), rel=1e-15)
    ratio = SufficientStats.ratio_from_values(
        data.arm("score", "control").tolist(), data.arm("cents", "control").tolist()
    )
    assert ratio.variance == pytest.approx(
        data.expected_variance("ratio", "control"), rel=TOLERANCE
    )


def test_cuped_moments_keep_their_precision(data: Data) -> None:
    xs, cs = data.values["score"], data.values["seen_at"]
    stats = SufficientStats.from_values(xs.tolist(), kind="mean", covariate=cs.tolist())
    cov = np.cov(xs, cs, ddof=1)
    assert stats.covariate_variance == pytest.approx(cov[1, 1], rel=TOLERANCE)
    assert stats.covariance_with_covariate == pytest.approx(cov[0, 1], abs=TOLERANCE * 30)


@pytest.mark.slow
def test_sqlite_keeps_the_variance(data: Data) -> None:
    conn = sqlite_db([], [])
    for table, rows, columns in (
        ("exposures", data.exposures, EXPOSURE_COLUMNS),
        ("outcomes", data.outcomes, OUTCOME_COLUMNS),
    ):
        marks = ", ".join("?" * len(columns))
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            rows,
        )
    conn.commit()
    try:
        assert_precise(
            reduce_all(lambda metric, **args: reduce_sql(conn, FLAG, metric, env=ENV, **args)),
            data,
        )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    with postgres_schema() as (conn, _):
        yield conn


@pytest.mark.slow
def test_postgresql_keeps_the_variance(data: Data, postgres: Any) -> None:
    with postgres.cursor() as cursor:
        for table, rows, columns in (
            ("exposures", data.exposures, EXPOSURE_COLUMNS),
            ("outcomes", data.outcomes, OUTCOME_COLUMNS),
        ):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    postgres.commit()
    assert_precise(
        reduce_all(
            lambda metric, **args: reduce_sql(
                postgres, FLAG, metric, env=ENV, dialect="postgresql", **args
            )
        ),
        data,
    )


@pytest.mark.slow
def test_pandas_keeps_the_variance(data: Data) -> None:
    exposures = pd.DataFrame.from_records(
        event_dicts(data.exposures, EXPOSURE_COLUMNS), columns=list(EXPOSURE_COLUMNS[:-1])
    )
    outcomes = pd.DataFrame.from_records(
        event_dicts(data.outcomes, OUTCOME_COLUMNS), columns=list(OUTCOME_COLUMNS[:-1])
    )
    assert_precise(
        reduce_all(
            lambda metric, **args: reduce_frame(exposures, outcomes, FLAG, metric, env=ENV, **args)
        ),
        data,
    )

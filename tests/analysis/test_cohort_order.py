"""Cohorts in one order everywhere: bands by their numeric edges, never as text.

As text, ``"[100, inf)"`` sorts before ``"[30, 100)"``; ``cohort_sort_key`` orders bands by their
edges, numbers by value, other labels as text, then ``"(other)"``, then ``"missing"``/``None``.
The reduction (pandas and SQLite, its cells, ``cohorts``, ``by_cohort``, ``arms``, ``to_json``
and ``to_frame``), the report's rows and its plots all use it.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from rollwise.analysis import (
    MetricSpec,
    Report,
    SufficientStats,
    band_labels,
    bands,
    cohort_sort_key,
)
from rollwise.analysis.reduce import ReductionResult, band_label, reduce_frame, reduce_sql
from tests.analysis.test_reduce import ENV, FLAG, exposure, frames, outcome, sqlite_db

B = SufficientStats.binary
EDGES = [30, 100]
ORDER = ["(-inf, 30)", "[30, 100)", "[100, inf)"]


def test_bands_sort_by_their_edges_not_as_text() -> None:
    assert sorted(ORDER) == ["(-inf, 30)", "[100, inf)", "[30, 100)"]  # the bug, as text
    assert sorted(reversed(ORDER), key=cohort_sort_key) == ORDER
    for edges in ([30, 100], [-5, 0, 2.5, 1e16], [0.25], list(range(0, 640, 10))):
        labels = band_labels(edges)  # "missing" last
        shuffled = labels[:]
        random.Random(1).shuffle(shuffled)  # noqa: S311 - test data
        assert sorted(shuffled, key=cohort_sort_key) == labels
        from_reduce = [band_label(edges, i) for i in range(len(edges) + 1)]
        assert sorted(from_reduce[::-1], key=cohort_sort_key) == from_reduce


def test_the_whole_order() -> None:
    labels = [
        None, "missing", "(other)", "true", "DE", "BR", "10", 2.5, "3", "[1000, inf)",
        "[30, 100)", "(-inf, 30)", "[100, 1000)", float("nan"),
    ]  # fmt: skip
    ordered = sorted(labels, key=cohort_sort_key)
    assert ordered[:4] == ["(-inf, 30)", "[30, 100)", "[100, 1000)", "[1000, inf)"]
    assert ordered[4:7] == [2.5, "3", "10"]  # numbers by value
    assert ordered[7:10] == ["BR", "DE", "true"]  # text
    assert ordered[10] == "(other)"
    assert ordered[11:13] == [None, "missing"]  # stable: in the order given
    assert math.isnan(ordered[13])
    assert cohort_sort_key("[30, 100)") == (*cohort_sort_key(" [30, 100) ")[:3], "[30, 100)")
    assert cohort_sort_key("[abc, def)")[0] == cohort_sort_key("DE")[0]  # not a band: text


def _events() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Two units an arm in each band, and one whose amount is not a number."""
    exposures, outcomes = [], []
    amounts = [5, 250, 40, 99.5, 100, 1e4, "cheap"]
    for i, amount in enumerate(amounts * 2):
        unit, variant = f"u{i}", ("control", "candidate")[i % 2]
        exposures.append(exposure(unit, 10 + i, variant, {"amount": amount}))
        outcomes.append(outcome(unit, 20 + i, "conv", float(i % 3 == 0)))
    return exposures, outcomes


def _check(result: ReductionResult) -> None:
    expected: list[str | None] = [*ORDER, None]
    assert result.cohorts == expected
    for variant in ("candidate", "control"):
        cells = [c.cohort for c in result.cells if c.variant == variant]
        assert cells == expected
    assert list(result.by_cohort()) == expected
    assert list(result.arms("control", "candidate")) == [
        "overall", *(("amount", c) for c in expected),
    ]  # fmt: skip
    body = json.loads(json.dumps(result.to_json()))
    assert [c["cohort"] for c in body["cells"]] == expected * 2  # candidate, then control
    assert list(result.to_frame()["cohort"].fillna("None")) == [
        "None" if c is None else c for c in expected * 2
    ]
    # a body whose cells come sorted as text (an older server) is put in order on reading
    body["cells"] = sorted(body["cells"], key=lambda c: (c["variant"], str(c["cohort"])))
    assert ReductionResult.from_json(body) == result


@pytest.mark.parametrize("path", ["pandas", "sqlite"])
def test_the_reduction_orders_bands_numerically(path: str) -> None:
    exposures, outcomes = _events()
    args = {"env": ENV, "kind": "binary", "cohort": "amount", "bands": EDGES}
    if path == "pandas":
        result = reduce_frame(*frames(exposures, outcomes), FLAG, "conv", **args)  # type: ignore[arg-type]
    else:
        result = reduce_sql(sqlite_db(exposures, outcomes), FLAG, "conv", **args)  # type: ignore[arg-type]
    _check(result)


def test_the_reduction_orders_text_cohorts_as_text_and_none_last() -> None:
    exposures = [
        exposure("u1", 10, "control", {"country": "FR"}),
        exposure("u2", 10, "control", {}),
        exposure("u3", 10, "control", {"country": "BR"}),
        exposure("u4", 10, "candidate", {"country": "DE"}),
    ]
    result = reduce_frame(*frames(exposures, []), FLAG, "conv", env=ENV, kind="binary",
                          cohort="country")  # fmt: skip
    assert result.cohorts == ["BR", "DE", "FR", None]


def test_report_rows_and_plots_follow_the_band_order() -> None:
    amounts = [5.0, 40.0, 99.0, 150.0, 9000.0, math.nan] * 50
    labels = bands(amounts, EDGES)
    text_order = sorted(set(labels))  # "(-inf, 30)", "[100, inf)", "[30, 100)", "missing"
    assert text_order != [*ORDER, "missing"]
    stats = {
        "fraud_caught": {
            "overall": (B(600, 60), B(600, 50)),
            **{("amount", band): (B(150, 15), B(150, 12)) for band in text_order},
        }
    }
    report = Report.from_stats("f", stats, metric_specs={"fraud_caught": MetricSpec(kind="binary")})
    expected = [*ORDER, "missing"]
    effects = [r.cohort for r in report.rows if r.estimand == "effect" and r.cohort != "all"]
    gaps = [r.cohort for r in report.rows if r.estimand == "gap change"]
    assert effects == expected
    assert gaps == expected
    assert list(report.cohorts[("fraud_caught", "amount")].effects) == expected
    frame = report.to_frame()
    assert list(frame.loc[frame.estimand == "effect", "cohort"])[1:] == expected
    text = str(report).splitlines()
    shown = [x.split()[1] for x in text if x.startswith("fraud_caught  amount=")]
    assert shown == [f"amount={b.split(',')[0]}," if "," in b else f"amount={b}" for b in expected]
    figure = report.plot("fraud_caught")
    ticks = [t.get_text() for t in figure.axes[-1].get_yticklabels()][::-1]  # top to bottom
    assert ticks == ["overall", *(f"amount={b}" for b in expected),
                     *(f"gap amount={b}" for b in expected)]  # fmt: skip

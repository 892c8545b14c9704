"""``Report``: tidy frame, multiple testing, verdicts, HTML, SRM line and figures."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from statsmodels.stats.multitest import multipletests

from rollwise.analysis import (
    MetricSpec,
    Report,
    SequentialMonitor,
    SequentialSRM,
    SufficientStats,
    compare,
    plot_confidence_sequence,
    plot_forest,
)

B = SufficientStats.binary

COLUMNS = [
    "metric", "cohort_dimension", "cohort", "estimand", "n_control", "n_candidate",
    "control_mean", "candidate_mean", "effect", "ci_low", "ci_high", "p_value", "ci_low_adj",
    "ci_high_adj", "adjusted_p_value", "alpha_adj", "family", "harm_direction", "tolerance",
    "verdict", "reason", "relative", "alpha", "worst", "method", "note",
]  # fmt: skip


def _latency(n: int, mean: float, seed: int) -> SufficientStats:
    return SufficientStats.from_values(
        np.random.default_rng(seed).gamma(4.0, mean / 4.0, n), kind="mean"
    )


def _stats() -> dict[str, dict[object, tuple[SufficientStats, SufficientStats]]]:
    return {
        "fraud_caught": {
            "overall": (B(40_000, 4000), B(40_000, 3400)),
            ("country", "DE"): (B(20_000, 2000), B(20_000, 1500)),
            ("country", "FR"): (B(19_990, 1999), B(20_000, 1900)),
            ("country", "<b>XX</b>"): (B(10, 1), B(0, 0)),
        },
        "latency_ms": {
            "overall": (_latency(2000, 100.0, 1), _latency(2000, 101.0, 2)),
            ("band", "[0, 100)"): (_latency(1000, 100.0, 3), _latency(1000, 101.0, 4)),
            ("band", "[100, inf)"): (_latency(1000, 100.0, 5), _latency(1000, 101.0, 6)),
        },
        "approved": {
            "overall": (B(40_000, 20_000), B(40_000, 19_000)),
            ("country", "DE"): (B(20_000, 12_000), B(20_000, 12_000)),
            ("country", "FR"): (B(20_000, 8000), B(20_000, 7000)),
        },
    }


SPECS = {
    "fraud_caught": MetricSpec(kind="binary", harm_direction="decrease"),
    "latency_ms": MetricSpec(kind="mean", harm_direction="increase", tolerance=5.0),
    "approved": MetricSpec(kind="binary", harm_direction="decrease", selection=True),
}


@pytest.fixture(scope="module")
def report() -> Report:
    return Report.from_stats(
        "fraud-model",
        _stats(),
        metric_specs=SPECS,
        weights=(0.5, 0.5),
    )


def test_to_frame_is_tidy(report: Report) -> None:
    frame = report.to_frame()
    assert list(frame.columns) == COLUMNS
    # 3 metrics: overall + per-cohort effect + gap change for each cohort
    assert len(frame) == (1 + 2 * 3) + (1 + 2 * 2) + (1 + 2 * 2)
    assert set(frame["estimand"]) == {"effect", "gap change"}
    assert not frame["verdict"].isna().any()
    overall = frame[(frame.metric == "fraud_caught") & (frame.cohort_dimension == "overall")]
    expected = compare(B(40_000, 4000), B(40_000, 3400))
    row = overall.iloc[0]
    assert (row.effect, row.ci_low, row.ci_high, row.p_value) == (
        expected.effect,
        expected.ci_low,
        expected.ci_high,
        expected.p_value,
    )
    assert row.n_control == 40_000
    cohort_alpha = frame[(frame.metric == "fraud_caught") & (frame.cohort == "DE")].alpha
    assert list(cohort_alpha) == pytest.approx([0.05 / 3, 0.05 / 3])


def test_bonferroni_across_the_always_valid_family(report: Report) -> None:
    frame = report.to_frame()
    m = len(frame)
    assert report.correction == "bonferroni"
    assert (report.family, report.adjusted_alpha) == (m, pytest.approx(0.05 / m))
    assert set(frame["family"]) == {m}
    assert frame["alpha_adj"].to_numpy() == pytest.approx(0.05 / m)
    overall = frame[(frame.metric == "fraud_caught") & (frame.cohort_dimension == "overall")]
    again = compare(B(40_000, 4000), B(40_000, 3400), alpha=0.05 / m)
    row = overall.iloc[0]
    assert (row.ci_low_adj, row.ci_high_adj) == (again.ci_low, again.ci_high)
    assert row.adjusted_p_value == pytest.approx(min(1.0, m * again.p_value))
    for r in report.rows:  # adjusted p below α exactly when the adjusted interval excludes 0
        if not r.adjusted.insufficient:
            excludes_zero = r.adjusted.ci_low > 0 or r.adjusted.ci_high < 0
            assert (r.adjusted_p_value < 0.05) == excludes_zero, r


def test_benjamini_hochberg_for_a_fixed_horizon_report() -> None:
    fixed = Report.from_stats(
        "f",
        _stats(),
        metric_specs=SPECS,
        sequential=False,
    )
    frame = fixed.to_frame()
    _, bh, _, _ = multipletests(frame["p_value"].to_numpy(), alpha=0.05, method="fdr_bh")
    assert frame["adjusted_p_value"].to_numpy() == pytest.approx(bh)
    assert fixed.correction == "fdr_bh"
    assert "fdr_bh" in fixed._repr_html_()
    # false-coverage-adjusted intervals (Benjamini & Yekutieli 2005): level R·α/m
    selected = int((bh <= 0.05).sum())
    assert fixed.adjusted_alpha == pytest.approx(selected * 0.05 / len(frame))
    for r in fixed.rows:  # BH selects a row exactly when its adjusted interval excludes 0
        if not r.adjusted.insufficient:
            excludes_zero = r.adjusted.ci_low > 0 or r.adjusted.ci_high < 0
            assert (r.adjusted_p_value <= 0.05) == excludes_zero, r


def test_verdicts(report: Report) -> None:
    frame = report.to_frame().set_index(["metric", "cohort_dimension", "cohort", "estimand"])
    assert frame.loc[("fraud_caught", "overall", "all", "effect"), "verdict"] == "harm"
    assert frame.loc[("fraud_caught", "country", "DE", "effect"), "verdict"] == "harm"
    assert frame.loc[("fraud_caught", "country", "DE", "effect"), "worst"]
    assert frame.loc[("fraud_caught", "country", "<b>XX</b>", "effect"), "verdict"] == (
        "insufficient data"
    )
    # latency: about 0 on 100 ms, tolerance 5 ms, 2,000 units an arm: non-inferior on its own
    # interval, not yet on the one adjusted for the report's 17 rows
    latency = frame.loc[("latency_ms", "overall", "all", "effect")]
    assert latency.verdict == "no harm shown yet"
    assert latency.reason.startswith("no harm shown yet: interval [")
    assert latency.reason.endswith("includes the tolerance +5")
    assert latency.note.startswith("non-inferior on the row's own interval (α = 0.05)")
    assert {r.metric for r in report.harms} == {"fraud_caught", "approved"}
    assert frame.loc[("approved", "country", "FR", "effect"), "verdict"] == "harm"
    assert ("approved", "country", "FR", "effect") in frame.index


def test_harm_needs_the_adjusted_interval() -> None:
    """Harm at its own level, not on the interval adjusted across many rows: not called harm."""
    # always-valid p ≈ 0.043 alone; across 21 rows the interval at α/21 includes 0
    stats = {"m": {"overall": (B(20_000, 2000), B(20_000, 2200))}}
    specs = {"m": MetricSpec(kind="binary", harm_direction="increase")}
    alone = Report.from_stats("f", stats, metric_specs=specs)
    assert alone.rows[0].verdict == "harm"
    assert alone.rows[0].adjusted == alone.rows[0].result  # a family of one: α itself
    crowded = dict(stats)
    for i in range(20):
        crowded[f"null{i}"] = {"overall": (B(20_000, 2000), B(20_000, 2000))}
        specs[f"null{i}"] = MetricSpec(kind="binary")
    many = Report.from_stats("f", crowded, metric_specs=specs)
    first = many.rows[0]
    assert first.result == alone.rows[0].result
    assert first.family == 21
    assert first.adjusted.alpha == pytest.approx(0.05 / 21)
    assert first.adjusted.ci_low < 0 < first.result.ci_low
    assert first.adjusted_p_value == pytest.approx(min(1.0, 21 * first.adjusted.p_value))
    assert first.verdict == "no harm shown yet"
    assert first.reason.endswith("includes 0")
    assert first.note is not None
    assert "harm on the row's own interval" in first.note
    assert "21 rows" in first.note


def test_selection_parity_frame(report: Report) -> None:
    parity = report.parity_frame()
    assert list(parity.arm) == ["control", "candidate"]
    control, candidate = parity.iloc[0], parity.iloc[1]
    assert control.parity_difference == pytest.approx(0.6 - 0.4)
    assert control.parity_ratio == pytest.approx(0.4 / 0.6)
    assert control.four_fifths_violated
    assert candidate.parity_ratio == pytest.approx(0.35 / 0.6)


def test_srm_line() -> None:
    ok = Report.from_stats(
        "f",
        _stats(),
        metric_specs=SPECS,
        weights=(1, 1),
    )
    assert ok.srm is not None
    assert ok.srm.counts == (40_000, 40_000)
    assert not ok.srm.mismatch
    assert "no mismatch" in ok.srm.line()
    monitor = SequentialSRM([0.5, 0.5])
    monitor.update([40_000, 38_000])
    bad = Report.from_stats(
        "f", _stats(), metric_specs=SPECS, weights=(0.5, 0.5),
        srm_counts=(40_000, 38_000), srm_monitor=monitor,
    )  # fmt: skip
    assert bad.srm is not None
    assert bad.srm.mismatch
    assert bad.srm.sequential_p_value is not None
    assert bad.srm.sequential_p_value < 0.001
    assert "MISMATCH" in bad._repr_html_()


def test_html_is_escaped_and_highlights_harm(report: Report) -> None:
    text = report._repr_html_()
    assert "<b>XX</b>" not in text
    assert "&lt;b&gt;XX&lt;/b&gt;" in text
    assert "background-color:#f8d0d0" in text  # a harm row
    assert "fraud-model" in text
    assert "four-fifths rule violated" in text
    evil = Report.from_stats(
        "<script>alert(1)</script>",
        {"m": {"overall": (B(100, 10), B(100, 12))}},
        metric_specs={"m": MetricSpec(kind="binary")},
    )
    assert "<script>" not in evil._repr_html_()


def test_specs_are_required_and_checked() -> None:
    with pytest.raises(ValueError, match="no spec"):
        Report.from_stats("f", _stats(), metric_specs={})
    with pytest.raises(ValueError, match="statistics for a mean metric"):
        Report.from_stats(
            "f",
            {"m": {"overall": (B(10, 1), B(10, 2))}},
            metric_specs={"m": MetricSpec(kind="mean")},
        )
    with pytest.raises(ValueError, match="cohort key"):
        Report.from_stats(
            "f", {"m": {"everyone": (B(10, 1), B(10, 2))}},
            metric_specs={"m": MetricSpec(kind="binary")},
        )  # fmt: skip
    with pytest.raises(ValueError, match="tolerance"):
        MetricSpec(kind="mean", tolerance=-1.0)
    with pytest.raises(ValueError, match="selection"):
        MetricSpec(kind="mean", selection=True)


def test_plot_returns_a_figure(report: Report) -> None:
    figure = report.plot("fraud_caught")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels[-1] == "overall"  # drawn top to bottom
    assert "gap country=DE" in labels


def test_plot_with_a_monitor_history() -> None:
    monitor = SequentialMonitor(tuning=20_000)
    rng = np.random.default_rng(3)
    ctrl = np.cumsum(rng.binomial(1000, 0.10, 20))
    cand = np.cumsum(rng.binomial(1000, 0.09, 20))
    for i in range(20):
        monitor.update(B(1000 * (i + 1), int(ctrl[i])), B(1000 * (i + 1), int(cand[i])))
    stats = {"fraud_caught": {"overall": (B(20_000, int(ctrl[-1])), B(20_000, int(cand[-1])))}}
    report = Report.from_stats(
        "f", stats, metric_specs={"fraud_caught": SPECS["fraud_caught"]},
        monitors={"fraud_caught": monitor},
    )  # fmt: skip
    figure = report.plot()
    assert len(figure.axes) == 2
    sequence = figure.axes[0]
    assert sequence.get_xlabel().startswith("units compared")
    # the running intersection is drawn and never wider than the first look's interval
    lines = [line for line in sequence.get_lines() if line.get_label() == "running intersection"]
    assert len(lines) == 1
    low = lines[0].get_ydata()
    assert all(np.diff(np.asarray(low, dtype=float)) >= 0)  # the running lower bound only rises
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no metric"):
        report.plot("nope")


def test_plot_helpers_on_their_own() -> None:
    empty = plot_confidence_sequence([])
    assert isinstance(empty, Figure)
    forest = plot_forest(
        [
            ("a", compare(B(1000, 100), B(1000, 150)), "harm"),
            ("b", compare(B(0, 0), B(10, 1)), "insufficient data"),
        ]
    )
    assert isinstance(forest, Figure)
    assert math.isinf(compare(B(0, 0), B(10, 1)).ci_high)


def test_a_report_over_20_cohorts_and_5_metrics() -> None:
    """The shape of the benchmark's report (its speed is measured in benchmarks/)."""
    stats = {}
    for m in range(5):
        metric: dict[object, tuple[SufficientStats, SufficientStats]] = {
            "overall": (B(200_000, 20_000), B(200_000, 20_100 + m))
        }
        for c in range(20):
            metric[("country", f"C{c}")] = (B(10_000, 1000), B(10_000, 1000 + 3 * c))
        stats[f"m{m}"] = metric
    specs = {f"m{m}": MetricSpec(kind="binary") for m in range(5)}
    report = Report.from_stats("f", stats, metric_specs=specs)
    frame = report.to_frame()
    assert "<table" in report._repr_html_()
    assert len(frame) == 5 * (1 + 2 * 20)

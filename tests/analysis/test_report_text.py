"""Reports that cannot be misread: the interval each verdict reads, its reason, and the text.

The two misreadings an analyst reported: a row with p ≈ 0.02 and an interval that excludes 0
reads "no harm shown yet" (the verdict reads an interval adjusted across the report's rows,
which the table did not show), and a latency row with p < 0.0001 reads the same (the p-value
tests 0, the verdict tests the tolerance). And ``print(report)`` printed a raw attrs repr.
"""

from __future__ import annotations

import itertools
import math

import attrs
import pytest

from rollwise.analysis import (
    MetricSpec,
    Report,
    SufficientStats,
    at_level,
    compare,
    verdict,
    verdict_reason,
)
from rollwise.analysis.report import COLUMNS, HEADERS

B = SufficientStats.binary


def _mean(n: int, mean: float, sd: float) -> SufficientStats:
    return SufficientStats(n=n, total=n * mean, m2=n * sd * sd, kind="mean")


def _crowded(stats: dict[str, dict[object, tuple[SufficientStats, SufficientStats]]],
             specs: dict[str, MetricSpec], rows: int) -> Report:  # fmt: skip
    """``stats`` plus null metrics (overall rows only) up to ``rows`` rows in the report."""
    stats, specs = dict(stats), dict(specs)
    have = sum(1 if key == "overall" else 2 for by_key in stats.values() for key in by_key)
    for i in range(rows - have):
        stats[f"null{i:02d}"] = {"overall": (B(2000, 200), B(2000, 200))}
        specs[f"null{i:02d}"] = MetricSpec(kind="binary")
    return Report.from_stats("fraud-model", stats, metric_specs=specs)


def test_an_own_interval_above_0_but_an_adjusted_one_across_the_tolerance() -> None:
    """effect +0.035, own interval [+0.004, +0.066], p ≈ 0.016; 24 rows in the report."""
    declines = {"overall": (B(2000, 200), B(2000, 270))}
    spec = MetricSpec(kind="binary", harm_direction="increase", tolerance=0.01)
    report = _crowded({"declines": declines}, {"declines": spec}, rows=24)
    row = report.rows[0]
    assert (row.metric, row.family, len(report.rows)) == ("declines", 24, 24)
    own, used = row.result, row.adjusted
    assert math.isclose(own.effect, 0.035)
    assert 0 < own.ci_low < 0.01 < own.ci_high
    assert own.p_value < 0.05
    assert used.alpha == pytest.approx(0.05 / 24)
    assert used.ci_low < 0 < 0.01 < used.ci_high
    assert row.verdict == "no harm shown yet"
    interval = f"[{used.ci_low:+.3g}, {used.ci_high:+.3g}]"
    assert row.reason == f"no harm shown yet: interval {interval} includes the tolerance +0.01"
    # the table shows both intervals, the adjusted p-value and the reason naming the tolerance
    text = str(report)
    line = next(x for x in text.splitlines() if x.startswith("declines"))
    assert interval in line
    assert f"[{own.ci_low:+.3g}, {own.ci_high:+.3g}]" in line
    assert line.endswith(f"no harm shown yet  interval {interval} includes the tolerance +0.01")
    assert "each row at α/24 = 0.00208 (Bonferroni over the report's 24 rows" in text
    frame = report.to_frame().set_index("metric")
    assert frame.loc["declines", "ci_low_adj"] == used.ci_low
    assert frame.loc["declines", "ci_low"] == own.ci_low
    assert (frame.loc["declines", "family"], frame.loc["declines", "tolerance"]) == (24, 0.01)
    assert frame.loc["declines", "reason"] == row.reason


def test_harm_on_the_own_interval_only_is_noted_and_not_the_verdict() -> None:
    """Own interval [+0.0136, +0.0764] is above the tolerance; at α/24 it reaches +0.0034."""
    declines = {"overall": (B(2000, 200), B(2000, 290))}
    spec = MetricSpec(kind="binary", harm_direction="increase", tolerance=0.01)
    report = _crowded({"declines": declines}, {"declines": spec}, rows=24)
    row = report.rows[0]
    assert verdict(row.result, harm_direction="increase", tolerance=0.01) == "harm"
    assert 0 < row.adjusted.ci_low < 0.01
    assert row.verdict == "no harm shown yet"
    assert row.reason == (
        "no harm shown yet: interval [+0.00342, +0.0866] includes the tolerance +0.01 and "
        "excludes 0"
    )
    assert row.note == (
        "harm on the row's own interval (α = 0.05), no harm shown yet on the interval adjusted "
        "across the report's 24 rows (α = 0.00208)"
    )
    text = str(report)
    assert "[+0.00342, +0.0866]  [+0.0136, +0.0764]" in text
    assert f"  declines overall: {row.note}" in text.splitlines()
    assert report.harms == ()


def test_a_tiny_p_value_and_no_harm_shown_yet_say_why() -> None:
    """+5 ms on 100 ms with 20,000 users an arm: p < 0.0001, tolerance 5 ms."""
    latency = {"overall": (_mean(20_000, 100.0, 20.0), _mean(20_000, 105.0, 20.0))}
    spec = MetricSpec(kind="mean", harm_direction="increase", tolerance=5.0)
    report = _crowded({"latency_ms": latency}, {"latency_ms": spec}, rows=24)
    row = report.rows[0]
    assert row.result.p_value < 1e-4
    assert row.adjusted_p_value < 1e-4
    assert row.verdict == "no harm shown yet"
    assert row.adjusted.ci_low < 5.0 < row.adjusted.ci_high
    assert row.reason.startswith("no harm shown yet: interval [+4.")
    assert row.reason.endswith("includes the tolerance +5 and excludes 0")
    line = next(x for x in str(report).splitlines() if x.startswith("latency_ms"))
    assert "<0.0001" in line
    assert "includes the tolerance +5 and excludes 0" in line


def test_str_is_a_text_table_and_repr_a_summary() -> None:
    stats = {
        "fraud_caught": {
            "overall": (B(40_000, 4000), B(40_000, 3400)),
            ("country", "DE"): (B(20_000, 2000), B(20_000, 1500)),
            ("country", "FR"): (B(20_000, 2000), B(20_000, 1900)),
            ("country", "LU"): (B(10, 1), B(0, 0)),
        }
    }
    specs = {"fraud_caught": MetricSpec(kind="binary", harm_direction="decrease")}
    report = Report.from_stats("fraud-model", stats, metric_specs=specs, weights=(0.5, 0.5))
    text = str(report)
    assert not text.startswith("Report(")
    assert "ReportRow(" not in text
    lines = text.splitlines()
    assert lines[0] == "Flag fraud-model: 1 metric(s), 7 rows, always-valid, α = 0.05"
    assert lines[1].startswith("interval used: each row at α/7 = 0.00714")
    assert lines[2].startswith("own interval: the row alone")
    assert lines[3].startswith("SRM: 40,000 / 40,000")
    header = next(i for i, x in enumerate(lines) if x.startswith("metric "))
    assert lines[header].split("  ")[0] == "metric"
    for name in HEADERS:
        assert name in lines[header]
    assert set(lines[header + 1]) == {"-", " "}
    body = lines[header + 2 : header + 2 + len(report.rows)]
    assert [x.split()[1] for x in body] == [
        "overall", "country=DE", "country=FR", "country=LU", "gap", "gap", "gap",
    ]  # fmt: skip
    de = body[1]
    assert "20,000" in de
    assert "(worst)" in de
    assert de.split()[-6:-4] == ["harm", "interval"]
    assert de.endswith(" below 0")
    lu = body[3]
    assert lu.endswith("insufficient data  0 units in the candidate arm, 2 needed")
    assert "—" in lu
    # fixed-width: every column starts where its header does
    starts = [lines[header].index(h) for h in ("n control", "verdict")]
    assert all(len(x) > starts[-1] for x in body)
    assert "notes:" in lines
    # repr: one informative line, not the table
    summary = repr(report)
    assert "\n" not in summary
    assert summary.startswith("<Report 'fraud-model': 1 metric(s), 7 rows (")
    assert "harm" in summary
    assert "insufficient data" in summary
    assert repr(Report.from_stats("f", {}, metric_specs={})).startswith("<Report 'f': 0 metric")
    assert "(no rows)" in str(Report.from_stats("f", {}, metric_specs={}))


def test_html_shows_the_same_columns() -> None:
    stats = {"m": {"overall": (B(2000, 200), B(2000, 270))}}
    report = Report.from_stats(
        "f", stats, metric_specs={"m": MetricSpec(kind="binary", tolerance=0.01)}
    )
    page = report._repr_html_()
    assert "".join(f"<th>{h}</th>" for h in HEADERS) in page
    row = report.rows[0]
    assert row.why in page
    assert row.verdict in page
    assert row.why.startswith("interval [")


def test_frame_columns() -> None:
    report = Report.from_stats(
        "f", {"m": {"overall": (B(100, 10), B(100, 12))}}, metric_specs={"m": MetricSpec(
            kind="binary")}
    )  # fmt: skip
    assert list(report.to_frame().columns) == COLUMNS
    for name in ("ci_low_adj", "ci_high_adj", "family", "alpha_adj", "tolerance", "reason"):
        assert name in COLUMNS


def test_a_fixed_horizon_table_names_its_correction() -> None:
    stats = {f"m{i}": {"overall": (B(5000, 500), B(5000, 500 + 40 * i))} for i in range(4)}
    specs = {f"m{i}": MetricSpec(kind="binary") for i in range(4)}
    report = Report.from_stats("f", stats, metric_specs=specs, sequential=False)
    selected = sum(r.adjusted_p_value <= 0.05 for r in report.rows)
    assert selected >= 1
    assert report.adjusted_alpha == pytest.approx(selected * 0.05 / 4)
    assert f"each row at {selected}·α/4" in str(report)
    assert "fdr_bh" in str(report)


# --- verdict_reason, next to verdict ---------------------------------------------------------

CONTROL = SufficientStats.from_sums(n=5_000, total=500_000.0, total_sq=5.2e7, kind="mean")  # 100 ms
CANDIDATE = SufficientStats.from_sums(
    n=5_000, total=515_000.0, total_sq=5.5045e7, kind="mean"
)  # 103 ms


@pytest.mark.parametrize(
    ("harm", "tolerance", "expected"),
    [
        ("increase", 0.0, "harm: interval [+1.78, +4.22] above 0"),
        ("increase", 1.0, "harm: interval [+1.78, +4.22] above the tolerance +1"),
        ("increase", 2.0,
         "no harm shown yet: interval [+1.78, +4.22] includes the tolerance +2 and excludes 0"),
        ("increase", 5.0,
         "non-inferior: interval [+1.78, +4.22] below the tolerance +5 but above 0"),
        ("decrease", 0.0, "improvement: interval [+1.78, +4.22] above 0"),
    ],
)  # fmt: skip
def test_verdict_reason_of_each_verdict(harm: str, tolerance: float, expected: str) -> None:
    result = compare(CONTROL, CANDIDATE)
    got = verdict_reason(result, harm_direction=harm, tolerance=tolerance)  # type: ignore[arg-type]
    assert got == expected


def test_verdict_reason_in_the_decrease_direction_and_with_0_inside() -> None:
    down = compare(B(5000, 1000), B(5000, 700))  # 20% → 14%: a metric harmed by a decrease
    assert verdict_reason(down, harm_direction="decrease", tolerance=0.01).startswith(
        "harm: interval [-0.0"
    )
    assert verdict_reason(down, harm_direction="decrease", tolerance=0.01).endswith(
        "below the tolerance -0.01"
    )
    flat = compare(B(5000, 1000), B(5000, 1005))
    reason = verdict_reason(flat, harm_direction="increase", tolerance=0.05)
    assert reason.startswith("non-inferior: interval [-0.0")
    assert reason.endswith("below the tolerance +0.05 but includes 0")
    assert verdict_reason(flat, harm_direction="increase").endswith("includes 0")
    relative = compare(B(5000, 1000), B(5000, 1005), relative=True)
    assert verdict_reason(relative, harm_direction="increase", tolerance=0.5).endswith(
        "below the tolerance +50% but includes 0"
    )


def test_insufficient_data_says_how_many_units() -> None:
    few = compare(B(2000, 200), B(17, 2))
    assert not few.insufficient
    assert verdict(few, harm_direction="increase", min_units=100) == "insufficient data"
    assert verdict_reason(few, harm_direction="increase", min_units=100) == (
        "insufficient data: 17 units in the candidate arm, 100 needed"
    )
    none = compare(B(1, 1), B(0, 0))
    assert verdict_reason(none, harm_direction="increase") == (
        "insufficient data: 1 unit in the control arm and 0 in the candidate arm, 2 needed in each"
    )
    flat = compare(B(100, 0), B(100, 0))  # no variance: the note says so
    assert verdict_reason(flat, harm_direction="increase") == (
        "insufficient data: no variance in either arm"
    )


def test_verdict_reason_starts_with_the_verdict() -> None:
    results = [compare(B(5000, 1000), B(5000, k)) for k in (700, 960, 1000, 1040, 1300)]
    results += [compare(B(1, 0), B(5, 1)), compare(CONTROL, CANDIDATE, relative=True)]
    for result, harm, tolerance, units in itertools.product(
        results, ("increase", "decrease"), (0.0, 0.01, 0.05, 3.0), (0, 6000)
    ):
        label = verdict(result, harm_direction=harm, tolerance=tolerance, min_units=units)  # type: ignore[arg-type]
        line = verdict_reason(result, harm_direction=harm, tolerance=tolerance, min_units=units)  # type: ignore[arg-type]
        assert line.startswith(f"{label}: "), line
    with pytest.raises(ValueError, match="harm_direction"):
        verdict(results[0], harm_direction="down")  # type: ignore[arg-type]


def test_an_end_close_to_the_tolerance_is_never_shown_equal_to_it() -> None:
    result = attrs.evolve(compare(B(5000, 1000), B(5000, 1100)), ci_low=0.0099996)
    reason = verdict_reason(result, harm_direction="increase", tolerance=0.01)
    assert reason.startswith("no harm shown yet: interval [+0.0099996, ")
    assert reason.endswith("includes the tolerance +0.01 and excludes 0")


# --- at_level: the same estimate at another level ----------------------------------------------


@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("relative", [False, True])
def test_at_level_is_compare_at_that_level(sequential: bool, relative: bool) -> None:
    arms = (B(5000, 1000), B(5000, 1080))
    kwargs = {"sequential": sequential, "relative": relative, "tuning": 8000}
    again = at_level(compare(*arms, **kwargs), 0.05 / 24, tuning=8000)  # type: ignore[arg-type]
    direct = compare(*arms, alpha=0.05 / 24, **kwargs)  # type: ignore[arg-type]
    assert again.alpha == direct.alpha
    for field in ("ci_low", "ci_high", "p_value", "effect"):
        assert getattr(again, field) == pytest.approx(getattr(direct, field), rel=1e-12)


def test_at_level_needs_the_arms_for_welch() -> None:
    welch = compare(CONTROL, CANDIDATE, sequential=False)
    assert welch.method == "welch-t"
    with pytest.raises(ValueError, match="needs the arms"):
        at_level(welch, 0.01)
    empty = compare(B(0, 0), B(10, 1))
    assert at_level(empty, 0.01).insufficient
    with pytest.raises(ValueError, match="alpha"):
        at_level(welch, 1.0)

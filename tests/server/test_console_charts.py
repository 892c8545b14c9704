"""The console's SVG charts: well-formed, accessible, escaped, CSP-clean and never broken by
odd numbers (``rollwise_server.ui.charts``)."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from rollwise_server.ui.charts import forest_plot, interval_timeline

SVG = "{http://www.w3.org/2000/svg}"
NUMERIC = ("x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height")
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def finding(
    scope: str = "overall",
    effect: Any = 0.0,
    low: Any = -0.1,
    high: Any = 0.1,
    verdict: str = "no harm shown yet",
    tolerance: Any = 0.0,
) -> dict[str, Any]:
    return {
        "metric": "fraud_caught", "scope": scope, "effect": effect, "ci_low": low,
        "ci_high": high, "verdict": verdict, "tolerance": tolerance, "n_control": 6902,
        "n_candidate": 747, "alpha": 0.0022,
    }  # fmt: skip


EVIDENCE = [
    finding("overall", -0.05, -0.1, 0.01, "no harm shown yet", 0.02),
    finding("country=NL", -0.236, -0.381, -0.090, "harm", 0.02),
    finding("country=DE", 0.12, 0.03, 0.2, "improvement", 0.02),
    finding("gap:country=NL", None, None, None, "insufficient data yet", 0.02),
]


def parse(chart: Markup) -> ET.Element:
    assert isinstance(chart, Markup)
    return ET.fromstring(str(chart))  # noqa: S314 (our own output, no entities or DTD)


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in e.get("class", "").split()]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{SVG}text")]


def coordinates(root: ET.Element) -> Iterator[str]:
    for element in root.iter():
        yield from (element.attrib[name] for name in NUMERIC if name in element.attrib)
        if "points" in element.attrib:
            yield from re.split(r"[ ,]", element.attrib["points"])


def assert_finite_coordinates(root: ET.Element) -> None:
    values = list(coordinates(root))
    assert len(values) > 4
    for value in values:
        assert re.fullmatch(r"-?\d+(\.\d{1,2})?", value), value
        assert math.isfinite(float(value))


def point(
    at: float, effect: Any, low: Any, high: Any, verdict: str = "no harm shown yet"
) -> dict[str, Any]:
    return {"at": at, "effect": effect, "ci_low": low, "ci_high": high, "verdict": verdict}


NARROWING = [
    point(T0 + 600 * i, 0.05 - 0.01 * i, 0.05 - 0.01 * i - 1 / (i + 1),
          0.05 - 0.01 * i + 1 / (i + 1), "harm" if i > 6 else "no harm shown yet")
    for i in range(10)
]  # fmt: skip


# --- accessibility and markup -----------------------------------------------------------------


@pytest.mark.parametrize(
    "chart",
    [
        lambda: forest_plot(EVIDENCE, title="Fraud caught", id_prefix="g-fraud"),
        lambda: interval_timeline(NARROWING, title="Fraud caught", id_prefix="g-fraud"),
        lambda: forest_plot([], title="Fraud caught", id_prefix="g-fraud"),
        lambda: interval_timeline([], title="Fraud caught", id_prefix="g-fraud"),
    ],
)
def test_the_chart_is_labelled_by_its_title_and_description(chart: Any) -> None:
    root = parse(chart())
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "g-fraud-title g-fraud-desc"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert title.get("id") == "g-fraud-title"
    assert desc.get("id") == "g-fraud-desc"
    assert title.text == "Fraud caught"
    assert desc.text
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids)) == 2


def test_two_charts_have_distinct_ids() -> None:
    one = parse(forest_plot(EVIDENCE, title="a", id_prefix="one"))
    two = parse(forest_plot(EVIDENCE, title="a", id_prefix="two"))
    assert {e.get("id") for e in one.iter() if e.get("id")}.isdisjoint(
        e.get("id") for e in two.iter() if e.get("id")
    )


def test_an_odd_id_prefix_still_gives_valid_ids() -> None:
    root = parse(forest_plot(EVIDENCE, title="a", id_prefix='x" onload="alert(1)'))
    assert root.get("onload") is None
    labelled = root.get("aria-labelledby", "").split()
    assert len(labelled) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in labelled)
    assert [e.get("id") for e in root if e.get("id")] == labelled


def test_the_description_says_the_numbers() -> None:
    desc = parse(forest_plot(EVIDENCE, title="t", id_prefix="p")).find(f"{SVG}desc")
    assert desc is not None
    assert desc.text is not None
    assert "4 findings" in desc.text
    assert "country=NL: effect -0.236, interval -0.381 to -0.09, tolerance 0.02, harm" in desc.text
    assert "gap country=NL: insufficient data" in desc.text


def test_text_is_escaped() -> None:
    hostile = finding("country=<script>alert(1)</script>", -0.1, -0.2, 0.0, "harm & <b>worse</b>")
    chart = forest_plot([hostile], title="<i>fraud</i> & co", id_prefix="p")
    assert "<script>" not in str(chart)
    assert "&lt;script&gt;" in str(chart)
    root = parse(chart)
    assert not list(root.iter(f"{SVG}script"))
    assert not [e for e in root.iter() if e.tag in (f"{SVG}b", f"{SVG}i")]
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "<i>fraud</i> & co"
    assert "harm & <b>worse</b>" in texts(root)
    assert any(t.startswith("country=<script>") for t in texts(root))


def test_no_inline_style_or_script() -> None:
    charts = [
        forest_plot(EVIDENCE, title="t", id_prefix="p"),
        forest_plot([], title="t", id_prefix="p"),
        interval_timeline(NARROWING, title="t", id_prefix="p"),
        interval_timeline(NARROWING[:1], title="t", id_prefix="p"),
    ]
    for chart in charts:
        root = parse(chart)
        elements = list(root.iter())
        assert len(elements) > 3
        assert not [e for e in elements if e.get("style") is not None]
        assert not [e for e in elements if e.tag in (f"{SVG}style", f"{SVG}script")]
        assert not [a for e in elements for a in e.attrib if a.startswith("on")]


# --- the forest plot ----------------------------------------------------------------------------


def test_each_finding_with_data_has_one_interval_and_one_point() -> None:
    root = parse(forest_plot(EVIDENCE, title="t", id_prefix="p"))
    with_data = [f for f in EVIDENCE if f["effect"] is not None]
    assert len(by_class(root, "rw-interval")) == len(with_data) == 3
    assert len(by_class(root, "rw-point")) == len(with_data)
    assert len(by_class(root, "rw-row-label")) == len(EVIDENCE)
    assert [e.text for e in by_class(root, "rw-no-data")] == ["insufficient data"]


def test_rows_are_labelled_by_scope_with_their_verdicts_coloured() -> None:
    root = parse(forest_plot(EVIDENCE, title="t", id_prefix="p"))
    assert [e.text for e in by_class(root, "rw-row-label")] == [
        "overall", "country=NL", "country=DE", "gap country=NL",
    ]  # fmt: skip
    verdicts = {e.text: e.get("fill") for e in by_class(root, "rw-verdict")}
    assert verdicts == {
        "no harm shown yet": "#374151", "harm": "#b91c1c", "improvement": "#15803d",
        "insufficient data yet": "#374151",
    }  # fmt: skip


def test_points_sit_on_the_right_side_of_zero() -> None:
    root = parse(forest_plot(EVIDENCE, title="t", id_prefix="p"))
    (zero,) = by_class(root, "rw-zero")
    zero_x = float(zero.get("x1", "nan"))
    (harm,) = [e for e in by_class(root, "rw-point") if "rw-harm" in e.get("class", "")]
    (better,) = [e for e in by_class(root, "rw-point") if "rw-improvement" in e.get("class", "")]
    assert float(harm.get("cx", "nan")) < zero_x < float(better.get("cx", "nan"))
    (harm_line,) = [e for e in by_class(root, "rw-interval") if "rw-harm" in e.get("class", "")]
    assert float(harm_line.get("x1", "nan")) < float(harm_line.get("x2", "nan")) < zero_x


def test_the_axis_has_three_to_five_round_ticks_covering_the_data() -> None:
    root = parse(forest_plot(EVIDENCE, title="t", id_prefix="p"))
    ticks = [float(e.text or "nan") for e in by_class(root, "rw-tick-label")]
    assert 3 <= len(ticks) <= 5
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    assert ticks[0] <= -0.381
    assert ticks[-1] >= 0.2
    assert 0.0 in ticks


def test_the_tolerance_is_drawn_on_both_sides_only_when_nonzero() -> None:
    root = parse(forest_plot(EVIDENCE[:1], title="t", id_prefix="p"))
    (zero,) = by_class(root, "rw-zero")
    zero_x = float(zero.get("x1", "nan"))
    xs = sorted(float(e.get("x1", "nan")) for e in by_class(root, "rw-tolerance"))
    assert len(xs) == 2
    assert xs[0] < zero_x < xs[1]
    assert xs[1] - zero_x == pytest.approx(zero_x - xs[0], abs=0.2)
    assert all(e.get("stroke-dasharray") for e in by_class(root, "rw-tolerance"))
    assert {e.text for e in by_class(root, "rw-tolerance-label")} == {"tolerance"}

    untolerant = parse(forest_plot([finding(tolerance=0.0)], title="t", id_prefix="p"))
    assert not by_class(untolerant, "rw-tolerance")
    assert not by_class(untolerant, "rw-tolerance-label")


def test_a_long_label_is_cut_with_the_whole_of_it_in_a_tooltip() -> None:
    scope = "device=" + "a-very-long-device-name" * 3
    root = parse(forest_plot([finding(scope)], title="t", id_prefix="p", width=400))
    (label,) = by_class(root, "rw-row-label")
    assert label.text is not None
    assert "\u2026" in label.text
    assert len(label.text) < len(scope)
    assert label.text.startswith("devi")
    assert label.text.endswith("name")
    tooltip = label.find(f"{SVG}title")
    assert tooltip is not None
    assert tooltip.text == scope
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert scope in (desc.text or "")


def test_height_grows_with_the_rows() -> None:
    heights = [
        int(parse(forest_plot(EVIDENCE[:n], title="t", id_prefix="p")).get("height", "0"))
        for n in (1, 2, 4)
    ]
    assert heights[0] < heights[1] < heights[2]


def test_no_findings_say_so() -> None:
    root = parse(forest_plot([], title="t", id_prefix="p"))
    assert [e.text for e in by_class(root, "rw-empty")] == ["no evidence yet"]
    assert not by_class(root, "rw-point")
    assert int(root.get("height", "0")) < 100


def test_infinite_and_nan_numbers_do_not_break_the_plot() -> None:
    odd = [
        finding("unbounded", 0.0, -math.inf, math.inf, "insufficient data"),
        finding("stored unbounded", 0.1, -1e308, 1e308, "insufficient data", math.inf),
        finding("nan effect", math.nan, -0.1, 0.1, "no harm shown yet", math.nan),
        finding("nan end", 0.1, math.nan, 0.2, "no harm shown yet"),
        finding("reversed", 0.1, 0.3, -0.1, "harm", -0.05),
        finding("text", "0.1", "a", [], "?"),
        finding("normal", -0.2, -0.3, -0.1, "harm"),
    ]
    root = parse(forest_plot(odd, title="t", id_prefix="p"))
    assert_finite_coordinates(root)
    assert len(by_class(root, "rw-point")) == 4  # unbounded, stored unbounded, reversed, normal
    assert len(by_class(root, "rw-clipped")) == 4  # both ends of the two unbounded rows
    ticks = [float(e.text or "nan") for e in by_class(root, "rw-tick-label")]
    assert max(abs(t) for t in ticks) < 1  # the unbounded rows do not stretch the axis


def test_an_outlying_interval_is_clipped_rather_than_squeezing_the_others() -> None:
    rows = [finding(f"c{i}", 0.1 * i - 0.2, 0.1 * i - 0.5, 0.1 * i + 0.1) for i in range(5)]
    rows.append(finding("few units", 0.1, -50.0, 50.0, "insufficient data"))
    root = parse(forest_plot(rows, title="t", id_prefix="p"))
    ticks = [float(e.text or "nan") for e in by_class(root, "rw-tick-label")]
    assert max(abs(t) for t in ticks) < 1
    arrows = by_class(root, "rw-clipped")
    assert len(arrows) == 2
    assert {float(a.get("points", "").split(",")[1].split()[0]) for a in arrows} == {
        float(by_class(root, "rw-point")[-1].get("cy", "nan"))
    }


def test_tiny_and_subnormal_numbers_do_not_break_the_scale() -> None:
    rows = [finding("subnormal", 5e-324, -5e-324, 5e-324), finding("tiny", 1e-300, -1e-300, 0.0)]
    root = parse(forest_plot(rows, title="t", id_prefix="p"))
    assert_finite_coordinates(root)
    assert len(by_class(root, "rw-point")) == 2


FLOATS = st.none() | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "scope": st.text(max_size=30),  # control characters too: XML cannot carry them
                "effect": FLOATS,
                "ci_low": FLOATS,
                "ci_high": FLOATS,
                "verdict": st.sampled_from(["harm", "improvement", "no harm shown yet", ""]),
                "tolerance": FLOATS,
            }
        ),
        max_size=6,
    ),
    st.integers(min_value=-10, max_value=10**6),
)
@settings(max_examples=150, deadline=None)
def test_any_numbers_give_a_well_formed_plot(findings: list[dict[str, Any]], width: int) -> None:
    root = parse(forest_plot(findings, title="t\x00", id_prefix="p", width=width))
    for value in coordinates(root):
        assert math.isfinite(float(value))
    assert len(by_class(root, "rw-row-label")) == len(findings)


# --- the interval timeline ----------------------------------------------------------------------


def test_each_reading_is_a_bar_and_a_dot_in_time_order() -> None:
    shuffled = NARROWING[5:] + NARROWING[:5]
    root = parse(interval_timeline(shuffled, title="t", id_prefix="p"))
    bars, dots = by_class(root, "rw-interval"), by_class(root, "rw-point")
    assert len(bars) == len(dots) == len(NARROWING)
    xs = [float(d.get("cx", "nan")) for d in dots]
    assert xs == sorted(xs)
    assert len(set(xs)) == len(xs)
    assert all(b.get("x1") == b.get("x2") for b in bars)
    assert sum("rw-harm" in d.get("class", "") for d in dots) == 3


def test_the_interval_narrows_on_screen() -> None:
    root = parse(interval_timeline(NARROWING[1:], title="t", id_prefix="p"))
    lengths = [
        abs(float(b.get("y2", "nan")) - float(b.get("y1", "nan")))
        for b in by_class(root, "rw-interval")
    ]
    assert lengths == sorted(lengths, reverse=True)
    assert lengths[0] > 3 * lengths[-1]
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert "9 readings from 2023-11-14 22:23:20 UTC" in (desc.text or "")


def test_time_ticks_read_as_utc_clock_times() -> None:
    root = parse(interval_timeline(NARROWING, title="t", id_prefix="p"))
    labels = [e.text or "" for e in by_class(root, "rw-tick-label")]
    clocks = [t for t in labels if ":" in t]
    assert 2 <= len(clocks) <= 5
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in clocks)
    assert "22:30:00" in clocks
    assert any("UTC" in (e.text or "") for e in by_class(root, "rw-axis-label"))


def test_a_dot_above_zero_is_drawn_higher() -> None:
    up = [point(T0, 0.5, 0.2, 0.8), point(T0 + 60, -0.5, -0.8, -0.2, "harm")]
    root = parse(interval_timeline(up, title="t", id_prefix="p"))
    (zero,) = by_class(root, "rw-zero")
    zero_y = float(zero.get("y1", "nan"))
    above, below = (float(d.get("cy", "nan")) for d in by_class(root, "rw-point"))
    assert above < zero_y < below


def test_a_single_reading_still_renders() -> None:
    root = parse(interval_timeline([point(T0, 0.05, -0.95, 1.05)], title="t", id_prefix="p"))
    assert_finite_coordinates(root)
    (bar,) = by_class(root, "rw-interval")
    (dot,) = by_class(root, "rw-point")
    (axis, *_) = by_class(root, "rw-axis")
    assert float(axis.get("x1", "nan")) < float(dot.get("cx", "nan")) < float(axis.get("x2", "nan"))
    assert float(bar.get("y2", "nan")) < float(dot.get("cy", "nan")) < float(bar.get("y1", "nan"))
    assert [e.text for e in by_class(root, "rw-tick-label") if ":" in (e.text or "")]


def test_readings_without_numbers_are_skipped() -> None:
    points = [
        point(T0, None, None, None),
        point(T0 + 60, 0.1, -0.1, 0.3),
        point(T0 + 120, math.nan, -0.1, 0.3),
        point(math.nan, 0.1, -0.1, 0.3),
        point(1e300, 0.1, -0.1, 0.3),
        point(T0 + 180, 0.1, -math.inf, math.inf),
    ]
    root = parse(interval_timeline(points, title="t", id_prefix="p"))
    assert_finite_coordinates(root)
    assert len(by_class(root, "rw-point")) == 2
    assert len(by_class(root, "rw-clipped")) == 2


def test_a_timeline_without_numbers_says_no_evidence_yet() -> None:
    points = [point(T0, None, None, None), point(T0 + 60, math.nan, 0.0, 1.0)]
    root = parse(interval_timeline(points, title="t", id_prefix="p"))
    assert [e.text for e in by_class(root, "rw-empty")] == ["no evidence yet"]
    assert not by_class(root, "rw-point")


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "at": FLOATS | st.floats(min_value=0, max_value=4e9),
                "effect": FLOATS,
                "ci_low": FLOATS,
                "ci_high": FLOATS,
                "verdict": st.text(max_size=12),
            }
        ),
        max_size=8,
    ),
    st.integers(min_value=-10, max_value=10**6),
    st.integers(min_value=-10, max_value=10**6),
)
@settings(max_examples=150, deadline=None)
def test_any_numbers_give_a_well_formed_timeline(
    points: list[dict[str, Any]], width: int, height: int
) -> None:
    root = parse(interval_timeline(points, title="t", id_prefix="p", width=width, height=height))
    for value in coordinates(root):
        assert math.isfinite(float(value))
    assert by_class(root, "rw-point") or by_class(root, "rw-empty")

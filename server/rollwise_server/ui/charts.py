"""Server-side SVG charts of a rollout's evidence, for the console's HTML pages.

The console's Content-Security-Policy (``default-src 'self'; style-src 'self'``) forbids inline
styles and scripts, so the charts are static SVG strings drawn with presentation attributes
(``fill``, ``stroke``, ``font-size``...) in colours that meet WCAG contrast on white, and every
element also carries a class the console's stylesheet may refine:

- ``rw-chart`` (the root ``<svg>``), with ``rw-forest`` or ``rw-timeline``;
- ``rw-empty``: the "no evidence yet" text;
- ``rw-axis``, ``rw-tick``, ``rw-tick-label``, ``rw-axis-label``, ``rw-grid``: the axes;
- ``rw-zero``: the line at no effect; ``rw-tolerance``, ``rw-tolerance-label``: the tolerance;
- ``rw-row-label``: a finding's scope; ``rw-verdict``: its verdict; ``rw-no-data``: the
  "insufficient data" text of a finding without an effect;
- ``rw-interval``: an interval's line; ``rw-point``: the effect; ``rw-clipped``: the arrow
  at an interval end beyond the plotted range;
- tones, next to the above: ``rw-harm``, ``rw-improvement``, ``rw-neutral``.

The root is ``<svg role="img" aria-labelledby="{id_prefix}-title {id_prefix}-desc">``: the
``<desc>`` says the numbers in words, for readers who cannot see the chart. The functions are
pure and never raise on odd numbers: a missing, NaN or infinite value, or a magnitude beyond
``1e15`` (the evidence stores an unbounded interval end as ``±1e308``), is either skipped or
drawn as an open (clipped) end.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from markupsafe import Markup

__all__ = ["forest_plot", "interval_timeline", "scope_of"]

TEXT = "#1f2937"
NEUTRAL = "#374151"
HARM = "#b91c1c"
IMPROVEMENT = "#15803d"
GRID = "#e5e7eb"
TOLERANCE = "#6b7280"
TONES = {"harm": HARM, "improvement": IMPROVEMENT}
FONT = "system-ui, sans-serif"

BIG = 1e15
"""Beyond this magnitude a number is treated as infinite: it is no measurement."""
TINY = 1e-15
"""Below this magnitude a number is treated as zero (so a scale's span never underflows)."""
SPREAD = 4.0
"""Interval ends reaching further than this many times the typical row's reach are clipped."""
CAP = 1000.0
"""... and so are ends beyond this many times the largest effect or tolerance."""
CHAR = 6.6
"""The width of a character at font-size 12, roughly: to size the text columns."""
ROW = 28
INSET = 8
"""Pixels between the plot's border and the ends of its scale, so no mark sits on a border."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_STEPS = (
    *(1, 2, 5, 10, 15, 30),
    *(60 * m for m in (1, 2, 5, 10, 15, 30)),
    *(3600 * h for h in (1, 2, 3, 6, 12)),
    *(86400 * d for d in (1, 2, 4, 7, 14, 28)),
)
DAY = 86400
UNCARRIED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
END = Markup("</svg>")


class Reading(NamedTuple):
    """One plotted interval: its effect, its ends (maybe infinite) and how to colour it."""

    effect: float
    low: float
    high: float
    verdict: str


class Scale(NamedTuple):
    """A linear map from data to pixels, with the domain's nice tick values."""

    lo: float
    hi: float
    start: float
    end: float
    ticks: tuple[float, ...]
    step: float

    def at(self, value: float) -> float:
        """The pixel of ``value``, clamped to the scale's ends."""
        value = min(max(value, self.lo), self.hi)
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)


# --- numbers -------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A real number as a float; ``None`` for anything else or NaN; huge magnitudes as ±inf,
    tiny ones as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        x = float(value)
    except (OverflowError, ValueError):
        return math.inf if value > 0 else -math.inf
    if math.isnan(x):
        return None
    if abs(x) < TINY:
        return 0.0
    return x if abs(x) <= BIG else math.copysign(math.inf, x)


def _finite(value: Any) -> float | None:
    """A finite number, or ``None``."""
    x = _number(value)
    return x if x is not None and math.isfinite(x) else None


def _reading(row: Mapping[str, Any]) -> Reading | None:
    """A finding's or a point's interval; ``None`` if it has no effect or a missing end."""
    effect, low, high = (_number(row.get(k)) for k in ("effect", "ci_low", "ci_high"))
    if effect is None or not math.isfinite(effect) or low is None or high is None:
        return None
    low, high = min(low, high), max(low, high)
    return Reading(effect, min(low, effect), max(high, effect), str(row.get("verdict", "")))


def _px(value: float) -> str:
    """A coordinate with one decimal (never NaN: the scales only see finite numbers)."""
    return f"{value:.1f}" if math.isfinite(value) else "0.0"


def _say(value: float) -> str:
    """A number in words for the description: three significant digits."""
    if math.isinf(value):
        return "infinity" if value > 0 else "minus infinity"
    text = f"{value:.3g}"
    return "0" if text == "-0" else text


def _tone(verdict: str) -> str:
    """The tone class of a verdict: the colours follow from it."""
    return {"harm": "harm", "improvement": "improvement"}.get(verdict.strip().lower(), "neutral")


def _colour(tone: str) -> str:
    return TONES.get(tone, NEUTRAL)


# --- scales --------------------------------------------------------------------------------


def _extent(readings: Sequence[Reading], anchors: Iterable[float]) -> tuple[float, float]:
    """The values to show: zero, every anchor (effects, tolerances) and the interval ends,
    except those so far out that showing them would squeeze every other row into a line."""
    core = [0.0, *anchors, *(r.effect for r in readings)]
    reach = [max(abs(e) for e in ends) for r in readings if (ends := _bounded(r))]
    values = list(core)
    if reach:
        biggest = max(abs(v) for v in core)
        typical = statistics.median_low(reach)
        if biggest > 0:
            typical = min(typical, CAP * biggest)
        values += [e for r in readings for e in _bounded(r) if abs(e) <= SPREAD * typical]
    return min(values), max(values)


def _bounded(reading: Reading) -> list[float]:
    return [e for e in (reading.low, reading.high) if math.isfinite(e)]


def _nice_step(lo: float, hi: float, most: int = 5) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that covers [lo, hi] with at most
    ``most`` ticks; one step less gives six or more, so this one gives at least three."""
    exponent = math.floor(math.log10((hi - lo) / most))
    while True:
        for mantissa in (1.0, 2.0, 5.0):
            step = mantissa * 10.0**exponent
            if math.ceil(hi / step) - math.floor(lo / step) + 1 <= most:
                return step
        exponent += 1


def _value_scale(lo: float, hi: float, start: float, end: float) -> Scale:
    """A scale over [lo, hi] widened to nice ticks (3 to 5 of them)."""
    if hi - lo <= 0:
        pad = abs(hi) / 2 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(lo, hi)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    ticks = tuple(i * step for i in range(first, last + 1))
    return Scale(ticks[0], ticks[-1], start, end, ticks, step)


def _tick_text(value: float, step: float) -> str:
    """A tick value with as many decimals as its step needs."""
    if step >= 1e6 or step < 1e-4:
        text = f"{value:.3g}"
    else:
        text = f"{value:.{max(0, -math.floor(math.log10(step) + 1e-9))}f}"
    return "0" if text.lstrip("-").strip("0.") == "" else text


def _time_scale(first: float, last: float, start: float, end: float, most: int) -> Scale:
    """A time scale at least a minute wide, a little wider than the readings, with at most
    ``most`` ticks at whole steps of a round duration, or else at the first and last times."""
    if last - first < 60:
        middle = (first + last) / 2
        first, last = middle - 30, middle + 30
    ends = (first, last)  # the fallback ticks, when no round step gives two
    pad = (last - first) * 0.03
    first, last = first - pad, last + pad

    def count(step: float) -> int:
        return math.floor(last / step) - math.ceil(first / step) + 1

    step = next((float(s) for s in TIME_STEPS if count(s) <= most), 0.0)
    if not step:
        step = DAY * _nice_step(first / DAY, last / DAY, most)
    low, high = math.ceil(first / step), math.floor(last / step)
    ticks = tuple(i * step for i in range(low, high + 1))
    return Scale(first, last, start, end, ticks if len(ticks) > 1 else ends, step)


def _utc(ts: float) -> datetime | None:
    """Epoch seconds as a UTC datetime; ``None`` outside the calendar."""
    try:
        return EPOCH + timedelta(seconds=ts)
    except (OverflowError, ValueError):
        return None


def _clock(ts: float, step: float) -> str:
    """A time tick: HH:MM:SS, or the date when ticks are days apart."""
    moment = _utc(ts)
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d" if step >= DAY else "%H:%M:%S")


def _stamp(ts: float) -> str:
    moment = _utc(ts)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "an unknown time"


# --- SVG pieces ------------------------------------------------------------------------------


def _clean(text: Any) -> str:
    """``text`` without the characters XML 1.0 cannot carry even escaped (controls, lone
    surrogates, U+FFFE, U+FFFF), each replaced by U+FFFD, so the SVG stays well-formed."""
    return UNCARRIED.sub("\ufffd", str(text))


def _id_prefix(prefix: str) -> str:
    """An id prefix safe in an XML id: other characters become ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(prefix)) or "chart"


def _attrs(attrs: Mapping[str, str]) -> Markup:
    """Extra presentation attributes (``font_size`` is written ``font-size``), escaped."""
    return Markup("").join(
        Markup(' {}="{}"').format(name.replace("_", "-"), value) for name, value in attrs.items()
    )


def _root(kind: str, prefix: str, width: int, height: int, title: str, desc: str) -> Markup:
    """The opening ``<svg>`` with its accessible name and description."""
    p = _id_prefix(prefix)
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="rw-chart rw-{kind}" role="img" '
        'width="{w}" height="{h}" viewBox="0 0 {w} {h}" aria-labelledby="{p}-title {p}-desc" '
        'font-family="{font}"><title id="{p}-title">{title}</title>'
        '<desc id="{p}-desc">{desc}</desc>'
    ).format(kind=kind, w=width, h=height, p=p, font=FONT, title=_clean(title), desc=_clean(desc))


def _text(x: float, y: float, content: str, cls: str, **attrs: str) -> Markup:
    """A text element; ``content`` is escaped here."""
    return Markup('<text class="{}" x="{}" y="{}"{}>{}</text>').format(
        cls, _px(x), _px(y), _attrs(attrs), _clean(content)
    )


def _line(
    x1: float, y1: float, x2: float, y2: float, cls: str, stroke: str, **attrs: str
) -> Markup:
    return Markup('<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"{}/>').format(
        cls, _px(x1), _px(y1), _px(x2), _px(y2), stroke, _attrs(attrs)
    )


def _circle(x: float, y: float, radius: float, tone: str) -> Markup:
    """The point at an effect, with a white rim so it stands out on its interval's line."""
    return Markup(
        '<circle class="rw-point rw-{}" cx="{}" cy="{}" r="{}" fill="{}" stroke="#ffffff" '
        'stroke-width="1"/>'
    ).format(tone, _px(x), _px(y), radius, _colour(tone))


def _arrow(x: float, y: float, dx: float, dy: float, tone: str) -> Markup:
    """A small triangle at (x, y) pointing along (dx, dy): the interval goes on beyond."""
    tip_x, tip_y = x + 7 * dx, y + 7 * dy
    side_x, side_y = 4 * dy, 4 * dx
    points = " ".join(
        f"{_px(a)},{_px(b)}"
        for a, b in ((tip_x, tip_y), (x + side_x, y + side_y), (x - side_x, y - side_y))
    )
    return Markup('<polygon class="rw-clipped rw-{}" points="{}" fill="{}"/>').format(
        tone, points, _colour(tone)
    )


def _fitted(
    x: float, y: float, text: str, room: float, cls: str, middle: bool = False, **attrs: str
) -> Markup:
    """A text cut to what fits in ``room`` pixels, with an ellipsis (in the ``middle``, to
    keep a label's distinctive end) and the whole text as a tooltip when it is cut."""
    most = max(4, int(room / CHAR))
    if len(text) <= most:
        return _text(x, y, text, cls, **attrs)
    head = most // 3 if middle else most - 1
    tail = text[len(text) - (most - 1 - head) :] if middle else ""
    short = _text(x, y, text[:head] + "\u2026" + tail, cls, **attrs)
    return Markup("{}<title>{}</title></text>").format(short[: -len("</text>")], _clean(text))


def _empty(kind: str, title: str, prefix: str, width: int) -> Markup:
    """The small chart of no evidence."""
    height = 48
    return (
        _root(kind, prefix, width, height, title, "No evidence yet.")
        + _text(
            width / 2,
            28,
            "no evidence yet",
            "rw-empty",
            fill=NEUTRAL,
            font_size="13",
            text_anchor="middle",
        )
        + END
    )


# --- the forest plot -----------------------------------------------------------------------


def scope_of(finding: Mapping[str, Any]) -> str:
    """A finding's scope, after its candidate's name when it has one (a plan with several
    candidates): ``overall``, ``v3: country=NL``."""
    scope = str(finding.get("scope", "") or "overall")
    candidate = finding.get("candidate")
    return f"{candidate}: {scope}" if candidate else scope


def _label(finding: Mapping[str, Any], with_metric: bool) -> str:
    """A row's label: its scope (``gap:country=NL`` reads ``gap country=NL``), after its
    candidate's name with several candidates."""
    scope = str(finding.get("scope", "") or "overall")
    if scope.startswith("gap:"):
        scope = "gap " + scope[4:]
    if finding.get("candidate"):
        scope = f"{finding['candidate']}: {scope}"
    return f"{finding.get('metric', '')}: {scope}" if with_metric else scope


def _tolerance(finding: Mapping[str, Any]) -> float:
    """A finding's tolerance as a magnitude; 0 when missing or not a finite number."""
    return abs(_finite(finding.get("tolerance")) or 0.0)


def _forest_desc(labels: Sequence[str], findings: Sequence[Mapping[str, Any]]) -> str:
    """The chart in words: each row's effect, interval and verdict."""
    parts = [f"{len(findings)} finding{'s' if len(findings) != 1 else ''}."]
    for label, finding in zip(labels, findings, strict=True):
        reading = _reading(finding)
        verdict = str(finding.get("verdict", "")) or "no verdict"
        if reading is None:
            parts.append(f"{label}: insufficient data, {verdict}.")
            continue
        tolerance = _tolerance(finding)
        parts.append(
            f"{label}: effect {_say(reading.effect)}, interval {_say(reading.low)} to "
            f"{_say(reading.high)}"
            + (f", tolerance {_say(tolerance)}" if tolerance else "")
            + f", {verdict}."
        )
    return " ".join(parts)


def _axis(
    scale: Scale, top: float, bottom: float, caption: str, label: Callable[[float, float], str]
) -> list[Markup]:
    """A horizontal axis at ``bottom`` (values or times: ``label`` writes a tick), with grid
    lines up to ``top`` and ``caption`` below."""
    parts = [_line(scale.start - INSET, bottom, scale.end + INSET, bottom, "rw-axis", NEUTRAL)]
    for tick in scale.ticks:
        x = scale.at(tick)
        parts.append(_line(x, top, x, bottom, "rw-grid", GRID))
        parts.append(_line(x, bottom, x, bottom + 4, "rw-tick", NEUTRAL))
        parts.append(
            _text(
                x, bottom + 16, label(tick, scale.step), "rw-tick-label", fill=TEXT,
                font_size="11", text_anchor="middle",
            )
        )  # fmt: skip
    middle = (scale.start + scale.end) / 2
    parts.append(
        _text(
            middle, bottom + 32, caption, "rw-axis-label", fill=TEXT, font_size="11",
            text_anchor="middle",
        )
    )  # fmt: skip
    return parts


def _tolerance_marks(tolerances: Sequence[float], scale: Scale, top: float) -> list[Markup]:
    """Dashed segments at ±tolerance across each row that has one; a label per value."""
    parts: list[Markup] = []
    for i, tolerance in enumerate(tolerances):
        if not tolerance:
            continue
        y = top + i * ROW
        for side in (-tolerance, tolerance):
            x = scale.at(side)
            parts.append(
                _line(
                    x,
                    y,
                    x,
                    y + ROW,
                    "rw-tolerance",
                    TOLERANCE,
                    stroke_dasharray="4 3",
                    stroke_width="1.5",
                )
            )
    for tolerance in sorted(set(t for t in tolerances if t)):
        for side, anchor, nudge in ((-tolerance, "end", -3), (tolerance, "start", 3)):
            parts.append(
                _text(
                    scale.at(side) + nudge,
                    top - 4,
                    "tolerance",
                    "rw-tolerance-label",
                    fill=NEUTRAL,
                    font_size="10",
                    text_anchor=anchor,
                )
            )
    return parts


def _interval(reading: Reading, scale: Scale, y: float, tone: str) -> list[Markup]:
    """A row's interval line, the arrows at clipped ends, and the point at the effect."""
    colour = _colour(tone)
    x1, x2 = scale.at(reading.low), scale.at(reading.high)
    parts = [_line(x1, y, x2, y, f"rw-interval rw-{tone}", colour, stroke_width="2")]
    if reading.low < scale.lo:
        parts.append(_arrow(x1, y, -1, 0, tone))
    if reading.high > scale.hi:
        parts.append(_arrow(x2, y, 1, 0, tone))
    parts.append(_circle(scale.at(reading.effect), y, 4.5, tone))
    return parts


def forest_plot(
    findings: Sequence[Mapping[str, Any]], *, title: str, id_prefix: str, width: int = 640
) -> Markup:
    """Each finding as a row: its effect, its always-valid interval, zero, the tolerance and
    the verdict, so that a reader sees at a glance which scope is harmed and how surely."""
    width = min(max(int(width), 400), 4000)
    if not findings:
        return _empty("forest", title, id_prefix, width)
    with_metric = len({str(f.get("metric", "")) for f in findings}) > 1
    labels = [_label(f, with_metric) for f in findings]
    verdicts = [str(f.get("verdict", "")) for f in findings]
    readings = [_reading(f) for f in findings]
    tolerances = [_tolerance(f) for f in findings]

    verdict_room = min(max(max(len(s) for s in verdicts) * CHAR, 60), width * 0.3)
    room = width - 36 - max(160, width * 0.35) - verdict_room  # the plot's share comes first
    label_room = min(max(len(s) for s in labels) * CHAR, max(room, 60))
    left, right = 8 + label_room + 10, width - 8 - verdict_room - 10
    top = 22.0
    bottom = top + ROW * len(findings)
    height = int(bottom + 44)
    present = [r for r in readings if r is not None]
    lo, hi = _extent(present, [s * t for t in tolerances for s in (-1, 1) if t])
    scale = _value_scale(lo, hi, left + INSET, right - INSET)

    parts = [_root("forest", id_prefix, width, height, title, _forest_desc(labels, findings))]
    parts += _axis(scale, top, bottom, "effect (candidate - control)", _tick_text)
    parts.append(_line(scale.at(0.0), top, scale.at(0.0), bottom, "rw-zero", NEUTRAL))
    parts += _tolerance_marks(tolerances, scale, top)
    for i, (label, verdict, reading) in enumerate(zip(labels, verdicts, readings, strict=True)):
        y = top + ROW * i + ROW / 2
        tone = _tone(verdict)
        parts.append(
            _fitted(
                left - 10,
                y + 4,
                label,
                label_room,
                "rw-row-label",
                middle=True,
                fill=TEXT,
                font_size="12",
                text_anchor="end",
            )
        )
        if reading is None:
            parts.append(
                _text(
                    (left + right) / 2,
                    y + 4,
                    "insufficient data",
                    "rw-no-data",
                    fill=NEUTRAL,
                    font_size="12",
                    text_anchor="middle",
                    font_style="italic",
                )
            )
        else:
            parts += _interval(reading, scale, y, tone)
        parts.append(
            _fitted(
                right + 10,
                y + 4,
                verdict,
                verdict_room,
                f"rw-verdict rw-{tone}",
                fill=_colour(tone),
                font_size="12",
                text_anchor="start",
            )
        )
    parts.append(END)
    return Markup("").join(parts)


# --- the interval timeline -----------------------------------------------------------------


def _timed(points: Sequence[Mapping[str, Any]]) -> list[tuple[float, Reading]]:
    """The points with a time in the calendar and a full interval, oldest first."""
    kept: list[tuple[float, Reading]] = []
    for point in points:
        at, reading = _finite(point.get("at")), _reading(point)
        if at is not None and reading is not None and _utc(at) is not None:
            kept.append((at, reading))
    return sorted(kept, key=lambda item: item[0])


def _timeline_desc(kept: Sequence[tuple[float, Reading]]) -> str:
    """The timeline in words: how many readings, the first and the latest interval."""
    (t0, first), (t1, last) = kept[0], kept[-1]
    count = f"{len(kept)} reading{'s' if len(kept) != 1 else ''}"
    latest = (
        f"At {_stamp(t1)}: effect {_say(last.effect)}, interval {_say(last.low)} to "
        f"{_say(last.high)}, {last.verdict or 'no verdict'}."
    )
    if len(kept) == 1:
        return f"{count}. {latest}"
    widths = [r.high - r.low for r in (first, last)]
    change = (
        f" The interval's width went from {_say(widths[0])} to {_say(widths[1])}."
        if all(math.isfinite(w) for w in widths)
        else ""
    )
    return (
        f"{count} from {_stamp(t0)} to {_stamp(t1)}. First: interval {_say(first.low)} to "
        f"{_say(first.high)}. {latest}{change}"
    )


def _y_axis(scale: Scale, left: float, right: float) -> list[Markup]:
    """The vertical value axis at ``left``, with grid lines across to ``right``."""
    parts = [_line(left, scale.start + INSET, left, scale.end - INSET, "rw-axis", NEUTRAL)]
    for tick in scale.ticks:
        y = scale.at(tick)
        parts.append(_line(left, y, right, y, "rw-grid", GRID))
        parts.append(_line(left - 4, y, left, y, "rw-tick", NEUTRAL))
        parts.append(
            _text(
                left - 6,
                y + 4,
                _tick_text(tick, scale.step),
                "rw-tick-label",
                fill=TEXT,
                font_size="11",
                text_anchor="end",
            )
        )
    return parts


def _time_axis(scale: Scale, top: float, bottom: float) -> list[Markup]:
    """The time axis at ``bottom``: HH:MM:SS ticks and the dates in the caption."""
    days = sorted({_stamp(t)[:10] for t in (scale.lo, scale.hi)})
    return _axis(scale, top, bottom, "time (UTC), " + " to ".join(days), _clock)


def _bar(at: float, reading: Reading, xs: Scale, ys: Scale) -> list[Markup]:
    """One reading: a vertical interval, arrows where it leaves the plot, a dot at the effect."""
    tone = _tone(reading.verdict)
    colour = _colour(tone)
    x = xs.at(at)
    y_low, y_high = ys.at(reading.low), ys.at(reading.high)
    parts = [_line(x, y_low, x, y_high, f"rw-interval rw-{tone}", colour, stroke_width="2")]
    if reading.low < ys.lo:
        parts.append(_arrow(x, y_low, 0, 1, tone))
    if reading.high > ys.hi:
        parts.append(_arrow(x, y_high, 0, -1, tone))
    parts.append(_circle(x, ys.at(reading.effect), 3.5, tone))
    return parts


def interval_timeline(
    points: Sequence[Mapping[str, Any]],
    *,
    title: str,
    id_prefix: str,
    width: int = 640,
    height: int = 200,
) -> Markup:
    """One guardrail's always-valid interval at each look, over time: it narrows as data
    comes in, and the verdict changes once it leaves zero (or the tolerance) behind."""
    width = min(max(int(width), 320), 4000)
    height = min(max(int(height), 140), 4000)
    kept = _timed(points)
    if not kept:
        return _empty("timeline", title, id_prefix, width)
    left, right, top, bottom = 64.0, width - 16.0, 12.0, height - 44.0
    lo, hi = _extent([r for _, r in kept], [])
    ys = _value_scale(lo, hi, bottom - INSET, top + INSET)
    most = max(2, min(5, int((right - left) // 70)))
    xs = _time_scale(kept[0][0], kept[-1][0], left + INSET, right - INSET, most)

    parts = [_root("timeline", id_prefix, width, height, title, _timeline_desc(kept))]
    parts += _time_axis(xs, top, bottom)
    parts += _y_axis(ys, left, right)
    parts.append(_line(left, ys.at(0.0), right, ys.at(0.0), "rw-zero", NEUTRAL))
    for at, reading in kept:
        parts += _bar(at, reading, xs, ys)
    parts.append(END)
    return Markup("").join(parts)

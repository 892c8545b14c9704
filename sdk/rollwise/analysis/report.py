"""``Report``: one flag's results for analysts, as a tidy DataFrame, an HTML table and figures.

Built from sufficient statistics per metric and cohort (from SQL, the results endpoint or
pandas), so a report over 20 cohorts × 5 metrics takes milliseconds::

    report = Report.from_stats(
        "fraud-model",
        {"fraud_caught": {"overall": (ctrl, cand), ("country", "DE"): (ctrl_de, cand_de)}},
        metric_specs={"fraud_caught": MetricSpec(kind="binary", harm_direction="decrease")},
        weights=(0.5, 0.5),
    )
    report.to_frame()

Rows: each metric's overall effect at α; per cohort dimension (K cohorts, in
``cohort_sort_key`` order: bands by their edges) each cohort's effect and its gap change
against the rest at α/K (``fairness.cohort_effects``). That is each row's *own* interval.

Across the whole report (metrics × cohorts × effects and gaps: the family of m rows,
insufficient rows included, so that m stays fixed across looks) every row is read again at an
adjusted level, and **the verdict reads that adjusted interval** (``compare.verdict`` against the
metric's tolerance), which every output shows beside the own interval, with the family size m
and a one-line reason (``compare.verdict_reason``):

- always-valid report: Bonferroni, each row at α/m (Dunn, "Multiple Comparisons Among Means",
  JASA 56(293), 1961), simultaneous at any stopping time; the adjusted p-value is
  min(1, m·p) with p that of the α/m interval, so it is below α exactly when the adjusted
  interval excludes 0. (Holm's step-down rejects a little more but has no intervals to read a
  tolerance from, and a Holm p-value below α beside an interval that includes 0 is the
  misreading this report exists to prevent; the rollout controller uses Bonferroni too.)
- fixed-horizon (exploratory) report: Benjamini & Hochberg ("Controlling the False Discovery
  Rate", JRSS B 57(1), 1995) selects R of the m rows at α (``fixed_horizon.correct``,
  ``method="fdr_bh"``) and every row is read at level R·α/m, the false-coverage-rate adjusted
  intervals of Benjamini & Yekutieli ("False Discovery Rate-Adjusted Multiple Confidence
  Intervals for Selected Parameters", JASA 100(469), 2005); a row's interval excludes 0
  exactly when BH selects it. These can be narrower than a cohort's own α/K interval.

``str(report)`` is a fixed-width text table, ``_repr_html_`` the same columns for notebooks,
``to_frame()`` every number.
"""

from __future__ import annotations

import html
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import attrs

from rollwise.analysis.compare import (
    Comparison,
    Verdict,
    at_level,
    compare,
    format_effect,
    verdict,
    verdict_reason,
)
from rollwise.analysis.fairness import CohortEffects, SelectionParity, cohort_effects, parity_change
from rollwise.analysis.fixed_horizon import correct
from rollwise.analysis.reduce import cohort_sort_key
from rollwise.analysis.sequential import SequentialMonitor
from rollwise.analysis.srm import SRM_THRESHOLD, SequentialSRM, srm_chi2
from rollwise.analysis.suffstats import Kind, SufficientStats, requires_kind

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "COLUMNS",
    "HEADERS",
    "OVERALL",
    "CohortKey",
    "MetricSpec",
    "Report",
    "ReportRow",
    "SRMCheck",
]

OVERALL = "overall"
CohortKey = str | tuple[str, Hashable]
"""``"overall"`` or ``(dimension, cohort)``, e.g. ``("country", "DE")``."""

Arms = tuple[SufficientStats, SufficientStats]


@requires_kind
@attrs.frozen(kw_only=True)
class MetricSpec:
    """How to read one metric: its kind, the direction in which it gets worse, the tolerance.

    ``kind`` is required (``binary``, ``count``, ``mean`` or ``ratio``, as the server's metric
    catalogue declares the metric); the report checks each arm's statistics against it.

    ``tolerance`` is the change tolerated in the harm direction (in the effect's units, so a
    fraction when ``relative``; gap changes are always absolute, so with ``relative`` they are
    read with tolerance 0). ``selection``: the metric is a binary decision (approve), so the
    report adds selection-rate parity across the cohorts of each dimension.
    """

    kind: Kind
    harm_direction: Literal["increase", "decrease"] = "increase"
    tolerance: float = attrs.field(default=0.0)
    relative: bool = False
    selection: bool = False

    @tolerance.validator
    def _check_tolerance(self, _: object, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"tolerance: must be a finite number >= 0, not {value}")

    def __attrs_post_init__(self) -> None:
        if self.selection and self.kind != "binary":
            raise ValueError("selection: only a binary metric is a selection decision")


@attrs.frozen(kw_only=True)
class ReportRow:
    """One estimate of the report (``estimand`` is ``"effect"`` or ``"gap change"``).

    ``result`` is the row's own comparison, at its own level (``result.alpha``: α overall,
    α/K for the K cohorts of a dimension). ``adjusted`` is the same estimate at the report's
    adjusted level (``adjusted.alpha``) for the family of ``family`` rows: the interval the
    verdict reads. ``verdict`` and ``reason`` (one line that starts with the verdict, e.g.
    ``"no harm shown yet: interval [-0.004, +0.066] includes the tolerance +0.01"``) read
    ``adjusted`` against ``tolerance`` in ``harm_direction``. ``note``: why there is no
    interval, or that the own interval alone reads otherwise.
    """

    metric: str
    cohort_dimension: str
    cohort: Hashable
    estimand: Literal["effect", "gap change"]
    result: Comparison
    adjusted: Comparison
    adjusted_p_value: float
    family: int
    harm_direction: Literal["increase", "decrease"]
    tolerance: float
    verdict: Verdict
    reason: str
    worst: bool = False
    note: str | None = None

    @property
    def label(self) -> str:
        """``overall``, ``country=DE`` or ``gap country=DE``: the row in tables and plots."""
        if self.cohort_dimension == OVERALL:
            return OVERALL
        prefix = "gap " if self.estimand == "gap change" else ""
        return f"{prefix}{self.cohort_dimension}={self.cohort}"

    @property
    def why(self) -> str:
        """``reason`` without the leading verdict."""
        return self.reason.removeprefix(f"{self.verdict}: ")


@attrs.frozen(kw_only=True)
class SRMCheck:
    """Sample-ratio mismatch of the arms' unit counts against the configured weights.

    ``p_value`` is the one-look chi-square test; under continuous monitoring give the report a
    ``SequentialSRM`` (``sequential_p_value``, always valid). Either below 0.001 is a mismatch.
    """

    counts: tuple[int, ...]
    weights: tuple[float, ...]
    p_value: float
    sequential_p_value: float | None = None

    @property
    def mismatch(self) -> bool:
        """True when a p-value is below ``SRM_THRESHOLD`` (0.001)."""
        ps = [self.p_value] if self.sequential_p_value is None else [
            self.p_value, self.sequential_p_value
        ]  # fmt: skip
        return min(ps) < SRM_THRESHOLD

    def line(self) -> str:
        total = sum(self.weights) or 1.0
        counts = " / ".join(f"{c:,}" for c in self.counts)
        shares = " / ".join(f"{w / total:.3g}" for w in self.weights)
        text = f"SRM: {counts} units against weights {shares}: chi-square p = {_p(self.p_value)}"
        if self.sequential_p_value is not None:
            text += f", sequential p = {_p(self.sequential_p_value)}"
        if self.mismatch:
            return text + " — MISMATCH: assignment or logging is broken, distrust every row."
        return text + " — no mismatch."


def _p(value: float) -> str:
    if math.isnan(value):
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _num(value: float) -> str:
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.4g}"


class _Pending(NamedTuple):
    metric: str
    dimension: str
    cohort: Hashable
    estimand: Literal["effect", "gap change"]
    result: Comparison
    arms: Arms | None  # None: a gap change, re-read with ``at_level``


def _split_key(key: CohortKey) -> tuple[str, Hashable] | None:
    if isinstance(key, str):
        if key != OVERALL:
            raise ValueError(f"cohort key: {OVERALL!r} or (dimension, cohort), not {key!r}")
        return None
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str):
        return key[0], key[1]
    raise ValueError(f"cohort key: {OVERALL!r} or (dimension, cohort), not {key!r}")


@attrs.frozen(kw_only=True)
class Report:
    """One flag's results; build it with ``Report.from_stats``.

    ``str(report)`` (``print(report)``) is a fixed-width text table, and a notebook shows the
    same columns as HTML; ``to_frame()`` has every number.
    """

    flag: str
    alpha: float
    sequential: bool
    specs: Mapping[str, MetricSpec]
    rows: tuple[ReportRow, ...]
    cohorts: Mapping[tuple[str, str], CohortEffects[Hashable]] = attrs.field(factory=dict)
    parity: Mapping[
        tuple[str, str], tuple[SelectionParity[Hashable], SelectionParity[Hashable]]
    ] = attrs.field(factory=dict)
    srm: SRMCheck | None = None
    monitors: Mapping[str, SequentialMonitor] = attrs.field(factory=dict)

    @property
    def correction(self) -> Literal["bonferroni", "fdr_bh"]:
        """Bonferroni for the always-valid family, Benjamini-Hochberg for a fixed-horizon report."""
        return "bonferroni" if self.sequential else "fdr_bh"

    @property
    def family(self) -> int:
        """m, the number of rows the adjustment is over."""
        return len(self.rows)

    @property
    def adjusted_alpha(self) -> float:
        """The level of every row's adjusted interval: α/m, or R·α/m (fixed horizon)."""
        return self.rows[0].adjusted.alpha if self.rows else self.alpha

    @classmethod
    def from_stats(
        cls,
        flag: str,
        stats: Mapping[str, Mapping[Any, Arms]],
        *,
        metric_specs: Mapping[str, MetricSpec],
        alpha: float = 0.05,
        sequential: bool = True,
        tuning: float = 5000,
        weights: Sequence[float] | None = None,
        srm_counts: Sequence[int] | None = None,
        srm_monitor: SequentialSRM | None = None,
        monitors: Mapping[str, SequentialMonitor] | None = None,
    ) -> Report:
        """Compare every metric overall and in every cohort; adjust across the report.

        ``stats[metric][key] = (control, candidate)`` with ``key`` ``"overall"`` or
        ``(dimension, cohort)``. Every metric needs a ``MetricSpec``. ``weights`` (the
        configured split, control first) adds the SRM line, on ``srm_counts`` or else the
        ``"overall"`` unit counts of the first metric; ``srm_monitor`` adds its running
        sequential p-value. ``monitors`` (metric → ``SequentialMonitor``) feed ``plot``.
        Cohorts are ordered with ``cohort_sort_key`` whatever the order of ``stats``.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
        missing = [m for m in stats if m not in metric_specs]
        if missing:
            raise ValueError(f"metric_specs: no spec for {missing} (kind and harm direction)")
        pending: list[_Pending] = []
        worst: set[tuple[str, str, Hashable, str]] = set()
        all_cohorts: dict[tuple[str, str], CohortEffects[Hashable]] = {}
        parity: dict[
            tuple[str, str], tuple[SelectionParity[Hashable], SelectionParity[Hashable]]
        ] = {}
        for metric, by_key in stats.items():
            spec = metric_specs[metric]
            dimensions: dict[str, dict[Hashable, Arms]] = {}
            overall: Arms | None = None
            for key, arms in by_key.items():
                for arm in arms:
                    if arm.kind != spec.kind:
                        raise ValueError(
                            f"{metric} {key!r}: {arm.kind} statistics for a {spec.kind} metric"
                        )
                split = _split_key(key)
                if split is None:
                    overall = arms
                else:
                    dimensions.setdefault(split[0], {})[split[1]] = arms
            if overall is not None:
                result = compare(
                    *overall, alpha=alpha, sequential=sequential, relative=spec.relative,
                    tuning=tuning,
                )  # fmt: skip
                pending.append(_Pending(metric, OVERALL, "all", "effect", result, overall))
            for dimension, unordered in dimensions.items():
                by_cohort = dict(sorted(unordered.items(), key=lambda kv: cohort_sort_key(kv[0])))
                analysis = cohort_effects(
                    by_cohort, alpha=alpha, harm_direction=spec.harm_direction,
                    relative=spec.relative, sequential=sequential, tuning=tuning,
                )  # fmt: skip
                all_cohorts[(metric, dimension)] = analysis
                if analysis.worst is not None:
                    worst.add((metric, dimension, analysis.worst, "effect"))
                if analysis.largest_gap is not None:
                    worst.add((metric, dimension, analysis.largest_gap, "gap change"))
                for cohort, result in analysis.effects.items():
                    arms = by_cohort[cohort]
                    pending.append(_Pending(metric, dimension, cohort, "effect", result, arms))
                for cohort, result in analysis.gaps.items():
                    pending.append(_Pending(metric, dimension, cohort, "gap change", result, None))
                if spec.selection:
                    parity[(metric, dimension)] = parity_change(by_cohort)
        family = len(pending)
        level, adjusted, adjusted_p = _adjust(pending, metric_specs, alpha, sequential, tuning)
        rows = []
        for item, again, adj in zip(pending, adjusted, adjusted_p, strict=True):
            spec = metric_specs[item.metric]
            relative_gap = item.estimand == "gap change" and spec.relative
            tolerance = 0.0 if relative_gap else spec.tolerance
            direction = spec.harm_direction
            reading = verdict(again, harm_direction=direction, tolerance=tolerance)
            own = verdict(item.result, harm_direction=direction, tolerance=tolerance)
            note = item.result.note
            if own != reading:
                note = (
                    f"{own} on the row's own interval (α = {item.result.alpha:.3g}), "
                    f"{reading} on the interval adjusted across the report's {family} rows "
                    f"(α = {level:.3g})"
                )
            row = ReportRow(
                metric=item.metric, cohort_dimension=item.dimension, cohort=item.cohort,
                estimand=item.estimand, result=item.result, adjusted=again, adjusted_p_value=adj,
                family=family, harm_direction=direction, tolerance=tolerance, verdict=reading,
                reason=verdict_reason(again, harm_direction=direction, tolerance=tolerance),
                worst=(item.metric, item.dimension, item.cohort, item.estimand) in worst,
                note=note,
            )  # fmt: skip
            rows.append(row)
        srm = None
        if weights is not None:
            srm = _srm_check(stats, weights, srm_counts, srm_monitor)
        return cls(
            flag=flag, alpha=alpha, sequential=sequential,
            specs={m: metric_specs[m] for m in stats}, rows=tuple(rows), cohorts=all_cohorts,
            parity=parity, srm=srm, monitors=dict(monitors or {}),
        )  # fmt: skip

    # --- outputs ---

    def to_frame(self) -> pd.DataFrame:
        """One tidy row per estimate (overall, per-cohort effect, per-cohort gap change).

        ``ci_low``/``ci_high``/``p_value`` are the row's own (at ``alpha``);
        ``ci_low_adj``/``ci_high_adj``/``adjusted_p_value`` the adjusted ones (at
        ``alpha_adj``, over ``family`` rows), which ``verdict`` and ``reason`` read.
        """
        import pandas as pd

        records = [
            {
                "metric": r.metric,
                "cohort_dimension": r.cohort_dimension,
                "cohort": r.cohort,
                "estimand": r.estimand,
                "n_control": r.result.n_control,
                "n_candidate": r.result.n_candidate,
                "control_mean": r.result.control_mean,
                "candidate_mean": r.result.candidate_mean,
                "effect": r.result.effect,
                "ci_low": r.result.ci_low,
                "ci_high": r.result.ci_high,
                "p_value": r.result.p_value,
                "ci_low_adj": r.adjusted.ci_low,
                "ci_high_adj": r.adjusted.ci_high,
                "adjusted_p_value": r.adjusted_p_value,
                "alpha_adj": r.adjusted.alpha,
                "family": r.family,
                "harm_direction": r.harm_direction,
                "tolerance": r.tolerance,
                "verdict": r.verdict,
                "reason": r.reason,
                "relative": r.result.relative,
                "alpha": r.result.alpha,
                "worst": r.worst,
                "method": r.result.method,
                "note": r.note,
            }
            for r in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=COLUMNS)

    def parity_frame(self) -> pd.DataFrame:
        """Selection-rate parity per selection metric, dimension and arm."""
        import pandas as pd

        records = []
        for (metric, dimension), arms in self.parity.items():
            for arm, parity in zip(("control", "candidate"), arms, strict=True):
                records.append(
                    {
                        "metric": metric,
                        "cohort_dimension": dimension,
                        "arm": arm,
                        "cohorts": len(parity.rates),
                        "parity_difference": parity.difference,
                        "parity_ratio": parity.ratio,
                        "four_fifths_violated": parity.four_fifths_violated,
                        "insufficient": parity.insufficient,
                    }
                )
        columns = [
            "metric", "cohort_dimension", "arm", "cohorts", "parity_difference", "parity_ratio",
            "four_fifths_violated", "insufficient",
        ]  # fmt: skip
        return pd.DataFrame.from_records(records, columns=columns)

    @property
    def harms(self) -> tuple[ReportRow, ...]:
        return tuple(r for r in self.rows if r.verdict == "harm")

    # --- text and HTML: the same lines and columns ---

    def _heading(self) -> str:
        kind = "always-valid" if self.sequential else "fixed-horizon (exploratory)"
        return (
            f"Flag {self.flag}: {len(self.specs)} metric(s), {self.family} rows, {kind}, "
            f"α = {self.alpha:g}"
        )

    def _legend(self) -> list[str]:
        m = self.family
        if m == 0:
            return []
        if self.sequential:
            used = (
                f"each row at α/{m} = {self.adjusted_alpha:.3g} (Bonferroni over the report's "
                f"{m} rows; adj. p = min(1, {m} × the p-value at that level))"
            )
        else:
            selected = sum(r.adjusted_p_value <= self.alpha for r in self.rows)
            used = (
                f"each row at {max(selected, 1)}·α/{m} = {self.adjusted_alpha:.3g} "
                f"(false-coverage adjusted, Benjamini-Yekutieli: Benjamini-Hochberg, fdr_bh, "
                f"selects {selected} of the {m} rows; adj. p: fdr_bh)"
            )
        return [
            f"interval used: {used}; every verdict reads it",
            "own interval: the row alone, at α (overall) or α/K (the K cohorts of a dimension)",
        ]

    def _notes(self) -> list[str]:
        return [f"{r.metric} {r.label}: {r.note}" for r in self.rows if r.note]

    def _parity_lines(self) -> list[str]:
        lines = []
        for (metric, dimension), arms in self.parity.items():
            texts = []
            for arm, parity in zip(("control", "candidate"), arms, strict=True):
                if parity.insufficient:
                    texts.append(f"{arm}: insufficient data")
                    continue
                flag = " — four-fifths rule violated" if parity.four_fifths_violated else ""
                texts.append(
                    f"{arm}: difference {_num(parity.difference)}, ratio {_num(parity.ratio)}{flag}"
                )
            lines.append(f"Selection-rate parity of {metric} by {dimension}: {'; '.join(texts)}")
        return lines

    def __str__(self) -> str:
        cells = [_cells(r) for r in self.rows]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(HEADERS)]

        def line(values: Sequence[str]) -> str:
            padded = [
                v.rjust(w) if right else v.ljust(w)
                for v, w, right in zip(values, widths, _RIGHT, strict=True)
            ]
            return "  ".join(padded).rstrip()

        out = [self._heading(), *self._legend()]
        if self.srm is not None:
            out.append(self.srm.line())
        out += ["", line(HEADERS), line(["-" * w for w in widths])]
        out += [line(c) for c in cells] or ["(no rows)"]
        notes = self._notes()
        if notes:
            out += ["", "notes:", *(f"  {n}" for n in notes)]
        parity = self._parity_lines()
        if parity:
            out += ["", *parity]
        return "\n".join(out)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        readings = ", ".join(f"{n} {v}" for v, n in counts.items())
        kind = "always-valid" if self.sequential else "fixed-horizon"
        srm = "" if self.srm is None or not self.srm.mismatch else ", SRM MISMATCH"
        return (
            f"<Report {self.flag!r}: {len(self.specs)} metric(s), {self.family} rows "
            f"({readings or 'none'}), {kind}, α = {self.alpha:g}{srm}; print() it for the table>"
        )

    def _repr_html_(self) -> str:
        e = html.escape
        parts = ['<div class="rollwise-report">', f"<h4>{e(self._heading())}</h4>"]
        parts += [f"<p>{e(text)}</p>" for text in self._legend()]
        if self.srm is not None:
            style = ' style="color:#a00;font-weight:bold"' if self.srm.mismatch else ""
            parts.append(f"<p{style}>{e(self.srm.line())}</p>")
        parts.append("<table>")
        parts.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADERS) + "</tr></thead>")
        parts.append("<tbody>")
        for r in self.rows:
            style = _ROW_STYLES.get(r.verdict, "")
            title = f' title="{e(r.note, quote=True)}"' if r.note else ""
            tds = "".join(
                f'<td style="text-align:right">{e(x)}</td>' if right else f"<td>{e(x)}</td>"
                for x, right in zip(_cells(r), _RIGHT, strict=True)
            )
            parts.append(f"<tr{style}{title}>{tds}</tr>")
        parts.append("</tbody></table>")
        notes = self._notes()
        if notes:
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
        parts += [f"<p>{e(text)}</p>" for text in self._parity_lines()]
        parts.append("</div>")
        return "\n".join(parts)

    def plot(self, metric: str | None = None, *, dimension: str | None = None) -> Figure:
        """The confidence sequence of ``metric`` (if a monitor was given) and a forest plot.

        The forest plot shows the metric's overall effect, the effects of the cohorts and their
        gap changes (of ``dimension``, or of every dimension), in the report's order, each with
        the interval its verdict reads and, thicker, its own interval. Returns the Figure.
        """
        from rollwise.analysis import plots

        if metric is None:
            if not self.specs:
                raise ValueError("plot: the report has no metrics")
            metric = next(iter(self.specs))
        if metric not in self.specs:
            raise ValueError(f"plot: no metric {metric!r} in the report")
        rows = [
            r
            for r in self.rows
            if r.metric == metric
            and (dimension is None or r.cohort_dimension in (dimension, OVERALL))
        ]
        spec = self.specs[metric]
        monitor = self.monitors.get(metric)
        return plots.report_figure(
            metric=metric,
            rows=[(r.label, r.adjusted, r.verdict) for r in rows],
            own=[r.result for r in rows],
            history=monitor.history if monitor is not None else None,
            harm_direction=spec.harm_direction,
            tolerance=spec.tolerance,
            title=f"{self.flag}: {metric}",
        )


def _adjust(
    pending: Sequence[_Pending],
    specs: Mapping[str, MetricSpec],
    alpha: float,
    sequential: bool,
    tuning: float,
) -> tuple[float, list[Comparison], list[float]]:
    """The adjusted level, every row read at it, and the adjusted p-values (module docstring)."""
    m = max(len(pending), 1)
    p_values = [item.result.p_value for item in pending]
    if sequential:
        level = alpha / m
    else:
        selected, bh = correct(p_values, alpha=alpha, method="fdr_bh")
        level = max(sum(selected), 1) * alpha / m
    adjusted = []
    for item in pending:
        if item.arms is None:  # a gap change: from its estimate, standard error and N
            adjusted.append(at_level(item.result, level, tuning=tuning))
            continue
        relative = specs[item.metric].relative
        again = compare(
            *item.arms, alpha=level, sequential=sequential, relative=relative, tuning=tuning
        )
        adjusted.append(again)
    if sequential:
        return level, adjusted, [min(1.0, m * r.p_value) for r in adjusted]
    return level, adjusted, bh


def _interval(result: Comparison) -> str:
    if result.insufficient:
        return "—"
    low = format_effect(result.ci_low, relative=result.relative)
    high = format_effect(result.ci_high, relative=result.relative)
    return f"[{low}, {high}]"


def _cells(row: ReportRow) -> list[str]:
    c = row.result
    effect = "—" if c.insufficient else format_effect(c.effect, relative=c.relative)
    return [
        row.metric, row.label + (" (worst)" if row.worst else ""), f"{c.n_control:,}",
        f"{c.n_candidate:,}", effect, _interval(row.adjusted), _interval(c),
        _p(row.adjusted_p_value), row.verdict, row.why,
    ]  # fmt: skip


HEADERS = [
    "metric", "cohort", "n control", "n candidate", "effect", "interval used", "own interval",
    "adj. p", "verdict", "reason",
]  # fmt: skip
"""The columns of ``str(report)`` and of its HTML table."""
_RIGHT = [False, False, True, True, True, True, True, True, False, False]

COLUMNS = [
    "metric", "cohort_dimension", "cohort", "estimand", "n_control", "n_candidate",
    "control_mean", "candidate_mean", "effect", "ci_low", "ci_high", "p_value", "ci_low_adj",
    "ci_high_adj", "adjusted_p_value", "alpha_adj", "family", "harm_direction", "tolerance",
    "verdict", "reason", "relative", "alpha", "worst", "method", "note",
]  # fmt: skip
"""The columns of ``Report.to_frame()``."""

_ROW_STYLES = {
    "harm": ' style="background-color:#f8d0d0;font-weight:bold"',
    "improvement": ' style="background-color:#d6f0d6"',
    "insufficient data": ' style="color:#888"',
}


def _srm_check(
    stats: Mapping[str, Mapping[Any, Arms]],
    weights: Sequence[float],
    counts: Sequence[int] | None,
    monitor: SequentialSRM | None,
) -> SRMCheck:
    if counts is None:
        first = next(iter(stats.values()), {})
        overall: Any = first.get(OVERALL)
        if overall is None:
            raise ValueError("weights: needs srm_counts or an 'overall' entry to count units")
        counts = [arm.n for arm in overall]
    if len(counts) != len(weights):
        raise ValueError("srm_counts and weights: need one entry per arm")
    return SRMCheck(
        counts=tuple(int(c) for c in counts),
        weights=tuple(float(w) for w in weights),
        p_value=srm_chi2(counts, weights),
        sequential_p_value=None if monitor is None else monitor.p_value,
    )

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

Rows: each metric's overall effect at α; per cohort dimension (K cohorts) each cohort's effect
and its gap change against the rest at α/K (``fairness.cohort_effects``). Across the whole
report (metrics × cohorts × effects and gaps, m tests, insufficient rows included with p = 1
so that m stays fixed across looks) the p-values are adjusted with Holm for the always-valid
family (Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scand. J. Statist.
6(2), 1979: p̃_(i) = max_{j≤i} min(1, (m − j + 1) p_(j)); it controls the family-wise error
for any valid p-values, always-valid ones at any stopping time included), or with
Benjamini & Hochberg ("Controlling the False Discovery Rate", JRSS B 57(1), 1995, step-up
p̃_(i) = min_{j≥i} min(1, m p_(j) / j)) for an exploratory fixed-horizon report; both through
``fixed_horizon.correct`` (statsmodels ``multipletests``, ``method=`` explicit). A row's verdict
comes from its interval (``compare.verdict``); ``harm`` and ``improvement`` also need the
adjusted p-value below α, so that those claims are controlled across the report (a row
significant only at its own level reads ``no harm shown yet`` with a note saying so).
"""

from __future__ import annotations

import html
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from rollwise.analysis.compare import Comparison, Verdict, compare, verdict
from rollwise.analysis.fairness import CohortEffects, SelectionParity, cohort_effects, parity_change
from rollwise.analysis.fixed_horizon import correct
from rollwise.analysis.sequential import SequentialMonitor
from rollwise.analysis.srm import SRM_THRESHOLD, SequentialSRM, srm_chi2
from rollwise.analysis.suffstats import Kind, SufficientStats, requires_kind

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["OVERALL", "CohortKey", "MetricSpec", "Report", "ReportRow", "SRMCheck"]

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
    """One estimate of the report (``estimand`` is ``"effect"`` or ``"gap change"``)."""

    metric: str
    cohort_dimension: str
    cohort: Hashable
    estimand: Literal["effect", "gap change"]
    result: Comparison
    adjusted_p_value: float
    verdict: Verdict
    worst: bool = False
    note: str | None = None


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
    """One flag's results; build it with ``Report.from_stats``."""

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
    def correction(self) -> Literal["holm", "fdr_bh"]:
        """Holm for the always-valid family, Benjamini-Hochberg for a fixed-horizon report."""
        return "holm" if self.sequential else "fdr_bh"

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
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
        missing = [m for m in stats if m not in metric_specs]
        if missing:
            raise ValueError(f"metric_specs: no spec for {missing} (kind and harm direction)")
        pending: list[tuple[str, str, Hashable, Literal["effect", "gap change"], Comparison]] = []
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
                pending.append((metric, OVERALL, "all", "effect", result))
            for dimension, by_cohort in dimensions.items():
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
                    pending.append((metric, dimension, cohort, "effect", result))
                for cohort, result in analysis.gaps.items():
                    pending.append((metric, dimension, cohort, "gap change", result))
                if spec.selection:
                    parity[(metric, dimension)] = parity_change(by_cohort)
        method: Literal["holm", "fdr_bh"] = "holm" if sequential else "fdr_bh"
        _, adjusted = correct([r[4].p_value for r in pending], alpha=alpha, method=method)
        rows = []
        for (metric, dimension, cohort, estimand, result), adj in zip(
            pending, adjusted, strict=True
        ):
            spec = metric_specs[metric]
            tolerance = 0.0 if estimand == "gap change" and spec.relative else spec.tolerance
            reading = verdict(result, harm_direction=spec.harm_direction, tolerance=tolerance)
            note = result.note
            if reading in ("harm", "improvement") and not adj < alpha:
                note = (
                    f"{reading} at this row's level, not after {method} across {len(pending)} tests"
                )
                # the interval alone still excludes harm beyond a positive tolerance
                improved = reading == "improvement" and tolerance > 0
                reading = "non-inferior" if improved else "no harm shown yet"
            row = ReportRow(
                metric=metric, cohort_dimension=dimension, cohort=cohort, estimand=estimand,
                result=result, adjusted_p_value=adj, verdict=reading,
                worst=(metric, dimension, cohort, estimand) in worst, note=note,
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
        """One tidy row per estimate (overall, per-cohort effect, per-cohort gap change)."""
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
                "adjusted_p_value": r.adjusted_p_value,
                "verdict": r.verdict,
                "relative": r.result.relative,
                "alpha": r.result.alpha,
                "worst": r.worst,
                "method": r.result.method,
                "note": r.note,
            }
            for r in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=_COLUMNS)

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

    def _repr_html_(self) -> str:
        e = html.escape
        kind = "always-valid" if self.sequential else "fixed-horizon (exploratory)"
        head = (
            f"<h4>Flag <code>{e(self.flag)}</code>: {len(self.specs)} metric(s), {kind}, "
            f"α = {self.alpha:g}, {e(self.correction)} across {len(self.rows)} tests</h4>"
        )
        parts = ['<div class="rollwise-report">', head]
        if self.srm is not None:
            style = ' style="color:#a00;font-weight:bold"' if self.srm.mismatch else ""
            parts.append(f"<p{style}>{e(self.srm.line())}</p>")
        headers = [
            "metric", "dimension", "cohort", "estimand", "n control", "n candidate", "control",
            "candidate", "effect", "interval", "p", "adjusted p", "verdict",
        ]  # fmt: skip
        parts.append("<table>")
        parts.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr></thead>")
        parts.append("<tbody>")
        for r in self.rows:
            c = r.result
            suffix = " %" if c.relative else ""
            scale = 100.0 if c.relative else 1.0
            effect = f"{_num(c.effect * scale)}{suffix}"
            interval = "—" if c.insufficient else (
                f"[{_num(c.ci_low * scale)}, {_num(c.ci_high * scale)}]{suffix}"
            )  # fmt: skip
            cells = [
                r.metric, r.cohort_dimension, str(r.cohort) + (" (worst)" if r.worst else ""),
                r.estimand, f"{c.n_control:,}", f"{c.n_candidate:,}", _num(c.control_mean),
                _num(c.candidate_mean), effect, interval, _p(c.p_value), _p(r.adjusted_p_value),
                r.verdict,
            ]  # fmt: skip
            style = _ROW_STYLES.get(r.verdict, "")
            title = f' title="{e(r.note, quote=True)}"' if r.note else ""
            parts.append(
                f"<tr{style}{title}>" + "".join(f"<td>{e(x)}</td>" for x in cells) + "</tr>"
            )
        parts.append("</tbody></table>")
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
            parts.append(
                f"<p>Selection-rate parity of {e(metric)} by {e(dimension)}: "
                f"{e('; '.join(texts))}</p>"
            )
        parts.append("</div>")
        return "\n".join(parts)

    def plot(self, metric: str | None = None, *, dimension: str | None = None) -> Figure:
        """The confidence sequence of ``metric`` (if a monitor was given) and a forest plot.

        The forest plot shows the metric's overall effect, the effects of the cohorts and their
        gap changes (of ``dimension``, or of every dimension). Returns the matplotlib Figure.
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
            rows=[(_label(r), r.result, r.verdict) for r in rows],
            history=monitor.history if monitor is not None else None,
            harm_direction=spec.harm_direction,
            title=f"{self.flag}: {metric}",
        )


def _label(row: ReportRow) -> str:
    if row.cohort_dimension == OVERALL:
        return "overall"
    prefix = "gap " if row.estimand == "gap change" else ""
    return f"{prefix}{row.cohort_dimension}={row.cohort}"


_COLUMNS = [
    "metric", "cohort_dimension", "cohort", "estimand", "n_control", "n_candidate",
    "control_mean", "candidate_mean", "effect", "ci_low", "ci_high", "p_value",
    "adjusted_p_value", "verdict", "relative", "alpha", "worst", "method", "note",
]  # fmt: skip

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

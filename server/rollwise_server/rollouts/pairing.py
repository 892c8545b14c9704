"""What a shadow stage's data shows: the candidate beside the served model on the same units.

Each shadow run (``client.shadow``) logs a ``live`` prediction of the served variant and a
``shadow`` prediction of the candidate under one ``run`` id. Here they are paired by run, since
the rollout started and older than its ``outcome_delay``: how often they agree, how close
their scores are, the candidate's latency and failures; and, with each unit's outcome on a
catalogue metric (joined by unit, within the attribution window of the unit's first paired
run), a score per unit and model whose paired difference is tested with the always-valid
paired test of ``rollwise.analysis`` (``compare_paired``), overall and in each cohort.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rollwise.analysis.compare import verdict, verdict_reason
from rollwise.analysis.paired import PairedStats, compare_paired
from rollwise.analysis.reduce import band_label
from rollwise_server.rollouts.decide import GuardrailFinding, ShadowEvidence
from rollwise_server.rollouts.evidence import bucket_of, epoch, finite, iso
from rollwise_server.rollouts.plan import RolloutPlan, ScoreCheck, ShadowCriteria
from rollwise_server.storage.base import Store

__all__ = ["percentile", "score_findings", "score_of", "shadow_evidence"]

_TRUE = frozenset({"true", "1", "yes"})


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0.99: p99) of ``values``; ``None`` without any."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def score_of(
    check: ScoreCheck, label: str | None, score: float | None, truth: float
) -> float | None:
    """A unit's score under ``check`` for one model's prediction, or ``None`` when the
    prediction cannot be scored by the rule (a label where a number is needed)."""
    if check.rule == "match":
        if label is not None:
            predicted = (label == check.positive) if check.positive else label.lower() in _TRUE
        elif score is not None:
            predicted = score >= 0.5  # a probability: the positive class from one half up
        else:
            return None
        return 1.0 if predicted == (truth > 0) else 0.0
    if score is None:
        if check.rule != "brier" or label is None:
            return None
        score = (
            1.0
            if ((label == check.positive) if check.positive else label.lower() in _TRUE)
            else 0.0
        )
    error = score - truth
    return abs(error) if check.rule == "absolute_error" else error * error


def _cohort(check: ScoreCheck, dim: str, attributes: Mapping[str, Any]) -> str | None:
    value = attributes.get(dim)
    if dim in check.bands:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return None
        edges = check.bands[dim]
        return band_label(edges, bisect.bisect_right(edges, float(value)))
    if isinstance(value, bool):  # JSON's spelling, as the reductions and declared values have it
        return "true" if value else "false"
    return None if value is None else str(value)


def _runs(
    store: Store, env: str, flag: str, plan: RolloutPlan, since: str, until: str
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Each run's predictions by role: the served control's ``live`` one and the candidate's
    ``shadow`` one (predictions of other variants belong to no comparison of this plan)."""
    rows = (
        store.reader()
        .execute(
            "SELECT run, role, unit_type, unit, label, score, latency_ms, status, attrs, ts"
            " FROM predictions WHERE env = ? AND flag = ? AND ts >= ? AND ts < ?"
            " AND ((role = 'live' AND variant = ?) OR (role = 'shadow' AND variant = ?))",
            (env, flag, since, until, plan.control, plan.candidate),
        )
        .fetchall()
    )
    runs: dict[str, dict[str, tuple[Any, ...]]] = {}
    for run, role, *rest in rows:
        runs.setdefault(run, {})[role] = tuple(rest)
    return runs


def _truths(
    store: Store, env: str, metric: str, kind: str, first: Mapping[tuple[str, str], float],
    since: str, window: float,
) -> dict[tuple[str, str], float]:  # fmt: skip
    """Each paired unit's outcome on ``metric`` within ``window`` of its first paired run: a
    binary truth is 1 when any value is above 0 (else 0, as the reductions read it); a mean
    truth is the mean of its values (units without one have none)."""
    rows = (
        store.reader()
        .execute(
            "SELECT unit_type, unit, ts, value FROM outcomes"
            " WHERE env = ? AND metric = ? AND ts >= ?",
            (env, metric, since),
        )
        .fetchall()
    )
    values: dict[tuple[str, str], list[float]] = {}
    for unit_type, unit, ts, value in rows:
        key = (unit_type, unit)
        start = first.get(key)
        if start is not None and start <= epoch(ts) < start + window:
            values.setdefault(key, []).append(float(value))
    if kind == "binary":
        return {key: 1.0 if any(v > 0 for v in values.get(key, ())) else 0.0 for key in first}
    return {key: sum(v) / len(v) for key, v in values.items()}


def score_findings(
    check: ScoreCheck, pairs: Iterable[tuple[Mapping[str, Any], float, float]], alpha: float,
    tuning: float, min_units: int,
) -> list[GuardrailFinding]:  # fmt: skip
    """The check overall (``alpha`` shared with its cohort dimensions) and in each cohort of
    each dimension (Bonferroni over the dimension's fixed family, as a guardrail's)."""
    pairs = list(pairs)
    guardrail = check.as_guardrail()
    share = alpha / (1 + len(check.cohorts))
    name = f"{check.metric} ({check.rule})"
    scopes: list[tuple[str, list[tuple[float, float]], float]] = [
        ("overall", [(live, shadow) for _, live, shadow in pairs], share)
    ]
    for dim in check.cohorts:
        labelled: dict[str | None, list[tuple[float, float]]] = {}
        for attributes, live, shadow in pairs:
            labelled.setdefault(_cohort(check, dim, attributes), []).append((live, shadow))
        bucket = bucket_of(guardrail, dim, {c: len(v) for c, v in labelled.items()})
        grouped: dict[str, list[tuple[float, float]]] = {}
        for label, values in labelled.items():
            grouped.setdefault(bucket(label), []).extend(values)
        family = max(guardrail.family(dim), len(grouped))
        scopes += [(f"{dim}={c}", v, share / family) for c, v in sorted(grouped.items())]
    out = []
    for scope, values, level in scopes:
        stats = PairedStats.from_values([v[0] for v in values], [v[1] for v in values])
        result = compare_paired(stats, alpha=level, tuning=tuning)
        reading: str = verdict(result, harm_direction=check.harm, tolerance=check.tolerance)
        why = verdict_reason(result, harm_direction=check.harm, tolerance=check.tolerance)
        effect, low, high = result.effect, result.ci_low, result.ci_high
        if result.insufficient and stats.n >= min_units and stats.difference_variance == 0:
            reading, why = _constant(stats, check)
            effect = low = high = stats.difference  # known exactly: the same on every unit
        elif stats.n < min_units:
            reading = "insufficient data"
            why = f"insufficient data: {stats.n} paired units, fewer than min_units_for_harm"
        out.append(GuardrailFinding(
            metric=name, scope=scope, effect=finite(effect), ci_low=finite(low),
            ci_high=finite(high), p_value=result.p_value, verdict=reading,
            n_control=stats.n, n_candidate=stats.n, alpha=level, tolerance=check.tolerance,
            reason=why,
        ))  # fmt: skip
    return out


def _constant(stats: PairedStats, check: ScoreCheck) -> tuple[str, str]:
    """The reading of a difference that is the same on every unit (no variance, so no
    interval): it is known exactly, and judged against the tolerance as it is."""
    if stats.abs_total == 0:
        return "non-inferior", "non-inferior: the two models scored every unit alike"
    effect = stats.difference  # shadow - live, the same on every unit
    worse = -effect if check.harm == "decrease" else effect
    if worse > check.tolerance:
        return "harm", (f"harm: the candidate scored {effect:+.4g} on every unit, beyond the "
                        f"tolerance {check.tolerance:g}")  # fmt: skip
    if worse < 0:
        return "improvement", f"improvement: the candidate scored {effect:+.4g} on every unit"
    return "non-inferior", (f"non-inferior: the candidate scored {effect:+.4g} on every unit, "
                            "within the tolerance")  # fmt: skip


def shadow_evidence(
    store: Store, env: str, flag: str, plan: RolloutPlan, criteria: ShadowCriteria,
    since_ts: float, until_ts: float,
) -> ShadowEvidence:  # fmt: skip
    """The shadow stage's reading of the runs logged in ``[since_ts, until_ts)``."""
    since, until = iso(since_ts), iso(until_ts)
    runs = _runs(store, env, flag, plan, since, until)
    started = errors = timeouts = 0
    agree = labelled = 0
    live_ms: list[float] = []
    shadow_ms: list[float] = []
    scored: list[tuple[float, float]] = []
    paired: list[tuple[tuple[str, str], float, Mapping[str, Any], tuple[Any, ...], tuple[Any, ...]]]
    paired = []
    for roles in runs.values():
        shadow, live = roles.get("shadow"), roles.get("live")
        if shadow is None:
            continue  # a live prediction without its candidate: not a shadow run of this plan
        started += 1
        status = shadow[5]
        errors += status == "error"
        timeouts += status == "timeout"
        if status in ("ok", "timeout"):
            shadow_ms.append(float(shadow[4]))  # a timeout's latency is its budget, at least
        if live is None or status != "ok" or live[5] != "ok":
            continue
        live_ms.append(float(live[4]))
        if live[2] is not None and shadow[2] is not None:
            labelled += 1
            agree += live[2] == shadow[2]
        if live[3] is not None and shadow[3] is not None:
            scored.append((float(live[3]), float(shadow[3])))
        attributes = json.loads(live[6]) if isinstance(live[6], str) else dict(live[6] or {})
        paired.append(((live[0], live[1]), epoch(live[7]), attributes, live, shadow))
    first: dict[tuple[str, str], tuple[float, Mapping[str, Any], tuple[Any, ...], tuple[Any, ...]]]
    first = {}
    for unit, ts, attributes, live, shadow in paired:
        if unit not in first or ts < first[unit][0]:
            first[unit] = (ts, attributes, live, shadow)  # a unit counts once: its first run
    correlation = mad = None
    if len(scored) >= 2:
        stats = PairedStats.from_values([a for a, _ in scored], [b for _, b in scored])
        mad = stats.mean_absolute_difference
        correlation = stats.correlation if math.isfinite(stats.correlation) else None
    alpha = plan.alpha / max(len(criteria.scores), 1)
    findings: list[GuardrailFinding] = []
    for check in criteria.scores:
        truths = _truths(
            store, env, check.metric, check.kind, {u: v[0] for u, v in first.items()}, since,
            plan.attribution_window,
        )  # fmt: skip
        pairs = []
        for unit, (_, attributes, live, shadow) in first.items():
            if unit not in truths:
                continue
            a = score_of(check, live[2], live[3], truths[unit])
            b = score_of(check, shadow[2], shadow[3], truths[unit])
            if a is not None and b is not None:
                pairs.append((attributes, a, b))
        findings += score_findings(check, pairs, alpha, plan.tuning, plan.min_units_for_harm)
    findings.sort(key=lambda f: (f.verdict != "harm", f.p_value))
    return ShadowEvidence(
        runs=started, paired_units=len(first), errors=errors, timeouts=timeouts,
        agreement=agree / labelled if labelled else None, correlation=correlation,
        mean_abs_diff=mad, latency_p99_ms=percentile(shadow_ms, 0.99),
        live_latency_p99_ms=percentile(live_ms, 0.99), findings=tuple(findings),
    )  # fmt: skip

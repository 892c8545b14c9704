"""What the stored data shows about a running rollout: guardrails, cohorts, sample ratio.

The exposures and outcomes since the rollout started are reduced to sufficient statistics in
the database, incrementally (``rollouts/tally.py``: the same SQL as ``rollwise.analysis.reduce``
over the units that changed since the last look), then compared with the always-valid tests
of ``rollwise.analysis``. The family of tests is corrected with Bonferroni: alpha is split over
the guardrails, and within a guardrail's cohort dimension over its cohorts (``cohort_effects``),
so rolling back on any single reading keeps the false-rollback rate at most alpha. With several
candidates each is compared with the control, and alpha is first divided by their number (k,
fixed by the plan: a dropped candidate's share is not handed on), so that the chance of
dropping or rolling back any candidate that does no harm stays at most alpha. The sample ratio
is tested over all arms of the split at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from rollwise.analysis.compare import Comparison, compare, verdict, verdict_reason
from rollwise.analysis.fairness import cohort_effects
from rollwise.analysis.srm import srm_log_bayes_factor
from rollwise.analysis.suffstats import SufficientStats
from rollwise_server.rollouts.decide import Evidence, GuardrailFinding
from rollwise_server.rollouts.plan import DEFAULT_TOP, Guardrail, RolloutPlan
from rollwise_server.rollouts.tally import Look, Snapshot, crossing_slot, look
from rollwise_server.rollouts.weights import arm_weights, dropped_of
from rollwise_server.storage.base import Store

__all__ = [
    "OTHER",
    "assess",
    "bucket_of",
    "buckets",
    "cohort_findings",
    "crossing_buckets",
    "crossing_findings",
    "epoch",
    "finite",
    "gather",
    "iso",
]


def iso(ts: float) -> str:
    """Epoch seconds as the stored event time format (RFC 3339 UTC, milliseconds)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch(text: str) -> float:
    """A stored RFC 3339 time (``iso``'s, or an audit entry's) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


OTHER = "(other)"
"""The cohort of every value that is not declared (or not among the top K), and of units
without the attribute."""


def finite(x: float) -> float:
    """``x``, or the largest JSON number of its sign for an infinity (JSON has none)."""
    return x if math.isfinite(x) else (1e308 if x > 0 else -1e308)


def _finding(
    metric: str, scope: str, result: Comparison, tolerance: float, harm: str, enough: bool,
    family: int = 1, candidate: str | None = None,
) -> GuardrailFinding:  # fmt: skip
    """``enough``: each arm of the scope has ``min_units_for_harm`` units; without them the
    normal approximation behind the tests is not trusted and the reading is insufficient."""
    reading = verdict(result, harm_direction=harm, tolerance=tolerance)  # type: ignore[arg-type]
    why = verdict_reason(result, harm_direction=harm, tolerance=tolerance)  # type: ignore[arg-type]
    if not enough:
        reading = "insufficient data"
        why = (
            f"insufficient data: {min(result.n_control, result.n_candidate)} units in the "
            "smaller arm, fewer than min_units_for_harm"
        )

    return GuardrailFinding(
        metric=metric, scope=scope, effect=finite(result.effect), ci_low=finite(result.ci_low),
        ci_high=finite(result.ci_high), p_value=result.p_value, verdict=reading,
        n_control=result.n_control, n_candidate=result.n_candidate, alpha=result.alpha,
        family=family, tolerance=tolerance, reason=why, candidate=candidate,
    )  # fmt: skip


Cells = Mapping[str | None, tuple[SufficientStats, SufficientStats]]


def bucket_of(guardrail: Guardrail, dim: str, units: Mapping[str | None, int]) -> Any:
    """How ``dim``'s labels map to its declared cohorts: bands (``missing`` for no value) as
    they are; declared values, or the top K by ``units``, and ``(other)`` for the rest."""
    if dim in guardrail.bands:
        return lambda label: "missing" if label is None else label
    if dim in guardrail.values:
        keep = set(guardrail.values[dim])
    else:
        named = sorted((c for c in units if c is not None and c != "missing"),
                       key=lambda c: (-units[c], c))  # fmt: skip
        keep = set(named[: guardrail.top.get(dim, DEFAULT_TOP)])
    return lambda label: label if label in keep else OTHER


def _merge(out: dict[str, tuple[Any, Any]], label: str, arms: tuple[Any, Any]) -> None:
    if label in out:
        arms = (out[label][0] + arms[0], out[label][1] + arms[1])
    out[label] = arms


def buckets(guardrail: Guardrail, dim: str, cells: Cells) -> dict[str, tuple[Any, Any]]:
    """The tally's cells of ``dim`` in the guardrail's declared cohorts (the fixed family):
    bands (and ``missing``) as they are; declared values, or the top K by units, and
    ``(other)`` for the rest, summed (sufficient statistics add)."""
    bucket = bucket_of(guardrail, dim, {c: a[0].n + a[1].n for c, a in cells.items()})
    out: dict[str, tuple[Any, Any]] = {}
    for cohort, arms in cells.items():
        _merge(out, bucket(cohort), arms)
    return out


def crossing_buckets(
    guardrail: Guardrail, crossing: tuple[str, str], cells: Cells
) -> dict[str, tuple[Any, Any]]:
    """A crossing's cells (labelled ``["band", "value"]`` by the reduction) in the declared
    cohorts of each attribute, named ``amount=[1000, 5000) & country=DE``."""
    parts: list[tuple[str, str, tuple[Any, Any]]] = []
    totals: tuple[dict[str | None, int], dict[str | None, int]] = ({}, {})
    for label, arms in cells.items():
        if label is None:
            continue  # units exposed to both variants: in neither arm
        first, second = json.loads(label)
        parts.append((first, second, arms))
        for side, value in enumerate((first, second)):
            totals[side][value] = totals[side].get(value, 0) + arms[0].n + arms[1].n
    one = bucket_of(guardrail, crossing[0], totals[0])
    two = bucket_of(guardrail, crossing[1], totals[1])
    out: dict[str, tuple[Any, Any]] = {}
    for first, second, arms in parts:
        _merge(out, f"{crossing[0]}={one(first)} & {crossing[1]}={two(second)}", arms)
    return out


def _family_findings(
    guardrail: Guardrail, cohorts: Mapping[str, tuple[Any, Any]], family: int, *,
    alpha: float, tuning: float, min_units: int,
) -> list[GuardrailFinding]:  # fmt: skip
    """(a) and (b) of ``cohort_findings`` for cohorts named by their scope."""
    if not cohorts:
        return []
    effects = cohort_effects(
        cohorts, alpha=alpha, harm_direction=guardrail.harm, relative=guardrail.relative,
        tuning=tuning, family=max(family, len(cohorts)),
    )  # fmt: skip
    out = []
    for scope, comparison in effects.effects.items():
        control, candidate = cohorts[scope]
        enough = min(control.n, candidate.n) >= min_units
        effect = _finding(guardrail.metric, scope, comparison, guardrail.tolerance,
                          guardrail.harm, enough, effects.k)  # fmt: skip
        out.append(effect)
        gap = _finding(guardrail.metric, f"gap:{scope}", effects.gaps[scope],
                       guardrail.gap_limit, guardrail.harm, enough, effects.k)  # fmt: skip
        worse_off = verdict(comparison, harm_direction=guardrail.harm, tolerance=0.0) == "harm"
        if gap.verdict == "harm" and not worse_off:  # the rest gained more: no harm to it
            gap = attrs.evolve(
                gap, verdict="no harm shown yet",
                reason=f"no harm shown yet: its gap widened beyond the gap tolerance, but "
                f"the cohort is not shown worse off ({effect.reason})",
            )  # fmt: skip
        out.append(gap)
    return out


def cohort_findings(
    guardrail: Guardrail, dim: str, cells: Cells, *, alpha: float, tuning: float, min_units: int
) -> list[GuardrailFinding]:
    """Harm to a cohort of ``dim``, at ``alpha`` for the whole dimension (alpha/K a cohort, K
    fixed by the plan): (a) ``dim=c``: the cohort is worse off under the candidate by more than
    the tolerance; (b) ``gap:dim=c``: its gap to the rest widens by more than the gap tolerance
    *and* it is worse off at all (its interval entirely on the harmful side of 0). Both on the
    guardrail's scale (``relative``: a uniform relative change is no gap) and direction."""
    grouped = {f"{dim}={c}": arms for c, arms in buckets(guardrail, dim, cells).items()}
    return _family_findings(
        guardrail, grouped, guardrail.family(dim), alpha=alpha, tuning=tuning,
        min_units=min_units,
    )  # fmt: skip


def crossing_findings(
    guardrail: Guardrail, crossing: tuple[str, str], cells: Cells, *, alpha: float,
    tuning: float, min_units: int,
) -> list[GuardrailFinding]:  # fmt: skip
    """``cohort_findings`` for the cells of a crossing (K: the product of the two families;
    ``min_units``: the guardrail's ``min_units_per_cell`` when it sets one)."""
    return _family_findings(
        guardrail, crossing_buckets(guardrail, crossing, cells),
        guardrail.crossing_family(crossing), alpha=alpha, tuning=tuning,
        min_units=guardrail.min_units_per_cell or min_units,
    )  # fmt: skip


def _arms(by: Any, control: str, candidate: str) -> Cells:
    """Each cohort of a reduction: (control, candidate) statistics."""
    return {c: (by.stats(control, c), by.stats(candidate, c)) for c in by.cohorts}


def _named(findings: list[GuardrailFinding], candidate: str | None) -> list[GuardrailFinding]:
    if candidate is None:
        return findings
    return [attrs.evolve(f, candidate=candidate) for f in findings]


def gather(
    store: Store, env: str, flag: str, plan: RolloutPlan, state: Mapping[str, Any], now: float,
    snapshot: Snapshot | None = None,
) -> tuple[Evidence, dict[str, Any]]:  # fmt: skip
    """Evidence at this look, and the state fields to keep for the next one (SRM);
    ``snapshot``: the round's view of the event tables, shared by its rollouts."""
    since = iso(float(state["started_at"]))
    shown = look(
        store, plan, env, flag, since, iso(now - plan.outcome_delay),
        min_version=int(state.get("stage_flag_version", 0)), snapshot=snapshot,
    )  # fmt: skip
    return assess(shown, plan, state, now)


def assess(
    shown: Look, plan: RolloutPlan, state: Mapping[str, Any], now: float
) -> tuple[Evidence, dict[str, Any]]:
    """``gather``'s evidence from one look at the tally: every surviving candidate against
    the control, and the sample ratio of the stage's split."""
    units = next(iter(shown.results.values())).units_by_variant()
    dropped = dropped_of(state)
    surviving = [c for c in plan.candidates if c not in dropped]
    units_control = units.get(plan.control, 0)
    units_candidate = min((units.get(c, 0) for c in surviving), default=0)
    # Bonferroni: over the plan's candidates (k fixed by the plan), then its guardrails
    alpha = plan.alpha / len(plan.candidates) / max(len(plan.guardrails), 1)
    findings: list[GuardrailFinding] = []
    for candidate in surviving:
        named = candidate if plan.multi else None
        findings += _named(_guardrail_findings(shown, plan, candidate, alpha), named)
    findings.sort(key=lambda f: (f.verdict != "harm", f.p_value))
    srm_p, keep = _srm(shown.version_units, plan, state)
    evidence = Evidence(
        units_control=units_control, units_candidate=units_candidate, findings=tuple(findings),
        srm_p_value=srm_p, now=now,
    )  # fmt: skip
    if plan.multi:
        evidence = attrs.evolve(
            evidence, units={v: units.get(v, 0) for v in (plan.control, *plan.candidates)},
            surviving=tuple(surviving),
            correction=f"Bonferroni: alpha {plan.alpha:g} / {len(plan.candidates)} candidates, "
            "then over guardrails, scopes and cohorts",
        )  # fmt: skip
    return evidence, keep


def _guardrail_findings(
    shown: Look, plan: RolloutPlan, candidate: str, alpha: float
) -> list[GuardrailFinding]:
    """Every guardrail's findings for ``candidate`` against the control, overall, by cohort
    and by crossing, at ``alpha`` per guardrail."""
    findings: list[GuardrailFinding] = []
    for index, guardrail in enumerate(plan.guardrails):
        overall = shown.results[(index, None)]
        summed = overall.overall()
        control = summed.get(plan.control, overall.stats(plan.control))
        treated = summed.get(candidate, overall.stats(candidate))
        dims = guardrail.cohorts
        share = alpha / (1 + len(dims) + len(guardrail.crossings))  # overall, dims, crossings
        result = compare(
            control, treated, alpha=share, relative=guardrail.relative, tuning=plan.tuning
        )
        enough = min(control.n, treated.n) >= plan.min_units_for_harm
        findings.append(
            _finding(
                guardrail.metric, "overall", result, guardrail.tolerance, guardrail.harm, enough
            )
        )
        tuning, least = plan.tuning, plan.min_units_for_harm
        for dim in dims:
            cells = _arms(shown.results[(index, dim)], plan.control, candidate)
            findings += cohort_findings(
                guardrail, dim, cells, alpha=share, tuning=tuning, min_units=least
            )
        for crossing in guardrail.crossings:
            cells = _arms(shown.results[(index, crossing_slot(crossing))], plan.control, candidate)
            findings += crossing_findings(
                guardrail, crossing, cells, alpha=share, tuning=tuning, min_units=least
            )
    return findings


def _srm(
    version_units: Mapping[int, Mapping[str, int]], plan: RolloutPlan, state: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """The sequential SRM p-value of the current stage (running minimum kept in the state)."""
    stage = int(state.get("stage", 1))  # counted from 1
    share = plan.stages[stage - 1].share
    if plan.multi:
        return _srm_arms(version_units, plan, state, stage, share)
    if not plan.srm or share >= 1.0 or share <= 0.0:  # 0: a shadow stage splits nothing
        return 1.0, {}
    # only exposures made with this stage's weights: SDKs pick a new version up a little later
    counts = version_units.get(int(state.get("stage_flag_version", 0)), {})
    control, candidate = counts.get(plan.control, 0), counts.get(plan.candidate, 0)
    log_bf = srm_log_bayes_factor([candidate, control], [share, 1.0 - share])
    p_now = 0.0 if log_bf == math.inf else (min(1.0, math.exp(-log_bf)) if log_bf > 0 else 1.0)
    previous = state.get("srm")
    running = p_now
    if isinstance(previous, Mapping) and previous.get("stage") == stage:
        running = min(float(previous.get("p", 1.0)), p_now)
    return running, {"srm": {"stage": stage, "p": running, "counts": [candidate, control]}}


def _srm_arms(
    version_units: Mapping[int, Mapping[str, int]], plan: RolloutPlan, state: Mapping[str, Any],
    stage: int, share: float,
) -> tuple[float, dict[str, Any]]:  # fmt: skip
    """The sequential SRM test over every arm of a split with several candidates, against
    the weights of the flag version the stage (or its last drop) wrote: a chi-square-like
    test of all arms at once, as ``compare_arms`` does (a dropped candidate's weight is 0, so
    a unit served it under that version is itself a mismatch)."""
    weights = arm_weights(plan, share, dropped_of(state))
    if not plan.srm or share <= 0.0 or sum(1 for w in weights.values() if w > 0) < 2:
        return 1.0, {}
    version = int(state.get("stage_flag_version", 0))
    counts = version_units.get(version, {})
    arms = [plan.control, *plan.candidates]
    observed = [counts.get(v, 0) for v in arms]
    log_bf = srm_log_bayes_factor(observed, [weights[v] for v in arms])
    p_now = 0.0 if log_bf == math.inf else (min(1.0, math.exp(-log_bf)) if log_bf > 0 else 1.0)
    previous = state.get("srm")
    running = p_now
    if (
        isinstance(previous, Mapping) and previous.get("stage") == stage
        and previous.get("version") == version
    ):  # fmt: skip
        running = min(float(previous.get("p", 1.0)), p_now)
    return running, {"srm": {"stage": stage, "version": version, "p": running,
                             "counts": observed, "arms": arms}}  # fmt: skip

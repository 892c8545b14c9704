"""What the stored data shows about a running rollout: guardrails, cohorts, sample ratio.

The exposures and outcomes since the rollout started are reduced to sufficient statistics in
the database, incrementally (``rollouts/tally.py``: the same SQL as ``rollwise.analysis.reduce``
over the units that changed since the last look), then compared with the always-valid tests
of ``rollwise.analysis``. The family of tests is corrected with Bonferroni: alpha is split over
the guardrails, and within a guardrail's cohort dimension over its cohorts (``cohort_effects``),
so rolling back on any single reading keeps the false-rollback rate at most alpha.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rollwise.analysis.compare import Comparison, compare, verdict
from rollwise.analysis.fairness import cohort_effects
from rollwise.analysis.srm import srm_log_bayes_factor
from rollwise_server.rollouts.decide import Evidence, GuardrailFinding
from rollwise_server.rollouts.plan import Guardrail, RolloutPlan
from rollwise_server.rollouts.tally import Snapshot, look
from rollwise_server.storage.base import Store

__all__ = ["gather", "iso"]


def iso(ts: float) -> str:
    """Epoch seconds as the stored event time format (RFC 3339 UTC, milliseconds)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _finding(
    metric: str, scope: str, result: Comparison, guardrail: Guardrail, enough: bool = True
) -> GuardrailFinding:
    """``enough``: each arm of the scope has ``min_units_for_harm`` units; without them the
    normal approximation behind the tests is not trusted and the reading is insufficient."""
    reading = verdict(result, harm_direction=guardrail.harm, tolerance=guardrail.tolerance)
    if not enough:
        reading = "insufficient data"

    def finite(x: float) -> float:
        return x if math.isfinite(x) else (1e308 if x > 0 else -1e308)

    return GuardrailFinding(
        metric=metric, scope=scope, effect=finite(result.effect), ci_low=finite(result.ci_low),
        ci_high=finite(result.ci_high), p_value=result.p_value, verdict=reading,
        n_control=result.n_control, n_candidate=result.n_candidate,
    )  # fmt: skip


def _gap_finding(
    metric: str, scope: str, result: Comparison, guardrail: Guardrail, enough: bool
) -> GuardrailFinding:
    """A gap change is harmful when the cohort falls further behind the rest (tolerance 0)."""
    gap_guard = Guardrail(metric, guardrail.kind, guardrail.harm, 0.0)
    return _finding(metric, scope, result, gap_guard, enough)


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
    units = next(iter(shown.results.values())).units_by_variant()
    units_control, units_candidate = units.get(plan.control, 0), units.get(plan.candidate, 0)
    alpha = plan.alpha / max(len(plan.guardrails), 1)
    findings: list[GuardrailFinding] = []
    for index, guardrail in enumerate(plan.guardrails):
        overall = shown.results[(index, None)]
        summed = overall.overall()
        control = summed.get(plan.control, overall.stats(plan.control))
        candidate = summed.get(plan.candidate, overall.stats(plan.candidate))
        dims = guardrail.cohorts
        share = alpha / (1 + len(dims))  # the overall test and each cohort dimension
        result = compare(
            control, candidate, alpha=share, relative=guardrail.relative, tuning=plan.tuning
        )
        findings.append(
            _finding(
                guardrail.metric,
                "overall",
                result,
                guardrail,
                min(control.n, candidate.n) >= plan.min_units_for_harm,
            )
        )
        for dim in dims:
            by = shown.results[(index, dim)]
            cells = {
                cohort: (by.stats(plan.control, cohort), by.stats(plan.candidate, cohort))
                for cohort in by.cohorts
                if cohort is not None
            }
            if not cells:
                continue
            least = {cohort: min(c.n, t.n) for cohort, (c, t) in cells.items()}
            effects = cohort_effects(
                cells, alpha=share, harm_direction=guardrail.harm, relative=guardrail.relative,
                tuning=plan.tuning,
            )  # fmt: skip
            for cohort, comparison in effects.effects.items():
                scope = f"{dim}={cohort}"
                findings.append(
                    _finding(
                        guardrail.metric,
                        scope,
                        comparison,
                        guardrail,
                        least[cohort] >= plan.min_units_for_harm,
                    )
                )
            for cohort, comparison in effects.gaps.items():
                scope = f"gap:{dim}={cohort}"
                findings.append(
                    _gap_finding(
                        guardrail.metric,
                        scope,
                        comparison,
                        guardrail,
                        least[cohort] >= plan.min_units_for_harm,
                    )
                )
    findings.sort(key=lambda f: (f.verdict != "harm", f.p_value))
    srm_p, keep = _srm(shown.version_units, plan, state)
    evidence = Evidence(
        units_control=units_control, units_candidate=units_candidate, findings=tuple(findings),
        srm_p_value=srm_p, now=now,
    )  # fmt: skip
    return evidence, keep


def _srm(
    version_units: Mapping[int, Mapping[str, int]], plan: RolloutPlan, state: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """The sequential SRM p-value of the current stage (running minimum kept in the state)."""
    stage = int(state.get("stage", 1))  # counted from 1
    share = plan.stages[stage - 1].share
    if not plan.srm or share >= 1.0:
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

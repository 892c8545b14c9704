"""What the stored data shows about a running rollout: guardrails, cohorts, sample ratio.

The exposures and outcomes since the rollout started are reduced to sufficient statistics by
SQL in the database (``rollwise.analysis.reduce``), then compared with the always-valid tests
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
from rollwise.analysis.reduce import reduce_sql
from rollwise.analysis.srm import srm_log_bayes_factor
from rollwise_server.rollouts.decide import Evidence, GuardrailFinding
from rollwise_server.rollouts.plan import Guardrail, RolloutPlan

__all__ = ["gather", "iso"]


def iso(ts: float) -> str:
    """Epoch seconds as the stored event time format (RFC 3339 UTC, milliseconds)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _units(conn: Any, env: str, flag: str, since: str, plan: RolloutPlan) -> tuple[int, int]:
    rows = conn.execute(
        "SELECT variant, count(DISTINCT unit) FROM exposures"
        " WHERE env = ? AND flag = ? AND ts >= ? GROUP BY variant",
        (env, flag, since),
    ).fetchall()
    by_variant = {variant: int(count) for variant, count in rows}
    return by_variant.get(plan.control, 0), by_variant.get(plan.candidate, 0)


def _finding(metric: str, scope: str, result: Comparison, guardrail: Guardrail) -> GuardrailFinding:
    reading = verdict(result, harm_direction=guardrail.harm, tolerance=guardrail.tolerance)

    def finite(x: float) -> float:
        return x if math.isfinite(x) else (1e308 if x > 0 else -1e308)

    return GuardrailFinding(
        metric=metric, scope=scope, effect=finite(result.effect), ci_low=finite(result.ci_low),
        ci_high=finite(result.ci_high), p_value=result.p_value, verdict=reading,
        n_control=result.n_control, n_candidate=result.n_candidate,
    )  # fmt: skip


def _gap_finding(
    metric: str, scope: str, result: Comparison, guardrail: Guardrail
) -> GuardrailFinding:
    """A gap change is harmful when the cohort falls further behind the rest (tolerance 0)."""
    gap_guard = Guardrail(metric, guardrail.kind, guardrail.harm, 0.0)
    return _finding(metric, scope, result, gap_guard)


def gather(
    conn: Any, env: str, flag: str, plan: RolloutPlan, state: Mapping[str, Any], now: float
) -> tuple[Evidence, dict[str, Any]]:
    """Evidence at this look, and the state fields to keep for the next one (SRM)."""
    since = iso(float(state["started_at"]))
    units_control, units_candidate = _units(conn, env, flag, since, plan)
    alpha = plan.alpha / max(len(plan.guardrails), 1)
    findings: list[GuardrailFinding] = []
    for guardrail in plan.guardrails:
        spec: dict[str, Any] = {
            "env": env, "kind": guardrail.kind, "window_seconds": plan.attribution_window,
            "denominator_metric": guardrail.denominator, "since": since,
            "until": iso(now - plan.outcome_delay),
        }  # fmt: skip
        overall = reduce_sql(conn, flag, guardrail.metric, **spec)
        control = overall.stats(plan.control)
        candidate = overall.stats(plan.candidate)
        if overall.spec.cohort is None:
            summed = overall.overall()
            control = summed.get(plan.control, control)
            candidate = summed.get(plan.candidate, candidate)
        dims = guardrail.cohorts
        share = alpha / (1 + len(dims))  # the overall test and each cohort dimension
        result = compare(
            control, candidate, alpha=share, relative=guardrail.relative, tuning=plan.tuning
        )
        findings.append(_finding(guardrail.metric, "overall", result, guardrail))
        for dim in dims:
            by = reduce_sql(
                conn, flag, guardrail.metric, cohort=dim, bands=guardrail.bands.get(dim), **spec
            )
            cells = {
                cohort: (by.stats(plan.control, cohort), by.stats(plan.candidate, cohort))
                for cohort in by.cohorts
                if cohort is not None
            }
            if not cells:
                continue
            effects = cohort_effects(
                cells, alpha=share, harm_direction=guardrail.harm, relative=guardrail.relative,
                tuning=plan.tuning,
            )  # fmt: skip
            for cohort, comparison in effects.effects.items():
                scope = f"{dim}={cohort}"
                findings.append(_finding(guardrail.metric, scope, comparison, guardrail))
            for cohort, comparison in effects.gaps.items():
                scope = f"gap:{dim}={cohort}"
                findings.append(_gap_finding(guardrail.metric, scope, comparison, guardrail))
    findings.sort(key=lambda f: (f.verdict != "harm", f.p_value))
    srm_p, keep = _srm(conn, env, flag, plan, state)
    evidence = Evidence(
        units_control=units_control, units_candidate=units_candidate, findings=tuple(findings),
        srm_p_value=srm_p, now=now,
    )  # fmt: skip
    return evidence, keep


def _srm(
    conn: Any, env: str, flag: str, plan: RolloutPlan, state: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """The sequential SRM p-value of the current stage (running minimum kept in the state)."""
    stage = int(state.get("stage", 0))
    share = plan.stages[stage].share
    if not plan.srm or share >= 1.0:
        return 1.0, {}
    # only exposures made with this stage's weights: SDKs pick a new version up a little later
    rows = conn.execute(
        "SELECT variant, count(DISTINCT unit) FROM exposures"
        " WHERE env = ? AND flag = ? AND flag_version = ? GROUP BY variant",
        (env, flag, int(state.get("stage_flag_version", 0))),
    ).fetchall()
    counts = {variant: int(n) for variant, n in rows}
    control, candidate = counts.get(plan.control, 0), counts.get(plan.candidate, 0)
    log_bf = srm_log_bayes_factor([candidate, control], [share, 1.0 - share])
    p_now = 0.0 if log_bf == math.inf else (min(1.0, math.exp(-log_bf)) if log_bf > 0 else 1.0)
    previous = state.get("srm")
    running = p_now
    if isinstance(previous, Mapping) and previous.get("stage") == stage:
        running = min(float(previous.get("p", 1.0)), p_now)
    return running, {"srm": {"stage": stage, "p": running, "counts": [candidate, control]}}

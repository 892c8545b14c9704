"""The controller's decision for one rollout at one look: a pure function of plan, state, evidence.

Kept apart from I/O so every rule of the policy is tested directly: a breach (a guardrail's
always-valid interval entirely on the harmful side of its tolerance, overall or in a cohort, a
widening gap between cohorts, a sample-ratio mismatch, or the deadline passed) rolls back or
pauses; a stage whose exit criteria hold (duration, units per arm, no harm shown, SRM clean)
advances, waits for an approver, or completes the rollout. A shadow stage (the first, serving
the candidate to no one) fails, which ends the rollout, when a paired score shows harm or a
criterion is missed on enough paired units, and passes once each score is shown non-inferior.

With several candidates each is compared with the control: a candidate shown to harm is
dropped (``drop``: its weight goes back to the control) while the others go on, and when every
surviving candidate harms the rollout breaches as a whole. Such a rollout never completes on
its own: after its last stage it waits for an approver, who names the winner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from rollwise_server.rollouts.plan import RolloutPlan, Stage

__all__ = ["Action", "Decision", "Evidence", "GuardrailFinding", "ShadowEvidence", "decide"]

Action = Literal["none", "advance", "await_approval", "complete", "rollback", "pause", "drop"]


@attrs.frozen
class GuardrailFinding:
    """One guardrail's reading at this look (overall or one cohort)."""

    metric: str
    scope: str
    """``overall``, ``country=DE`` or ``gap:country=DE``."""
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    n_control: int
    n_candidate: int
    alpha: float = 0.05
    """The level of this test: the plan's alpha shared over guardrails, dimensions and cohorts."""
    family: int = 1
    """The cohorts of its dimension (the Bonferroni divisor), fixed by the plan."""
    tolerance: float = 0.0
    """The tolerance (or gap tolerance) this reading was judged against (a magnitude)."""
    reason: str = ""
    """The verdict in one line, with the interval and the tolerance it was read against."""
    candidate: str | None = None
    """With several candidates: the one this reading compares with the control."""

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        if self.candidate is None:
            del out["candidate"]
        return out


@attrs.frozen
class ShadowEvidence:
    """What a shadow stage's runs show at this look (``rollouts/pairing.py``)."""

    runs: int
    """Shadow runs whose candidate was started (any status)."""
    paired_units: int
    """Units with a run where both models answered (each unit counts once)."""
    errors: int = 0
    timeouts: int = 0
    agreement: float | None = None
    """The share of paired runs with labels whose labels agree."""
    correlation: float | None = None
    mean_abs_diff: float | None = None
    latency_p99_ms: float | None = None
    """The candidate's p99 latency (answers and timeouts)."""
    live_latency_p99_ms: float | None = None
    findings: Sequence[GuardrailFinding] = ()
    """The paired score checks, overall and by cohort."""

    @property
    def error_rate(self) -> float:
        return (self.errors + self.timeouts) / self.runs if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["findings"] = [f.to_json() for f in self.findings]
        out["error_rate"] = self.error_rate
        return out


@attrs.frozen
class Evidence:
    """What the data shows at this look."""

    units_control: int
    units_candidate: int
    findings: Sequence[GuardrailFinding] = ()
    srm_p_value: float = 1.0
    now: float = 0.0
    shadow: ShadowEvidence | None = None
    """A shadow stage's reading (``None`` in a live stage)."""
    units: Mapping[str, int] | None = None
    """With several candidates: the units of each arm (``units_candidate`` is then the
    smallest surviving candidate's)."""
    surviving: Sequence[str] = ()
    """With several candidates: those not dropped, which this look compared."""
    correction: str | None = None
    """With several candidates: how alpha was shared over them."""

    @property
    def harms(self) -> list[GuardrailFinding]:
        return [f for f in self.findings if f.verdict == "harm"]

    def to_json(self) -> dict[str, Any]:
        multi = {} if self.units is None else {
            "units": dict(self.units), "surviving": list(self.surviving),
            "correction": self.correction,
        }  # fmt: skip
        return {
            "units_control": self.units_control,
            "units_candidate": self.units_candidate,
            **multi,
            "srm_p_value": self.srm_p_value,
            "findings": [f.to_json() for f in self.findings],
            **({"shadow": self.shadow.to_json()} if self.shadow is not None else {}),
        }


@attrs.frozen
class Decision:
    action: Action
    reason: str
    dropped: tuple[str, ...] = ()
    """``drop``: the candidates dropped (their weight back to the control)."""


SRM_ALPHA = 0.001


def decide(plan: RolloutPlan, state: Mapping[str, Any], evidence: Evidence) -> Decision:
    """The next step of a running rollout."""
    if state.get("status") != "running":
        return Decision("none", f"the rollout is {state.get('status')}")
    breach = plan.on_breach
    harms = evidence.harms
    if plan.multi:
        harmed = _harmed_candidates(plan, state, harms)
        if harmed is not None:
            return harmed
    elif harms:
        worst = harms[0]
        return Decision(
            breach,
            f"guardrail {worst.metric} ({worst.scope}) shows harm: effect {worst.effect:+.4g}, "
            f"always-valid interval [{worst.ci_low:.4g}, {worst.ci_high:.4g}]",
        )
    if plan.srm and evidence.srm_p_value < SRM_ALPHA:
        return Decision(
            breach,
            f"sample-ratio mismatch: sequential p = {evidence.srm_p_value:.2g} < {SRM_ALPHA}",
        )
    if plan.deadline is not None and evidence.now >= plan.deadline.timestamp():
        return Decision(breach, "the rollout's deadline passed before it completed")
    number = int(state.get("stage", 1))  # stages count from 1 everywhere
    stage = plan.stages[number - 1]
    elapsed = evidence.now - float(state.get("stage_started_at", evidence.now))
    if stage.shadow is not None:
        failed = _shadow_failure(stage, evidence.shadow, elapsed)
        if failed is not None:  # ended before any customer saw the candidate
            return Decision("rollback", f"shadow stage failed: {failed}")
    if elapsed < stage.min_duration:
        return Decision("none", f"stage {number} runs {stage.min_duration - elapsed:.0f}s more")
    if stage.shadow is not None:
        waiting = _shadow_waiting(number, stage, evidence.shadow)
        if waiting is not None:
            return Decision("none", waiting)
        if stage.approval:
            return Decision(
                "await_approval", f"shadow stage {number} met its exit criteria; approval needed"
            )
        return Decision("advance", f"shadow stage {number} met its exit criteria")
    fewest = min(evidence.units_control, evidence.units_candidate)
    if fewest < stage.min_units:
        return Decision(
            "none", f"stage {number} needs {stage.min_units} units per arm, has {fewest}"
        )
    if plan.multi and number == len(plan.stages):  # a person names the winner
        return Decision(
            "await_approval",
            f"the last stage met its exit criteria; an approver chooses the winner among "
            f"{', '.join(_surviving(plan, state))}",
        )
    if stage.approval:  # the last stage's too: its approval is what completes the rollout
        return Decision("await_approval", f"stage {number} met its exit criteria; approval needed")
    if number == len(plan.stages):
        return Decision("complete", "the last stage met its exit criteria")
    return Decision("advance", f"stage {number} met its exit criteria")


def _surviving(plan: RolloutPlan, state: Mapping[str, Any]) -> list[str]:
    gone = {d.get("candidate") for d in state.get("dropped") or [] if isinstance(d, Mapping)}
    return [c for c in plan.candidates if c not in gone]


def _harmed_candidates(
    plan: RolloutPlan, state: Mapping[str, Any], harms: Sequence[GuardrailFinding]
) -> Decision | None:
    """Several candidates, some shown to harm: drop those (``on_breach: rollback``) while
    others survive; the rollout breaches as a whole when none would be left (or pauses, with
    ``on_breach: pause``)."""
    surviving = _surviving(plan, state)
    worst: dict[str, GuardrailFinding] = {}
    for finding in harms:  # sorted by p-value: the first of each candidate is its worst
        if finding.candidate in surviving and finding.candidate not in worst:
            worst[finding.candidate] = finding
    why = "; ".join(
        f"candidate {c}: guardrail {f.metric} ({f.scope}) shows harm: effect {f.effect:+.4g}, "
        f"always-valid interval [{f.ci_low:.4g}, {f.ci_high:.4g}]"
        for c, f in worst.items()
    )
    if not worst:  # none, or only candidates dropped already
        return None
    if plan.on_breach == "pause":
        return Decision("pause", why)
    if set(worst) >= set(surviving):
        return Decision("rollback", f"every remaining candidate harms: {why}")
    return Decision("drop", f"dropped {', '.join(worst)}: {why}", tuple(worst))


def _shadow_failure(stage: Stage, shadow: ShadowEvidence | None, elapsed: float) -> str | None:
    """Why the shadow stage fails, or ``None``: a paired score shows harm (always-valid, at any
    look); once the stage has ``min_units`` runs of the candidate, an error rate above the
    bound; once it has as many paired units, a criterion missed (agreement, correlation, mean
    absolute difference, latency p99). A criterion already missed on enough data is not met
    by waiting, so the rollout ends here."""
    if shadow is None:
        return None
    for finding in shadow.findings:
        if finding.verdict == "harm":
            why = finding.reason.removeprefix("harm: ")
            return f"score {finding.metric} ({finding.scope}) shows harm: {why}"
    criteria = stage.shadow
    if criteria is None or elapsed < stage.min_duration:
        return None
    enough = max(stage.min_units, 1)
    if shadow.runs >= enough and shadow.error_rate > criteria.max_error_rate:  # runs, not pairs:
        # a candidate that fails every run pairs with nothing
        return (
            f"the candidate failed {shadow.error_rate:.2%} of its runs ({shadow.errors} "
            f"errors, {shadow.timeouts} timeouts), more than {criteria.max_error_rate:.2%}"
        )
    if shadow.paired_units < enough:
        return None
    if criteria.agreement is not None and (shadow.agreement or 0.0) < criteria.agreement:
        shown = "no labels" if shadow.agreement is None else f"{shadow.agreement:.2%}"
        return f"agreement {shown}, below {criteria.agreement:.2%}"
    if criteria.min_correlation is not None and (
        shadow.correlation is None or shadow.correlation < criteria.min_correlation
    ):
        shown = "none" if shadow.correlation is None else f"{shadow.correlation:.3f}"
        return f"score correlation {shown}, below {criteria.min_correlation}"
    if criteria.max_mean_abs_diff is not None and (
        shadow.mean_abs_diff is None or shadow.mean_abs_diff > criteria.max_mean_abs_diff
    ):
        shown = "none" if shadow.mean_abs_diff is None else f"{shadow.mean_abs_diff:.4g}"
        return f"mean absolute score difference {shown}, above {criteria.max_mean_abs_diff}"
    budget = criteria.latency_p99_ms
    if budget is not None and (shadow.latency_p99_ms or 0.0) > budget:
        return f"the candidate's latency p99 {shadow.latency_p99_ms:.1f} ms, over {budget:g} ms"
    return None


def _shadow_waiting(number: int, stage: Stage, shadow: ShadowEvidence | None) -> str | None:
    """What the shadow stage still waits for, or ``None`` when it passes: its paired units,
    then each score check shown non-inferior overall (its interval clear of the tolerance)."""
    have = 0 if shadow is None else shadow.paired_units
    if shadow is None or have < max(stage.min_units, 1):
        return f"shadow stage {number} needs {stage.min_units} paired units, has {have}"
    for finding in shadow.findings:
        if finding.scope == "overall" and finding.verdict not in ("non-inferior", "improvement"):
            return (
                f"shadow stage {number} waits for {finding.metric} to be shown non-inferior: "
                f"{finding.reason}"
            )
    return None

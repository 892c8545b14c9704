"""The controller's decision for one rollout at one look: a pure function of plan, state, evidence.

Kept apart from I/O so every rule of the policy is tested directly: a breach (a guardrail's
always-valid interval entirely on the harmful side of its tolerance, overall or in a cohort, a
widening gap between cohorts, a sample-ratio mismatch, or the deadline passed) rolls back or
pauses; a stage whose exit criteria hold (duration, units per arm, no harm shown, SRM clean)
advances, waits for an approver, or completes the rollout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from rollwise_server.rollouts.plan import RolloutPlan

__all__ = ["Action", "Decision", "Evidence", "GuardrailFinding", "decide"]

Action = Literal["none", "advance", "await_approval", "complete", "rollback", "pause"]


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

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Evidence:
    """What the data shows at this look."""

    units_control: int
    units_candidate: int
    findings: Sequence[GuardrailFinding] = ()
    srm_p_value: float = 1.0
    now: float = 0.0

    @property
    def harms(self) -> list[GuardrailFinding]:
        return [f for f in self.findings if f.verdict == "harm"]

    def to_json(self) -> dict[str, Any]:
        return {
            "units_control": self.units_control,
            "units_candidate": self.units_candidate,
            "srm_p_value": self.srm_p_value,
            "findings": [f.to_json() for f in self.findings],
        }


@attrs.frozen
class Decision:
    action: Action
    reason: str


SRM_ALPHA = 0.001


def decide(plan: RolloutPlan, state: Mapping[str, Any], evidence: Evidence) -> Decision:
    """The next step of a running rollout."""
    if state.get("status") != "running":
        return Decision("none", f"the rollout is {state.get('status')}")
    breach = plan.on_breach
    harms = evidence.harms
    if harms:
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
    if elapsed < stage.min_duration:
        return Decision("none", f"stage {number} runs {stage.min_duration - elapsed:.0f}s more")
    fewest = min(evidence.units_control, evidence.units_candidate)
    if fewest < stage.min_units:
        return Decision(
            "none", f"stage {number} needs {stage.min_units} units per arm, has {fewest}"
        )
    if stage.approval:  # the last stage's too: its approval is what completes the rollout
        return Decision("await_approval", f"stage {number} met its exit criteria; approval needed")
    if number == len(plan.stages):
        return Decision("complete", "the last stage met its exit criteria")
    return Decision("advance", f"stage {number} met its exit criteria")

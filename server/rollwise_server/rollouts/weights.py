"""How a rollout stage becomes a flag change: the managed rule's split weights.

A stage's share goes to the candidates, divided equally between the plan's candidates (each
gets ``share / k`` of the rule's traffic, in basis points rounded down); the control gets the
rest. A dropped candidate's weight goes back to the control, the others keep theirs; a winner
chosen at completion gets the whole share. The split is laid out ``[first candidate, control,
second candidate]`` (``[candidate, control]`` with one): each candidate is anchored at one end
of the hash space, so raising its weight moves no unit out of it, and dropping either moves
units only to the control (``docs/spec/bucketing.md``: stable ramps).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rollwise_server.rollouts.plan import RolloutPlan

__all__ = [
    "SCALE",
    "arm_weights",
    "candidate_share",
    "candidates_of",
    "dropped_of",
    "layout",
    "served_weights",
    "with_share",
]

SCALE = 10_000
"""Weights are in basis points of the rule's traffic (0.01% resolution)."""


def candidates_of(plan: Mapping[str, Any]) -> list[str]:
    """The candidates of a plan as stored (JSON; it need not parse): ``candidates`` or
    ``[candidate]``."""
    listed = plan.get("candidates")
    if isinstance(listed, list) and listed:
        return [str(c) for c in listed]
    return [str(plan.get("candidate"))]


def dropped_of(state: Mapping[str, Any]) -> list[str]:
    """The candidates a rollout's state says were dropped in this run."""
    return [str(d.get("candidate")) for d in state.get("dropped") or [] if isinstance(d, Mapping)]


def arm_weights(
    plan: RolloutPlan, share: float, dropped: Collection[str] = (), winner: str | None = None
) -> dict[str, int]:
    """Each variant's weight (basis points) at ``share``: every surviving candidate
    ``share / k`` (k: the plan's candidates), the whole share to a ``winner``, the control the
    rest."""
    total = round(share * SCALE)
    out = {}
    for candidate in plan.candidates:
        if winner is not None:
            out[candidate] = total if candidate == winner else 0
        else:
            out[candidate] = 0 if candidate in dropped else total // len(plan.candidates)
    out[plan.control] = SCALE - sum(out.values())
    return out


def layout(control: str, candidates: Sequence[str], weights: Mapping[str, int]) -> list[Any]:
    """The split arms in their order: the first candidate, the control, the others."""
    order = [candidates[0], control, *candidates[1:]]
    return [{"variant": v, "weight": int(weights.get(v, 0))} for v in order]


def with_share(
    flag_body: Mapping[str, Any], plan: RolloutPlan, share: float, *,
    dropped: Collection[str] = (), winner: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The flag body with the managed rule at ``share`` (``arm_weights``), laid out so that
    raising a candidate's weight moves no unit out of it."""
    body = copy.deepcopy(dict(flag_body))
    weights = arm_weights(plan, share, dropped, winner)
    for rule in body.get("rules", []):
        if rule.get("id") == plan.rule:
            rule["serve"]["split"] = layout(plan.control, plan.candidates, weights)
            return body
    raise KeyError(plan.rule)


def served_weights(flag_body: Mapping[str, Any], plan: RolloutPlan) -> dict[str, int] | None:
    """The managed rule's weights as served, per variant of the plan, in basis points
    (``None`` if the rule is gone or serves no split)."""
    for rule in flag_body.get("rules", []):
        if rule.get("id") == plan.rule:
            arms = rule.get("serve", {}).get("split") or []
            total = sum(int(a["weight"]) for a in arms)
            if not total:
                return None
            out = dict.fromkeys((plan.control, *plan.candidates), 0)
            for arm in arms:
                out[arm["variant"]] = out.get(arm["variant"], 0) + int(arm["weight"])
            return {v: round(w * SCALE / total) for v, w in out.items()}
    return None


def candidate_share(flag_body: Mapping[str, Any], plan: RolloutPlan) -> float | None:
    """The candidates' current share in the managed rule (``None`` if the rule is gone)."""
    for rule in flag_body.get("rules", []):
        if rule.get("id") == plan.rule:
            arms = rule.get("serve", {}).get("split") or []
            total = sum(int(a["weight"]) for a in arms)
            mine = sum(int(a["weight"]) for a in arms if a["variant"] in plan.candidates)
            return mine / total if total else None
    return None

"""How a rollout stage becomes a flag change: the managed rule's split weights."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rollwise_server.rollouts.plan import RolloutPlan

__all__ = ["SCALE", "candidate_share", "with_share"]

SCALE = 10_000
"""Weights are in basis points of the rule's traffic (0.01% resolution)."""


def with_share(flag_body: Mapping[str, Any], plan: RolloutPlan, share: float) -> dict[str, Any]:
    """The flag body with the managed rule splitting ``share`` to the candidate.

    The candidate is declared first, so that raising its weight moves no unit out of it
    (``docs/spec/bucketing.md``: stable ramps).
    """
    body = copy.deepcopy(dict(flag_body))
    candidate = round(share * SCALE)
    for rule in body.get("rules", []):
        if rule.get("id") == plan.rule:
            serve = rule["serve"]
            serve["split"] = [
                {"variant": plan.candidate, "weight": candidate},
                {"variant": plan.control, "weight": SCALE - candidate},
            ]
            return body
    raise KeyError(plan.rule)


def candidate_share(flag_body: Mapping[str, Any], plan: RolloutPlan) -> float | None:
    """The candidate's current share in the managed rule (``None`` if the rule is gone)."""
    for rule in flag_body.get("rules", []):
        if rule.get("id") == plan.rule:
            arms = rule.get("serve", {}).get("split") or []
            total = sum(int(a["weight"]) for a in arms)
            mine = sum(int(a["weight"]) for a in arms if a["variant"] == plan.candidate)
            return mine / total if total else None
    return None

"""Shared helpers of the rollout benchmarks (issue 6): a flag with a rollout, set up in a store.

``setup_rollout`` writes a flag whose one rule splits between ``v1`` (control) and ``v2``
(candidate), puts a rollout plan on it and starts it, all through the server's own store and
``rollouts.transitions`` (validated, versioned and audited as the API does), with ``now`` as
the start time so a benchmark can run the controller on a fake clock.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from rollwise_server.errors import Conflict
from rollwise_server.rollouts import transitions
from rollwise_server.storage.base import Store

ENV = "production"
CONTROL, CANDIDATE, RULE = "v1", "v2", "split"


def flag_body(key: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "salt": key,
        "description": "rollout benchmark flag",
        "variants": {
            CONTROL: {"payload": {"model": "old"}},
            CANDIDATE: {"payload": {"model": "new"}},
        },
        "off_variant": CONTROL,
        "default_variant": CONTROL,
        "cohort_attributes": ["country", "amount"],
        "rules": [
            {
                "id": RULE,
                "serve": {
                    "split": [
                        {"variant": CANDIDATE, "weight": 0},
                        {"variant": CONTROL, "weight": 10000},
                    ],
                    "bucket_by": "user_id",
                },
            }
        ],
    }


def plan_body(
    stages: list[dict[str, Any]], guardrails: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "control": CONTROL,
        "candidate": CANDIDATE,
        "rule": RULE,
        "stages": stages,
        "guardrails": guardrails,
        **extra,
    }


def catalogue_entry(guardrail: dict[str, Any]) -> dict[str, Any]:
    """The metric catalogue entry that a plan's guardrail needs (its kind and direction)."""
    harm = guardrail.get("harm", "decrease")
    direction = "lower_is_better" if harm == "increase" else "higher_is_better"
    entry = {"kind": guardrail.get("kind", "binary"), "direction": direction}
    if guardrail.get("denominator"):
        entry["denominator"] = guardrail["denominator"]
    return entry


def define_metrics(store: Store, plan: dict[str, Any]) -> None:
    """Put the plan's guardrail metrics into the environment's catalogue (once)."""
    for guardrail in plan.get("guardrails", []):
        with contextlib.suppress(Conflict):  # defined already
            store.write_resource(
                ENV, "metric", guardrail["metric"], catalogue_entry(guardrail),
                expected_version=None, action="metric.create", actor="bench", reason=None,
            )  # fmt: skip


def setup_rollout(store: Store, key: str, plan: dict[str, Any], now: float) -> dict[str, Any]:
    """Create the flag, put ``plan`` and start the rollout at ``now``; returns its state."""
    store.write_resource(
        ENV, "flag", key, flag_body(key), expected_version=None, action="flag.create",
        actor="bench", reason=None,
    )  # fmt: skip
    define_metrics(store, plan)
    transitions.put_plan(store, ENV, key, plan, expected=None, actor="bench", reason="bench")
    record = transitions.transition(
        store, ENV, key, "start", actor="bench", reason="bench", now=now
    )
    return dict(record.state)


def binomial_ci(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson(successes: int, trials: int, alpha: float = 0.05) -> tuple[float, float]:
    """The exact (Clopper-Pearson) binomial interval."""
    from scipy.stats import beta

    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = (
        1.0
        if successes == trials
        else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    )
    return low, high

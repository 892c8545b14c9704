"""While a rollout is active it owns its flag: which flag edits are refused, and which end it.

The store calls ``check_flag_edit`` inside the transaction of every flag write (replace,
revert, promote into the environment, archive, kill), so that every route to the flag is held
to the same rule. Frozen while a rollout is active (running, paused or awaiting approval):

- the managed rule, whole (its id, conditions, split, ``bucket_by``): its weights are the
  controller's;
- the variants, all of them (a candidate whose payload changes is another candidate, and a new
  variant with the candidate's payload is the candidate under another name), the ``salt`` (it
  would re-bucket every unit), the ``schedule`` (an end in the past turns the flag off without
  ending the rollout) and the ``cohort_attributes`` (the guardrails read them);
- the candidate's reach outside the managed rule: no other rule, nor the default or the off
  variant, may start serving the candidate.

Archiving the flag is refused too, and so is a change to the conditions of a segment that the
managed rule refers to (``SQLiteStore._check_segment_not_managed``). Turning the flag off (a
kill, by ``POST …/kill`` or by any edit that sets ``enabled: false``) is allowed and ends the
rollout: ``aborted``, reason ``killed``, the managed rule back on the control, all in the same
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from rollwise_server.errors import Conflict
from rollwise_server.rollouts.weights import SCALE, candidates_of, layout

__all__ = [
    "check_flag_edit",
    "control_change",
    "rule_of",
    "serving_candidate",
    "with_control_weights",
]


def rule_of(body: Mapping[str, Any], plan: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The plan's managed rule in ``body`` (``None`` if it is gone)."""
    return _rule(body, str(plan.get("rule")))


def _rule(body: Mapping[str, Any], rule_id: str) -> Mapping[str, Any] | None:
    for rule in body.get("rules", []) or []:
        if isinstance(rule, Mapping) and rule.get("id") == rule_id:
            return rule
    return None


def _serves(serve: Any, variant: str) -> bool:
    if not isinstance(serve, Mapping):
        return False
    if serve.get("variant") == variant:
        return True
    split = serve.get("split") or []
    return any(
        isinstance(arm, Mapping) and arm.get("variant") == variant and arm.get("weight", 0) > 0
        for arm in split
    )


def serving_candidate(body: Mapping[str, Any], plan: Mapping[str, Any]) -> set[str]:
    """Where the flag serves a candidate outside the managed rule: rule signatures (the
    rule's JSON) and ``default`` / ``off``."""
    managed = str(plan["rule"])
    places: set[str] = set()
    for candidate in candidates_of(plan):
        for rule in body.get("rules", []) or []:
            managed_rule = isinstance(rule, Mapping) and rule.get("id") == managed
            if (
                isinstance(rule, Mapping) and not managed_rule
                and _serves(rule.get("serve"), candidate)
            ):  # fmt: skip
                places.add(json.dumps(rule, sort_keys=True))
        for field in ("default_variant", "off_variant"):
            if body.get(field) == candidate:
                places.add(field)
    return places


def _variant(body: Mapping[str, Any], key: str) -> Any:
    variants = body.get("variants")
    return variants.get(key) if isinstance(variants, Mapping) else None


def control_change(
    body: Mapping[str, Any], version: int, plan: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The flag change (``Store.put_rollout``'s ``flag_change``) that puts the managed rule of
    a flag at ``version`` on the control, from the plan's JSON as stored (it need not parse);
    ``None`` if the rule is gone."""
    if rule_of(body, plan) is None:
        return None
    return {"body": with_control_weights(body, plan), "expected_version": version}


def with_control_weights(body: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with the managed rule serving the control to all of its traffic."""
    out = json.loads(json.dumps(body))
    for rule in out.get("rules", []):
        if rule.get("id") == plan["rule"] and isinstance(rule.get("serve"), dict):
            control = str(plan["control"])
            rule["serve"]["split"] = layout(control, candidates_of(plan), {control: SCALE})
    return dict(out)


def _refuse(flag: str, env: str, what: str) -> Conflict:
    return Conflict(
        f"flag {flag!r} is managed by its active rollout in {env!r}: {what}. "
        "Wait for the rollout to end, or roll it back (or abort it) and start again",
        rollout={"env": env, "flag": flag},
    )


FROZEN = {
    "salt": "its salt cannot change (it would re-bucket every unit)",
    "schedule": "its schedule cannot change (a schedule that ends turns the flag off: kill it "
    "instead, which ends the rollout)",
    "cohort_attributes": "its cohort attributes cannot change (the guardrails read them)",
}
"""Flag fields frozen while a rollout is active, and why."""


def check_flag_edit(
    env: str,
    flag: str,
    plan: Mapping[str, Any],
    old: Mapping[str, Any],
    new: Mapping[str, Any] | None,
) -> Literal["keep", "kill"]:
    """``keep``: the edit leaves the rollout as it is; ``kill``: the edit turns the flag off
    and ends the rollout. Raises ``Conflict`` (naming the rollout) for a refused edit."""
    if new is None:
        raise _refuse(flag, env, "it cannot be archived")
    managed = str(plan["rule"])
    if _rule(old, managed) != _rule(new, managed):
        raise _refuse(flag, env, f"its managed rule {managed!r} cannot change")
    roles = [("control", str(plan["control"]))] + [("candidate", c) for c in candidates_of(plan)]
    for role, key in roles:
        if _variant(old, key) != _variant(new, key):
            raise _refuse(flag, env, f"its {role} variant {key!r} cannot change")
    if old.get("variants") != new.get("variants"):  # a copy of the candidate is the candidate
        raise _refuse(flag, env, "its variants cannot change (none added, none changed)")
    for field, why in FROZEN.items():
        if old.get(field) != new.get(field):
            raise _refuse(flag, env, why)
    if not serving_candidate(new, plan) <= serving_candidate(old, plan):
        named = " or ".join(repr(c) for c in candidates_of(plan))
        raise _refuse(flag, env, f"the candidate {named} cannot be served outside its rule")
    if old.get("enabled", True) and new.get("enabled", True) is False:
        return "kill"
    return "keep"

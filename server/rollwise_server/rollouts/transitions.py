"""Rollout state changes, each one store transaction (with the flag change it implies).

Used by the API (people) and the controller (automatic decisions) alike, so every transition
is validated, versioned and audited the same way. States::

    draft → running ⇄ paused
    running → awaiting_approval → running (approved, next stage)
    running → completed | rolled_back;  paused/awaiting_approval → rolled_back
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rollwise.rules import Flag
from rollwise_server.errors import Conflict, Forbidden, Invalid, NotFound
from rollwise_server.rollouts.plan import RolloutPlan, parse_plan
from rollwise_server.rollouts.weights import with_share
from rollwise_server.storage.base import RolloutRecord, Store

__all__ = ["load", "put_plan", "transition"]

ACTIVE = ("running", "awaiting_approval")
EDITABLE = ("draft", "paused", "completed", "rolled_back")


def _flag(store: Store, env: str, key: str) -> tuple[Flag, Mapping[str, Any], int]:
    resource = store.get_resource(env, "flag", key)
    if resource.archived:
        raise Conflict(f"flag {key!r} is archived")
    referenced = {  # the stored flag was validated against its segments when it was written
        c["segment"] for r in resource.body.get("rules", []) for c in r.get("conditions", [])
        if "segment" in c
    }  # fmt: skip
    flag = Flag.from_json(dict(resource.body), key=key, segments=referenced)
    return flag, resource.body, resource.version


def load(store: Store, env: str, key: str) -> tuple[RolloutRecord, RolloutPlan, Flag]:
    record = store.get_rollout(env, key)
    if record is None:
        raise NotFound(f"flag {key!r} has no rollout plan in {env!r}")
    flag, _, _ = _flag(store, env, key)
    plan, problems = parse_plan(record.plan, flag)
    if plan is None:
        raise Invalid.from_problems(problems, prefix="plan")
    return record, plan, flag


def put_plan(
    store: Store, env: str, key: str, body: Mapping[str, Any], *, expected: int | None,
    actor: str, reason: str | None,
) -> RolloutRecord:  # fmt: skip
    flag, _, _ = _flag(store, env, key)
    plan, problems = parse_plan(body, flag)
    if plan is None:
        raise Invalid.from_problems(problems)
    current = store.get_rollout(env, key)
    if current is not None and current.state.get("status") not in EDITABLE:
        raise Conflict("a running rollout's plan cannot change: pause it first")
    if current is not None and expected is None:
        expected = current.version
    state = (
        {"status": "draft"}
        if current is None or current.state.get("status") != "paused"
        else dict(current.state)
    )
    return store.put_rollout(
        env, key, plan.to_json(), state, expected_version=expected, actor=actor,
        action="rollout.plan", reason=reason,
    )  # fmt: skip


def transition(
    store: Store,
    env: str,
    key: str,
    action: str,
    *,
    actor: str,
    reason: str | None,
    expected: int | None = None,
    evidence: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> RolloutRecord:
    """Apply ``action`` (start, pause, resume, advance, approve, rollback, complete, await)."""
    now = time.time() if now is None else now
    record, plan, _ = load(store, env, key)
    state = dict(record.state)
    status = state.get("status")
    _, flag_body, flag_version = _flag(store, env, key)
    share: float | None = None
    details: dict[str, Any] = {"from_status": status, "stage": state.get("stage")}
    if evidence is not None:
        details["evidence"] = dict(evidence)
    if action == "start":
        if status not in ("draft", "completed", "rolled_back"):
            raise Conflict(f"cannot start a rollout that is {status}")
        state = {
            "status": "running", "stage": 0, "stage_started_at": now, "started_at": now,
            "started_by": actor, "approvals": [], "flag_version": flag_version + 1,
        }  # fmt: skip
        share = plan.stages[0].share
    elif action == "pause":
        if status not in ACTIVE:
            raise Conflict(f"cannot pause a rollout that is {status}")
        state["status"] = "paused"
    elif action == "resume":
        if status != "paused":
            raise Conflict(f"cannot resume a rollout that is {status}")
        state["status"] = "running"
    elif action in ("advance", "approve"):
        if status not in ACTIVE:
            raise Conflict(f"cannot {action} a rollout that is {status}")
        stage = int(state["stage"])
        if action == "advance" and (status == "awaiting_approval" or plan.stages[stage].approval):
            raise Conflict(f"stage {stage + 1} needs an approver's approval to advance")
        if action == "approve":
            if status != "awaiting_approval" and not plan.stages[stage].approval:
                raise Conflict(f"stage {stage + 1} does not need approval")
            if env == "production" and actor == state.get("started_by"):
                raise Forbidden(
                    "two-person rule: the person who started a production rollout cannot approve it"
                )
            state["approvals"] = [
                *state.get("approvals", []),
                {"stage": stage, "by": actor, "at": now},
            ]
        if stage + 1 >= len(plan.stages):
            state.update(status="completed", ended_at=now, end_reason=reason)
        else:
            state.update(status="running", stage=stage + 1, stage_started_at=now)
            share = plan.stages[stage + 1].share
    elif action == "await":
        if status != "running":
            raise Conflict(f"cannot wait for approval while {status}")
        state["status"] = "awaiting_approval"
    elif action == "complete":
        if status not in ACTIVE:
            raise Conflict(f"cannot complete a rollout that is {status}")
        state.update(status="completed", ended_at=now, end_reason=reason)
    elif action == "rollback":
        if status not in (*ACTIVE, "paused"):
            raise Conflict(f"cannot roll back a rollout that is {status}")
        state.update(status="rolled_back", ended_at=now, end_reason=reason, rolled_back_at=now)
        share = 0.0
    else:
        raise Invalid(f"unknown rollout action {action!r}")
    if evidence is not None:
        state["evidence"] = dict(evidence)
    flag_change = None
    if share is not None:
        flag_change = {"body": with_share(flag_body, plan, share), "expected_version": flag_version}
        details["share"] = share
        state["stage_flag_version"] = flag_version + 1  # exposures of this stage carry it
        if action == "rollback":
            state["rollback_flag_version"] = flag_version + 1
    return store.put_rollout(
        env, key, record.plan, state, expected_version=expected or record.version, actor=actor,
        action=f"rollout.{action}", reason=reason, details=details, flag_change=flag_change,
    )  # fmt: skip

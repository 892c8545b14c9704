"""Rollout state changes, each one store transaction (with the flag change it implies).

Used by the API (people) and the controller (automatic decisions) alike, so every transition
is validated, versioned and audited the same way. Stages count from 1. States::

    draft → running ⇄ paused
    running → awaiting_approval → running (approved, next stage)
    running → completed | rolled_back;  paused/awaiting_approval → rolled_back
    running | paused | awaiting_approval | errored → aborted (a person's abort, or a kill)
    running | awaiting_approval → errored (the controller failed: on the control) → running

With several candidates the controller's ``drop`` puts a harmful candidate's weight back on the
control (the others go on), and the last stage completes only by an approval that names the
``winner`` (the others are dropped, the winner gets the stage's whole share).

While a rollout is active (running, paused, awaiting approval) its plan is frozen and it owns
its flag (``ownership``). In a protected environment an approver must be another person than
the one who started the rollout and the one who last changed its plan (owners compared).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from rollwise.errors import Problem
from rollwise.rules import Flag
from rollwise_server.auth import same_person
from rollwise_server.catalogue import Metric, parse_metric
from rollwise_server.errors import Conflict, Forbidden, Invalid, NotFound, VersionConflict
from rollwise_server.rollouts import ownership
from rollwise_server.rollouts.plan import RolloutPlan, parse_plan
from rollwise_server.rollouts.weights import dropped_of, with_share
from rollwise_server.storage.base import ACTIVE_ROLLOUT, Actor, RolloutRecord, Store

__all__ = ["catalogue", "load", "mark_errored", "put_plan", "transition"]

ACTIVE = ("running", "awaiting_approval")
ENDED = ("draft", "completed", "rolled_back", "aborted")


def flag_of(store: Store, env: str, key: str) -> tuple[Flag, Mapping[str, Any], int]:
    resource = store.get_resource(env, "flag", key)
    if resource.archived:
        raise Conflict(f"flag {key!r} is archived")
    referenced = {  # the stored flag was validated against its segments when it was written
        c["segment"] for r in resource.body.get("rules", []) for c in r.get("conditions", [])
        if "segment" in c
    }  # fmt: skip
    flag = Flag.from_json(dict(resource.body), key=key, segments=referenced)
    return flag, resource.body, resource.version


def catalogue(store: Store, env: str) -> dict[str, Metric]:
    """The environment's metric catalogue (archived metrics left out)."""
    out = {}
    for resource in store.list_resources(env, "metric"):
        metric, _ = parse_metric(resource.key, dict(resource.body))
        if metric is not None:
            out[resource.key] = metric
    return out


def load(store: Store, env: str, key: str) -> tuple[RolloutRecord, RolloutPlan, Flag]:
    record = store.get_rollout(env, key)
    if record is None:
        raise NotFound(f"flag {key!r} has no rollout plan in {env!r}")
    flag, _, _ = flag_of(store, env, key)
    plan, problems = parse_plan(record.plan, flag)
    if plan is None:
        raise Invalid.from_problems(problems, prefix="plan")
    return record, plan, flag


def put_plan(
    store: Store, env: str, key: str, body: Mapping[str, Any], *, expected: int | None,
    actor: Actor | str, reason: str | None,
) -> RolloutRecord:  # fmt: skip
    """Store a new plan (checked against the flag and the metric catalogue) as a draft.

    Refused (409) while a rollout is active: its plan is frozen until it ends."""
    flag, _, _ = flag_of(store, env, key)
    current = store.get_rollout(env, key)
    version = 0 if current is None else current.version
    if expected is not None and expected != version:
        raise Conflict(
            f"the rollout of {key!r} is at version {version}, not {expected}",
            current_version=version,
        )
    status = None if current is None else current.state.get("status")
    if status in ACTIVE_ROLLOUT:
        raise Conflict(
            f"the rollout of {key!r} in {env!r} is {status}: its plan is frozen while it is "
            "active. Roll it back or abort it, then put the new plan and start again",
            rollout={"env": env, "flag": key, "status": status},
        )
    plan, problems = parse_plan(body, flag, catalogue(store, env))
    if plan is None:
        raise Invalid.from_problems(problems)
    state = {"status": "draft", "plan_by": Actor.of(actor).name}
    return store.put_rollout(  # at the version read: a change made meanwhile is a 409
        env, key, plan.to_json(), state, expected_version=version, actor=actor,
        action="rollout.plan", reason=reason,
    )  # fmt: skip


def _check_approver(store: Store, env: str, state: Mapping[str, Any], who: str) -> None:
    if not store.environment(env)["protected"]:
        return
    person = same_person(who)
    if person == same_person(str(state.get("started_by", ""))):
        raise Forbidden(
            f"two-person rule: {who!r} started this rollout and cannot approve it in protected "
            f"environment {env!r}; another person must approve"
        )
    if person == same_person(str(state.get("plan_by", ""))):
        raise Forbidden(
            f"two-person rule: {who!r} wrote this rollout's plan and cannot approve it in "
            f"protected environment {env!r}; another person must approve"
        )


_ATTEMPTS = 5
_STAGE_BOUND = frozenset({"advance", "approve"})
"""The actions whose meaning depends on the stage the person saw."""


def transition(
    store: Store,
    env: str,
    key: str,
    action: str,
    *,
    actor: Actor | str,
    reason: str | None,
    expected: int | None = None,
    evidence: Mapping[str, Any] | None = None,
    now: float | None = None,
    winner: str | None = None,
    drop: Sequence[str] = (),
) -> RolloutRecord:
    """Apply ``action`` (start, pause, resume, advance, approve, rollback, abort, complete,
    await, drop) to the rollout as it is, or as it was at version ``expected`` (else 409).
    ``winner``: an approval of the last stage of a plan with several candidates names it;
    ``drop``: the candidates the controller drops.

    Without ``expected`` (a person who named no version), a rollout or flag written between
    this reading and the write (the controller deciding, repairing weights) is read again and
    the action applied to what is there now, up to ``_ATTEMPTS`` times, by the action's own
    rules: an abort or a rollback still ends the rollout. Except that an ``advance`` or an
    ``approve`` is meant for the stage the person saw: if the rollout moved meanwhile (another
    status or stage) it is a 409, so that an advance meant for stage 1 never advances stage 2.
    """
    position = _position(store, env, key) if expected is None and action in _STAGE_BOUND else None
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            asked = _Asked(action, actor, reason, expected, evidence, now, position, winner,
                           tuple(drop))  # fmt: skip
            return _transition(store, env, key, asked)
        except VersionConflict:
            if expected is not None or attempt == _ATTEMPTS:
                raise
            if position is not None and (now_at := _position(store, env, key)) != position:
                raise _moved(key, action, now_at) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _moved(key: str, action: str, now_at: tuple[Any, Any] | None) -> VersionConflict:
    where = "gone" if now_at is None else f"{now_at[0]} at stage {now_at[1]}"
    return VersionConflict(
        f"the rollout of {key!r} changed meanwhile (now {where}): look again before you {action}"
    )


def _position(store: Store, env: str, key: str) -> tuple[Any, Any] | None:
    """Where a rollout is: its status and stage (``None`` without one)."""
    record = store.get_rollout(env, key)
    return None if record is None else (record.state.get("status"), record.state.get("stage"))


@attrs.frozen
class _Asked:
    """One attempt at an action: what ``transition`` was asked, and where the rollout was."""

    action: str
    actor: Actor | str
    reason: str | None
    expected: int | None
    evidence: Mapping[str, Any] | None
    now: float | None
    position: tuple[Any, Any] | None
    winner: str | None = None
    drop: tuple[str, ...] = ()


def _transition(store: Store, env: str, key: str, asked: _Asked) -> RolloutRecord:
    action, actor, reason, expected = asked.action, asked.actor, asked.reason, asked.expected
    evidence, now, position = asked.evidence, asked.now, asked.position
    real_time = now is None  # then the times are those of the commit (``stamp``)
    now = time.time() if now is None else now
    who = Actor.of(actor).name
    stamped: list[str] = []

    def at(*fields: str) -> None:
        for field in fields:
            state[field] = now
            stamped.append(field)

    try:
        record, plan, _ = load(store, env, key)
    except Invalid:
        if action not in ("rollback", "abort"):
            raise
        return _end_unparsed(store, env, key, action, actor=actor, reason=reason)
    if expected is not None and expected != record.version:  # the caller saw another state
        raise VersionConflict(
            f"the rollout of {key!r} is at version {record.version}, not {expected}",
            current_version=record.version,
        )
    now_at = (record.state.get("status"), record.state.get("stage"))
    if position is not None and now_at != position:  # it moved since the caller's reading
        raise _moved(key, action, now_at)
    state = dict(record.state)
    status = state.get("status")
    _, flag_body, flag_version = flag_of(store, env, key)
    share: float | None = None
    details: dict[str, Any] = {"from_status": status, "stage": state.get("stage")}
    if evidence is not None:
        details["evidence"] = dict(evidence)
    if action == "start":
        if status not in ENDED:
            raise Conflict(f"cannot start a rollout that is {status}")
        if flag_body.get("enabled", True) is False:
            raise Conflict(f"flag {key!r} is off (killed): turn it on before starting a rollout")
        _, problems = parse_plan(record.plan, flag_of(store, env, key)[0], catalogue(store, env))
        if problems:  # the catalogue or the flag changed since the plan was put
            raise Invalid.from_problems(problems, prefix="plan")
        state = {
            "status": "running", "stage": 1, "started_by": who, "plan_by": state.get("plan_by"),
            "approvals": [], "flag_version": flag_version + 1,
        }  # fmt: skip
        at("started_at", "stage_started_at")
        share = plan.stages[0].share
    elif action == "pause":
        if status not in ACTIVE:
            raise Conflict(f"cannot pause a rollout that is {status}")
        state["status"] = "paused"
        at("paused_at")
    elif action == "resume":
        if status not in ("paused", "errored"):
            raise Conflict(f"cannot resume a rollout that is {status}")
        if status == "errored":  # it waited on the control: the stage's weights come back
            share = plan.stages[int(state["stage"]) - 1].share
        state["status"] = "running"
        state.pop("error", None)
    elif action in ("advance", "approve"):
        if status not in ACTIVE:
            raise Conflict(f"cannot {action} a rollout that is {status}")
        number = int(state["stage"])
        stage = plan.stages[number - 1]
        choosing = plan.multi and number >= len(plan.stages)  # the winner is a person's choice
        if action == "advance" and (status == "awaiting_approval" or stage.approval or choosing):
            raise Conflict(f"stage {number} needs an approver's approval to advance" + (
                ", naming the winner" if choosing else ""
            ))  # fmt: skip
        if asked.winner is not None and not (action == "approve" and choosing):
            raise Invalid.from_problems([Problem(
                "winner", "only an approval of the last stage of a plan with several "
                "candidates names a winner",
            )])  # fmt: skip
        if action == "approve":
            if status != "awaiting_approval" and not stage.approval and not choosing:
                raise Conflict(f"stage {number} does not need approval")
            winner = _winner(plan, state, asked.winner) if choosing else None
            _check_approver(store, env, state, who)
            state["approvals"] = [
                *state.get("approvals", []),
                {"stage": number, "by": who, "at": now},
            ]
            if winner is not None:
                state["dropped"] = [*state.get("dropped", []), *(
                    {"candidate": c, "stage": number, "by": who, "at": now,
                     "reason": f"not chosen: {winner} won"}
                    for c in plan.candidates if c != winner and c not in dropped_of(state)
                )]  # fmt: skip
                state["winner"] = winner
                share = stage.share  # the whole share to the winner
                details["winner"] = winner
        if number >= len(plan.stages):
            state.update(status="completed", end_reason=reason)
            at("ended_at")
        else:
            state.update(status="running", stage=number + 1)
            at("stage_started_at", "advanced_at")
            share = plan.stages[number].share
    elif action == "repair":  # the controller puts the stage's weights back
        if status not in ACTIVE_ROLLOUT:
            raise Conflict(f"cannot repair a rollout that is {status}")
        share = plan.stages[int(state["stage"]) - 1].share
    elif action == "await":
        if status != "running":
            raise Conflict(f"cannot wait for approval while {status}")
        state["status"] = "awaiting_approval"
    elif action == "drop":  # the controller: candidates shown to harm, the others go on
        if status != "running" or not plan.multi:
            raise Conflict(f"cannot drop a candidate of a rollout that is {status}")
        gone = dropped_of(state)
        unknown = [c for c in asked.drop if c not in plan.candidates or c in gone]
        left = [c for c in plan.candidates if c not in gone and c not in asked.drop]
        if unknown or not asked.drop or not left:
            alive = ", ".join(c for c in plan.candidates if c not in gone)
            raise Conflict(f"cannot drop {', '.join(asked.drop) or 'nothing'}: the surviving "
                           f"candidates are {alive}")  # fmt: skip
        number = int(state["stage"])
        state["dropped"] = [*state.get("dropped", []), *(
            {"candidate": c, "stage": number, "by": who, "at": now, "reason": reason}
            for c in asked.drop
        )]  # fmt: skip
        details["dropped"] = list(asked.drop)
        share = plan.stages[number - 1].share
    elif action == "complete":
        if status not in ACTIVE:
            raise Conflict(f"cannot complete a rollout that is {status}")
        if plan.multi:
            raise Conflict("a rollout with several candidates completes when an approver "
                           "names the winner")  # fmt: skip
        state.update(status="completed", end_reason=reason)
        at("ended_at")
    elif action in ("rollback", "abort"):
        if status not in ACTIVE_ROLLOUT:
            raise Conflict(f"cannot {action} a rollout that is {status}")
        ended = "rolled_back" if action == "rollback" else "aborted"
        state.update(status=ended, end_reason=reason)
        at("ended_at", *(("rolled_back_at",) if action == "rollback" else ()))
        share = 0.0
    else:
        raise Invalid(f"unknown rollout action {action!r}")
    if evidence is not None:
        state["evidence"] = dict(evidence)
    details["to_status"] = state.get("status")  # the review reads how each step left it
    if action == "start":  # the plan this run follows, for its review (the plan may change)
        details["plan"] = dict(record.plan)
    flag_change = None
    if share is not None:
        weights = with_share(flag_body, plan, share, dropped=dropped_of(state),
                             winner=state.get("winner"))  # fmt: skip
        flag_change = {"body": weights, "expected_version": flag_version}
        details["share"] = share
        details["to_stage"] = state.get("stage")
        state["stage_flag_version"] = flag_version + 1  # exposures of this stage carry it
        if action == "rollback":
            state["rollback_flag_version"] = flag_version + 1
    return store.put_rollout(
        env, key, record.plan, state, expected_version=record.version, actor=actor,
        action=f"rollout.{action}", reason=reason, details=details, flag_change=flag_change,
        stamp=stamped if real_time else (),
    )  # fmt: skip


def _winner(plan: RolloutPlan, state: Mapping[str, Any], named: str | None) -> str:
    """The winner an approval of a multi-candidate plan's last stage names: a surviving
    candidate (the only one may go unnamed); else 422 on ``winner``."""
    surviving = [c for c in plan.candidates if c not in dropped_of(state)]
    if named is None and len(surviving) == 1:
        return surviving[0]
    if named is None or named not in surviving:
        choose = ", ".join(surviving)
        message = (
            f"name the winner among the surviving candidates: {choose}" if named is None
            else f"{named!r} is not a surviving candidate (surviving: {choose})"
        )  # fmt: skip
        raise Invalid.from_problems([Problem("winner", message)])
    return named


def _end_unparsed(
    store: Store, env: str, key: str, action: str, *, actor: Actor | str, reason: str | None
) -> RolloutRecord:
    """Roll back or abort a rollout whose stored plan no longer parses (it errored): the
    managed rule goes to the control from the plan's JSON as it is."""
    record = store.get_rollout(env, key)
    if record is None or record.state.get("status") not in ACTIVE_ROLLOUT:
        status = None if record is None else record.state.get("status")
        raise Conflict(f"cannot {action} a rollout that is {status}")
    resource = store.get_resource(env, "flag", key)
    ended = "rolled_back" if action == "rollback" else "aborted"
    state = {**record.state, "status": ended, "end_reason": reason}
    flag_change = ownership.control_change(resource.body, resource.version, record.plan)
    stamp = ("ended_at", "rolled_back_at") if action == "rollback" else ("ended_at",)
    return store.put_rollout(
        env, key, record.plan, state, expected_version=record.version, actor=actor,
        action=f"rollout.{action}", reason=reason,
        details={"from_status": record.state.get("status"), "to_status": ended, "share": 0.0},
        flag_change=flag_change, stamp=stamp,
    )  # fmt: skip


def mark_errored(store: Store, env: str, key: str, error: str) -> RolloutRecord | None:
    """The controller could not evaluate this rollout: put it on the control, ``errored``.

    Uses the stored plan's JSON as it is (the plan may be what failed to parse): the managed
    rule serves the control, the rollout keeps owning its flag until a person resumes, rolls
    back or aborts it. ``None`` if it is not active (nothing to protect)."""
    record = store.get_rollout(env, key)
    if record is None or record.state.get("status") not in ("running", "awaiting_approval"):
        return None
    resource = store.get_resource(env, "flag", key)
    state = {**record.state, "status": "errored", "error": error[:2000]}
    flag_change = ownership.control_change(resource.body, resource.version, record.plan)
    if flag_change is not None:
        state["stage_flag_version"] = resource.version + 1
    details = {"from_status": record.state.get("status"), "stage": record.state.get("stage"),
               "share": 0.0, "error": error[:2000]}  # fmt: skip
    return store.put_rollout(
        env, key, record.plan, state, expected_version=record.version,
        actor="controller", action="rollout.error",
        reason="the controller could not evaluate this rollout; it waits on the control",
        details=details, flag_change=flag_change, stamp=("errored_at",),
    )  # fmt: skip

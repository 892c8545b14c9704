"""The rollout pages: a rollout's stages, evidence and decisions, with its buttons (each role
sees the ones it may use), updated live over server-sent events; and the plan editor
(``plan.py``)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.responses import RedirectResponse, Response

from rollwise_server.api.common import threaded
from rollwise_server.auth import same_person
from rollwise_server.errors import NotFound, TooManyStreams
from rollwise_server.rollouts import review, review_document
from rollwise_server.storage.base import AuditQuery, RolloutRecord
from rollwise_server.times import utc_moment
from rollwise_server.ui import charts, sessions, words
from rollwise_server.ui.context import Console, endpoint, whole
from rollwise_server.ui.plan import plan_page

__all__ = ["plan_page", "rollout_action", "rollout_live", "rollout_page"]

LIVE_POLL_SECONDS = 1.0
"""How often the live page's stream looks for a new decision or new evidence."""
MAX_LIVE_STREAMS = 20
"""Live rollout pages one token may hold open in one server process (429 above): a person's
tabs, not a way to make the server poll its database thousands of times a second."""
LIVE_RETRY_AFTER = 30
ACTIONS = {
    "pause": ("write", ("running", "awaiting_approval", "errored")),
    "resume": ("write", ("paused", "errored")),
    "advance": ("write", ("running",)),
    "approve": ("approve", ("awaiting_approval", "running")),
    "rollback": ("write", ("running", "paused", "awaiting_approval", "errored")),
    "abort": ("write", ("running", "paused", "awaiting_approval", "errored")),
    "start": ("write", ("draft", "completed", "rolled_back", "aborted")),
}
"""Each button: the permission it needs and the states in which the API accepts it."""
MAX_TIMELINES = 12


def _moment(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            moment = utc_moment(value)
        except (ValueError, OverflowError):
            return None
        return None if moment is None else moment.timestamp()
    return None


def _series(
    decisions: list[dict[str, Any]], evidence: Mapping[str, Any] | None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each guardrail's interval at every decision (and now): ``(metric, scope)`` → points."""
    snapshots = [d["evidence"] for d in decisions if isinstance(d.get("evidence"), Mapping)]
    if isinstance(evidence, Mapping) and evidence not in snapshots:
        snapshots.append(evidence)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for snapshot in snapshots:
        at = _moment(snapshot.get("at"))
        if at is None:
            continue
        for finding in snapshot.get("findings") or []:
            key = (str(finding.get("metric")), charts.scope_of(finding))
            out.setdefault(key, []).append({**finding, "at": at})
    return out


def _this_run(entries: list[Any]) -> list[Any]:
    """The audit entries of the latest run (from its plan and start on), oldest first: a
    rollout started again after a rollback has a timeline of its own."""
    starts = [i for i, e in enumerate(entries) if e.action == "rollout.start"]
    if not starts:
        return entries
    first = starts[-1]
    if first > 0 and entries[first - 1].action == "rollout.plan":
        first -= 1
    return entries[first:]


async def _context(console: Console, env: str, key: str) -> dict[str, Any]:
    store = console.store
    flag = await threaded(store.get_resource, env, "flag", key)
    record: RolloutRecord | None = await threaded(store.get_rollout, env, key)
    if record is None:
        return {"flag": flag, "record": None, "rollout_status": "none"}
    entries = await threaded(
        store.audit,
        AuditQuery(env=env, resource_type="rollout", resource_key=key, limit=200),
    )
    entries = list(reversed(entries))  # oldest first
    this_run = _this_run(entries)
    decisions = [
        {
            "ts": e.ts,
            "action": e.action,
            "actor": e.actor,
            "reason": e.reason,
            "evidence": e.details.get("evidence"),
            "stage": e.details.get("to_stage"),
            "share": e.details.get("share"),
        }
        for e in this_run
    ]
    state = dict(record.state)
    runs = [run.summary() for run in reversed(await threaded(review.runs, store, env, key))]
    evidence = state.get("evidence") if isinstance(state.get("evidence"), Mapping) else None
    series = _series(decisions, evidence)
    findings = list((evidence or {}).get("findings") or [])
    shadowed = (evidence or {}).get("shadow")
    if isinstance(shadowed, Mapping):  # a shadow stage's paired scores: their own forests
        findings += list(shadowed.get("findings") or [])
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        by_metric.setdefault(str(finding.get("metric")), []).append(finding)
    forests = [
        charts.forest_plot(
            rows, title=f"{metric}: effect of the candidate by cohort", id_prefix=f"forest-{index}"
        )
        for index, (metric, rows) in enumerate(by_metric.items())
    ]
    ranked = sorted(series.items(), key=lambda item: (item[0][1] != "overall", item[0]))
    timelines = [
        {
            "metric": metric,
            "scope": scope,
            "svg": charts.interval_timeline(
                points,
                title=f"{metric}, {scope}: interval over time",
                id_prefix=f"timeline-{index}",
            ),
        }
        for index, ((metric, scope), points) in enumerate(ranked[:MAX_TIMELINES])
    ]
    plan = dict(record.plan)
    status = str(state.get("status", "draft"))
    stages = []
    for number, stage in enumerate(plan.get("stages") or [], start=1):
        current = state.get("stage")
        phase = (
            "done"
            if isinstance(current, int) and number < current
            else ("current" if number == current else "to come")
        )
        if status == "completed":
            phase = "done"
        elif status in ("rolled_back", "aborted") and phase == "current":
            phase = f"{status.replace('_', ' ')} here"
        stages.append({**stage, "number": number, "phase": phase})
    me = same_person(console.principal.owner or console.principal.name)
    blocked = ""
    if status == "awaiting_approval" or (
        isinstance(state.get("stage"), int)
        and status == "running"
        and 0 < state["stage"] <= len(stages)
        and stages[state["stage"] - 1].get("approval")
    ):
        environment = console.environment(env)
        if environment["protected"] and me in (
            same_person(str(state.get("started_by", ""))),
            same_person(str(state.get("plan_by", ""))),
        ):
            blocked = (
                "Two-person rule: you started this rollout or wrote its plan, so in a protected "
                "environment another person must approve its stages."
            )
    buttons = [
        name
        for name, (permission, states) in ACTIONS.items()
        if status in states and console.can(permission, env)  # type: ignore[arg-type]
    ]
    if status != "awaiting_approval" and "approve" in buttons:
        at = state.get("stage")
        needs = isinstance(at, int) and 0 < at <= len(stages) and stages[at - 1].get("approval")
        if not needs:
            buttons.remove("approve")
    if "advance" in buttons and any(s["phase"] == "current" and s.get("approval") for s in stages):
        buttons.remove("advance")
    srm = dict(state["srm"]) if isinstance(state.get("srm"), Mapping) else None
    if srm is None and evidence is not None and evidence.get("srm_p_value") is not None:
        srm = {
            "p": evidence["srm_p_value"],
            "counts": [evidence.get("units_control"), evidence.get("units_candidate")],
        }
    return {
        "flag": flag,
        "record": record,
        "plan": plan,
        "state": state,
        "rollout_status": status,
        "summary": words.stage(plan, state),
        "decisions": list(reversed(decisions)),
        "evidence": evidence,
        "forests": forests,
        "timelines": timelines,
        "stages": stages,
        "buttons": buttons,
        "blocked": blocked,
        "srm": srm,
        "runs": runs,
        "plan_json": json.dumps(plan, indent=1, ensure_ascii=False),
        "winners": _winners(plan, state, stages),
    }


def _winners(plan: Mapping[str, Any], state: Mapping[str, Any], stages: list[Any]) -> list[str]:
    """The candidates an approval may name the winner among: a plan with several at its last
    stage, those not dropped (empty otherwise)."""
    listed = plan.get("candidates")
    if not isinstance(listed, list) or len(listed) < 2 or state.get("stage") != len(stages):
        return []
    gone = {d.get("candidate") for d in state.get("dropped") or [] if isinstance(d, Mapping)}
    return [str(c) for c in listed if c not in gone]


@endpoint
async def rollout_page(console: Console) -> Response:
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    context = await _context(console, env, key)
    template = "rollout_part.html" if console.request.query_params.get("part") else "rollout.html"
    return console.page(template, env=env, environment=environment, key=key, **context)


@endpoint
async def rollout_action(console: Console) -> Response:
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    action = console.request.path_params["action"]
    environment = console.environment(env)
    if action not in ACTIONS:
        raise NotFound(f"no rollout action {action!r}")
    body: dict[str, Any] = {}
    reason = console.form.get("reason").strip()
    if reason:
        body["reason"] = reason
    winner = console.form.get("winner").strip()
    if action == "approve" and winner:
        body["winner"] = winner
    version = console.form.get("version")
    answer = await console.api(
        "POST",
        f"/api/v1/envs/{env}/flags/{key}/rollout/{action}",
        body,
        if_match=whole(version),
    )
    if answer.ok:
        return RedirectResponse(f"/ui/envs/{env}/flags/{key}/rollout?done={action}", 303)
    context = await _context(console, env, key)
    return console.page(
        "rollout.html",
        answer.status,
        env=env,
        environment=environment,
        key=key,
        refused=f"{action}: {answer.detail}",
        **context,
    )


@endpoint
async def rollout_live(console: Console) -> Response:
    """A stream of ``changed`` events: one whenever the rollout's record changes (a decision,
    new evidence, an action), for as long as the session lasts. The page's script reloads its
    live part on each; the page works without it."""
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    console.environment(env)
    store = console.store
    request = console.request
    open_streams: Counter[str] = request.app.state.__dict__.setdefault(
        "console_live_streams", Counter()
    )
    token = console.principal.token_id
    if open_streams[token] >= MAX_LIVE_STREAMS:
        raise TooManyStreams(
            f"this token has {MAX_LIVE_STREAMS} live rollout pages open; close one",
            retry_after=LIVE_RETRY_AFTER,
        )

    async def events() -> AsyncIterator[dict[str, str]]:
        # counted while it runs: a stream whose client left before it started holds nothing
        if open_streams[token] >= MAX_LIVE_STREAMS:
            return
        open_streams[token] += 1
        try:
            async for event in _changes(request, store, env, key):
                yield event
        finally:
            open_streams[token] -= 1

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-cache"})


async def _changes(request: Any, store: Any, env: str, key: str) -> AsyncIterator[dict[str, str]]:
    """A ``changed`` event whenever the rollout's record changes, while the session lasts."""
    seen: tuple[int, str] | None = None
    while True:
        record = await threaded(store.get_rollout, env, key)
        mark = (record.version, record.updated_at) if record is not None else (0, "")
        if seen is not None and mark != seen:
            yield {"event": "changed", "data": json.dumps({"version": mark[0]})}
        seen = mark
        await asyncio.sleep(LIVE_POLL_SECONDS)
        if await request.is_disconnected() or await sessions.current(request, touch=False) is None:
            return


@endpoint
async def review_page(console: Console) -> Response:
    """A rollout run's post-deployment review, with the form for its lessons learned."""
    params = console.request.path_params
    env, key, run = params["env"], params["key"], params["run"]
    environment = console.environment(env)
    found = await threaded(review.review, console.store, env, key, run)
    context = review_document.context(found)
    return console.page("rollout_review.html", env=env, environment=environment, key=key,
                        **context)  # fmt: skip


@endpoint
async def save_lessons(console: Console) -> Response:
    """Save the lessons learned through the API (its permission and its audit entry)."""
    params = console.request.path_params
    env, key, run = params["env"], params["key"], params["run"]
    environment = console.environment(env)
    body: dict[str, Any] = {"text": console.form.get("text")}
    reason = console.form.get("reason").strip()
    if reason:
        body["reason"] = reason
    answer = await console.api(
        "PUT", f"/api/v1/envs/{env}/flags/{key}/rollouts/{run}/lessons", body
    )
    if answer.ok:
        return RedirectResponse(f"/ui/envs/{env}/flags/{key}/rollouts/{run}/review?saved=1", 303)
    found = await threaded(review.review, console.store, env, key, run)
    return console.page(
        "rollout_review.html", answer.status, env=env, environment=environment, key=key,
        refused=f"lessons: {answer.detail}", **review_document.context(found),
    )  # fmt: skip

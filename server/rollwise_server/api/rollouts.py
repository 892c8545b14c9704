"""Rollout endpoints: the plan, its state and evidence, and the people's transitions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rollwise.errors import Problem
from rollwise_server.api.common import (
    authorize,
    expected_version,
    json_response,
    protected_reason,
    read_json,
    reason_of,
    state,
    threaded,
)
from rollwise_server.errors import BadRequest, Invalid, NotFound
from rollwise_server.models import LessonsWrite, decode
from rollwise_server.rollouts import review, review_document, transitions
from rollwise_server.storage.base import RolloutRecord

__all__ = ["get_review", "get_rollout", "list_runs", "put_lessons", "put_rollout", "rollout_action"]

ACTIONS = {
    "start": "write",
    "pause": "write",
    "resume": "write",
    "advance": "write",
    "rollback": "write",
    "abort": "write",
    "approve": "approve",
}
NEEDS_REASON = {"rollback": "roll back a rollout", "abort": "abort a rollout"}
"""Actions that need a ``reason`` in a protected environment."""


def render(record: RolloutRecord) -> dict[str, Any]:
    return {
        "flag": record.flag,
        "env": record.env,
        "version": record.version,
        "plan": dict(record.plan),
        "state": dict(record.state),
        "updated_at": record.updated_at,
    }


async def _publish(request: Request, env: str) -> None:
    server = state(request)
    server.publish(env, await threaded(server.store.revision, env))


async def get_rollout(request: Request) -> Response:
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "read", env)
    record = await threaded(state(request).store.get_rollout, env, key)
    if record is None:
        raise NotFound(f"flag {key!r} has no rollout plan in {env!r}")
    return json_response(render(record), headers={"ETag": f'"{record.version}"'})


async def put_rollout(request: Request) -> Response:
    env, key = request.path_params["env"], request.path_params["key"]
    principal = await authorize(request, "write", env)
    body = await read_json(request)
    record = await threaded(
        transitions.put_plan, state(request).store, env, key, body,
        expected=expected_version(request, body, required=False), actor=principal.actor,
        reason=reason_of(request, body),
    )  # fmt: skip
    return json_response(render(record), headers={"ETag": f'"{record.version}"'})


async def rollout_action(request: Request) -> Response:
    env, key = request.path_params["env"], request.path_params["key"]
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise NotFound(f"no rollout action {action!r}")
    principal = await authorize(request, ACTIONS[action], env)  # type: ignore[arg-type]
    body = await read_json(request, required=False)
    if action in NEEDS_REASON:
        await protected_reason(request, env, reason_of(request, body), NEEDS_REASON[action])
    winner = body.get("winner")
    if winner is not None and not isinstance(winner, str):
        raise Invalid.from_problems([Problem("winner", "must be a candidate of the plan")])
    if winner is not None and action != "approve":  # refused, never ignored
        raise Invalid.from_problems([Problem(
            "winner", "only an approval of the last stage of a plan with several candidates "
            "names a winner",
        )])  # fmt: skip
    record = await threaded(
        transitions.transition, state(request).store, env, key, action, actor=principal.actor,
        reason=reason_of(request, body), expected=expected_version(request, body, required=False),
        winner=winner,
    )  # fmt: skip
    await _publish(request, env)
    if action == "abort":
        text = f"rollwise: rollout of {key} in {env} ABORTED by {principal.actor.name}"
        await threaded(
            state(request).webhooks.notify, "rollout.aborted", text,
            {"env": env, "flag": key, "reason": record.state.get("end_reason"),
             "actor": principal.actor.name},
        )  # fmt: skip
    return json_response(render(record))


REVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""The review page is a standalone document: its own inline styles and SVG, nothing else."""


async def list_runs(request: Request) -> Response:
    """The flag's rollout runs, newest first."""
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "read", env)
    found = await threaded(review.runs, state(request).store, env, key)
    return json_response({"runs": [run.summary() for run in reversed(found)]})


def _review_format(request: Request) -> str:
    asked = request.query_params.get("format")
    if asked is not None:
        if asked not in ("markdown", "html", "json"):
            raise BadRequest("format: must be markdown, html or json")
        return asked
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return "html"
    if "application/json" in accept and "text/markdown" not in accept:
        return "json"
    return "markdown"


def _run_id(request: Request) -> int:
    """The ``{run}`` of the path: a run id (a positive integer), or 404."""
    text = request.path_params["run"]
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and int(text) >= 1):
        raise NotFound(f"no rollout run {text!r}: a run id is a positive integer")
    return int(text)


async def get_review(request: Request) -> Response:
    """A run's post-deployment review: Markdown (the default), HTML or JSON."""
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "read", env)
    form = _review_format(request)
    found = await threaded(review.review, state(request).store, env, key, _run_id(request))
    if form == "json":
        return json_response(found.to_json())
    if form == "html":
        page = await threaded(review_document.html, found)
        return HTMLResponse(page, headers={"Content-Security-Policy": REVIEW_CSP})
    return Response(review_document.markdown(found), media_type="text/markdown; charset=utf-8")


async def put_lessons(request: Request) -> Response:
    """Replace a run's lessons learned: a new ``rollout.lessons`` audit entry (every edit kept)."""
    env, key = request.path_params["env"], request.path_params["key"]
    principal = await authorize(request, "write", env)
    run_id = _run_id(request)
    body = decode(LessonsWrite, await read_json(request))
    store = state(request).store
    await threaded(review.find_run, store, env, key, run_id)  # 404 for a run it does not have
    entry = await threaded(
        store.append_audit, actor=principal.actor, action=review.LESSONS, env=env,
        resource_type="rollout", resource_key=key, reason=body.reason,
        details={"run": run_id, "text": body.text},
    )  # fmt: skip
    edits = await threaded(review.lessons_of, store, env, key, run_id)
    return json_response({"run": run_id, "text": body.text, "by": entry.actor, "at": entry.ts,
                          "edit": entry.id, "edits": len(edits)})  # fmt: skip

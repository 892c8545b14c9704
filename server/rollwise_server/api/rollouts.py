"""Rollout endpoints: the plan, its state and evidence, and the people's transitions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

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
from rollwise_server.errors import NotFound
from rollwise_server.rollouts import transitions
from rollwise_server.storage.base import RolloutRecord

__all__ = ["get_rollout", "put_rollout", "rollout_action"]

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
    record = await threaded(
        transitions.transition, state(request).store, env, key, action, actor=principal.actor,
        reason=reason_of(request, body), expected=expected_version(request, body, required=False),
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

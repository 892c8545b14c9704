"""Flag actions beyond editing: kill, revert to an earlier version, promote elsewhere."""

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
from rollwise_server.api.resources import render, write
from rollwise_server.errors import BadRequest, Conflict, NotFound
from rollwise_server.models import Promote, Revert, VersionedWrite, decode
from rollwise_server.storage.base import Resource

__all__ = ["kill", "promote", "revert"]

_RETRIES = 3


async def _current(request: Request, env: str, key: str) -> Resource:
    resource = await threaded(state(request).store.get_resource, env, "flag", key)
    if resource.archived:
        raise Conflict(f"flag {key!r} is archived", current_version=resource.version)
    return resource


async def kill(request: Request) -> Response:
    """Serve the off variant to everyone now: a new version with ``enabled: false``.

    An active rollout of the flag ends in the same transaction (``aborted``, reason
    ``killed``; see ``rollouts.ownership``)."""
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "write", env)
    body = await read_json(request, required=False)
    decode(VersionedWrite, body, status=400)
    expected = expected_version(request, body, required=False)
    reason = reason_of(request, body)
    await protected_reason(request, env, reason, "kill a flag")
    for _ in range(_RETRIES):  # an emergency stop applies to whatever version is current
        current = await _current(request, env, key)
        if expected is not None and current.version != expected:
            raise Conflict(
                f"flag {key!r} is at version {current.version}", current_version=current.version
            )
        try:
            resource = await write(
                request, env, "flag", key, {**current.body, "enabled": False},
                expected=current.version, action="flag.kill", reason=reason,
            )  # fmt: skip
        except Conflict:
            if expected is not None:
                raise
            continue
        return json_response(render(resource))
    raise Conflict(f"flag {key!r} kept changing; try again")


async def revert(request: Request) -> Response:
    """A new version whose configuration is that of ``to_version``."""
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "write", env)
    body = await read_json(request)
    target = decode(Revert, body, status=400).to_version
    await protected_reason(request, env, reason_of(request, body), "revert a flag")
    store = state(request).store
    match = await threaded(store.history, env, "flag", key, before=target + 1, limit=1)
    if not match or match[0].version != target or match[0].archived:
        raise NotFound(f"flag {key!r} has no version {target} to revert to")
    (latest,) = await threaded(store.history, env, "flag", key, limit=1)
    expected = expected_version(request, body, required=False) or latest.version
    restored: dict[str, Any] = dict(match[0].body)
    resource = await write(
        request, env, "flag", key, restored, expected=expected, action="flag.revert",
        reason=reason_of(request, body), details={"to_version": target},
    )  # fmt: skip
    return json_response(render(resource))


async def promote(request: Request) -> Response:
    """Copy a flag's configuration to another environment (a normal, audited change there)."""
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "read", env)
    body = await read_json(request)
    target = decode(Promote, body, status=400).to
    if target == env:
        raise BadRequest("to: must be another environment")
    await authorize(request, "write", target)
    await protected_reason(request, target, reason_of(request, body), "promote a flag into it")
    source = await _current(request, env, key)
    store = state(request).store
    try:
        existing: Resource | None = await threaded(store.get_resource, target, "flag", key)
    except NotFound:
        await threaded(store.revision, target)  # 404 for an unknown environment
        existing = None
    expected = expected_version(request, body, required=False)
    if existing is not None and not existing.archived:
        expected = expected or existing.version
    else:
        expected = None
    resource = await write(
        request, target, "flag", key, dict(source.body), expected=expected,
        action="flag.promote", reason=reason_of(request, body),
        details={"from_env": env, "from_version": source.version},
    )  # fmt: skip
    return json_response(render(resource), 200 if existing is not None else 201)

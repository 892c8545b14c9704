"""Monitor endpoints: put, read, acknowledge and delete a flag's monitors (docs/monitors.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rollwise._parse import KEY_PATTERN
from rollwise_server.api.common import (
    authorize,
    expected_version,
    json_response,
    read_json,
    reason_of,
    state,
    threaded,
)
from rollwise_server.errors import Conflict, Invalid, NotFound, VersionConflict
from rollwise_server.monitoring.spec import parse_monitor
from rollwise_server.rollouts import transitions
from rollwise_server.storage.base import MonitorRecord, Store

__all__ = ["acknowledge", "delete_monitor", "get_monitor", "list_monitors", "put_monitor"]

RETRIES = 5
"""Attempts at a person's write that a controller's check keeps overtaking."""


def render(record: MonitorRecord) -> dict[str, Any]:
    return {
        "env": record.env, "flag": record.flag, "name": record.name, "version": record.version,
        "spec": dict(record.spec), "state": dict(record.state), "updated_at": record.updated_at,
    }  # fmt: skip


def _names(request: Request) -> tuple[str, str, str]:
    env, key, name = (request.path_params[k] for k in ("env", "key", "name"))
    if not KEY_PATTERN.fullmatch(name):
        raise NotFound(f"no monitor {name!r}: a monitor's name is a key (letters, digits, . _ -)")
    return env, key, name


def _existing(store: Store, env: str, key: str, name: str) -> MonitorRecord:
    store.get_resource(env, "flag", key)  # 404 for an unknown environment or flag
    record = store.get_monitor(env, key, name)
    if record is None:
        raise NotFound(f"flag {key!r} has no monitor {name!r} in {env!r}")
    return record


async def list_monitors(request: Request) -> Response:
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "read", env)
    store = state(request).store
    await threaded(store.get_resource, env, "flag", key)
    found = await threaded(store.monitors, env, key)
    return json_response({"monitors": [render(r) for r in found]})


async def get_monitor(request: Request) -> Response:
    env, key, name = _names(request)
    await authorize(request, "read", env)
    record = await threaded(_existing, state(request).store, env, key, name)
    return json_response(render(record), headers={"ETag": f'"{record.version}"'})


def _put(
    store: Store, env: str, key: str, name: str, body: dict[str, Any], expected: int | None,
    actor: Any, reason: str | None,
) -> MonitorRecord:  # fmt: skip
    flag, _, _ = transitions.flag_of(store, env, key)
    rollout = store.get_rollout(env, key)
    spec, problems = parse_monitor(
        body, flag, transitions.catalogue(store, env), None if rollout is None else rollout.plan
    )
    if spec is None:
        raise Invalid.from_problems(problems)
    for _ in range(RETRIES):
        current = store.get_monitor(env, key, name)
        same = current is not None and current.spec == spec.to_json()
        try:  # the same spec keeps the detectors' state, as the last check left it
            record = store.put_monitor(
                env, key, name, spec.to_json(),
                dict(current.state) if same and current else {"status": "ok", "checks": 0},
                expected_version=expected, actor=actor, action="monitor.put", reason=reason,
                expected_updated_at=current.updated_at if same and current else None,
            )  # fmt: skip
        except VersionConflict:
            if expected is not None and (current is None or current.version != expected):
                raise
            continue  # a check wrote the state meanwhile: read it again
        assert record is not None  # noqa: S101 - a spec was given
        return record
    raise Conflict(f"monitor {name!r} kept being checked; try again")


async def put_monitor(request: Request) -> Response:
    """Create or replace a monitor (its detectors start afresh when the spec changes)."""
    env, key, name = _names(request)
    principal = await authorize(request, "write", env)
    body = await read_json(request)
    reason = reason_of(request, body)
    spec = {k: v for k, v in body.items() if k not in ("version", "reason")}
    record = await threaded(
        _put, state(request).store, env, key, name, spec,
        expected_version(request, body, required=False), principal.actor, reason,
    )  # fmt: skip
    return json_response(render(record), headers={"ETag": f'"{record.version}"'})


def _acknowledge(
    store: Store, env: str, key: str, name: str, actor: Any, reason: str | None
) -> MonitorRecord:
    for _ in range(RETRIES):
        record = _existing(store, env, key, name)
        try:  # only the status changes: the state a check left is kept, never overwritten
            updated = store.put_monitor(
                env, key, name, record.spec, {**record.state, "status": "ok"},
                expected_version=record.version, actor=actor, action="monitor.acknowledge",
                reason=reason, details={"alerts": len(record.state.get("alerts") or [])},
                expected_updated_at=record.updated_at,
            )  # fmt: skip
        except VersionConflict:
            continue
        assert updated is not None  # noqa: S101 - a spec was given
        return updated
    raise Conflict(f"monitor {name!r} kept being checked; try again")


async def acknowledge(request: Request) -> Response:
    """A person saw the alert: the monitor is ``ok`` again (the alerts stay in its history)."""
    env, key, name = _names(request)
    principal = await authorize(request, "write", env)
    body = await read_json(request) if await request.body() else {}
    record = await threaded(
        _acknowledge, state(request).store, env, key, name, principal.actor,
        reason_of(request, body),
    )  # fmt: skip
    return json_response(render(record))


def _delete(store: Store, env: str, key: str, name: str, actor: Any, reason: str | None) -> None:
    record = _existing(store, env, key, name)
    store.put_monitor(env, key, name, None, {}, expected_version=record.version, actor=actor,
                      action="monitor.delete", reason=reason)  # fmt: skip


async def delete_monitor(request: Request) -> Response:
    env, key, name = _names(request)
    principal = await authorize(request, "write", env)
    await threaded(_delete, state(request).store, env, key, name, principal.actor,
                   request.query_params.get("reason"))  # fmt: skip
    return Response(status_code=204)

"""Flags, segments and metrics: list, get, create, replace, archive and history (one code path,
three kinds).

A flag in the API has the rules document's shape plus its ``key``; the server adds
``archived``, ``updated_at`` and ``updated_by`` when it answers and ignores them when it reads.
Every flag or segment write is validated with the SDK's own parser (``strict=True``: unknown
fields and operators are errors) inside the store's transaction, against the environment's
current segments; a metric with ``catalogue.parse_metric``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rollwise._parse import KEY_PATTERN
from rollwise.errors import Problem, RulesParseError
from rollwise.rules import Flag, Segment
from rollwise_server import models
from rollwise_server.api.common import (
    authorize,
    expected_version,
    json_response,
    model_response,
    protected_reason,
    read_json,
    reason_of,
    state,
    threaded,
)
from rollwise_server.catalogue import parse_metric
from rollwise_server.errors import Invalid
from rollwise_server.storage.base import Kind, Resource
from rollwise_server.times import utc_moment

__all__ = ["validator", "write"]

_META = ("key", "archived", "updated_at", "updated_by", "reason", "stale")


def render(resource: Resource) -> dict[str, Any]:
    out = {
        "key": resource.key,
        **resource.body,
        "version": resource.version,  # an archived body keeps its last version
        "archived": resource.archived,
        "updated_at": resource.updated_at,
        "updated_by": resource.updated_by,
    }
    if resource.kind == "flag":
        out["stale"] = is_stale(resource.body)
    return out


def answer(
    resource: Resource, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A resource as the API answers it: a metric encoded from its model."""
    if resource.kind == "metric":
        metric = msgspec.convert(render(resource), models.Metric)
        return model_response(metric, status, headers)
    return json_response(render(resource), status, headers)


def is_stale(body: Any) -> bool:
    """A flag past its schedule's end: it serves only its off variant and can be cleaned up."""
    schedule = body.get("schedule") if isinstance(body, Mapping) else None
    end = schedule.get("end") if isinstance(schedule, Mapping) else None
    if not isinstance(end, str):
        return False
    try:
        moment = utc_moment(end)
    except OverflowError:  # before the calendar's start in UTC: long past
        return True
    return moment is not None and moment <= datetime.now(UTC)


def validator(kind: Kind, key: str) -> Any:
    """Validate a body with the SDK's parser; return the canonical JSON the store keeps."""

    def validate(body: dict[str, Any], segments: Mapping[str, int]) -> dict[str, Any]:
        data = {k: v for k, v in body.items() if k not in _META}
        if kind == "metric":
            metric, problems = parse_metric(key, data)
            if metric is None:
                raise Invalid.from_problems(problems)
            return {**metric.to_json(), "version": body["version"]}
        try:
            if kind == "flag":
                return Flag.from_json(data, key=key, segments=segments, strict=True).to_json()
            data.pop("version", None)
            segment = Segment.from_json(data, key=key, strict=True).to_json()
            return {**segment, "version": body["version"]}
        except RulesParseError as exc:
            raise Invalid.from_problems(exc.problems) from None

    return validate


_KINDS: dict[str, Kind] = {"flags": "flag", "segments": "segment", "metrics": "metric"}


def kind_of(request: Request) -> Kind:
    return _KINDS[request.url.path.split("/")[5]]


async def write(
    request: Request,
    env: str,
    kind: Kind,
    key: str,
    body: dict[str, Any] | None,
    *,
    expected: int | None,
    action: str,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> Resource:
    server = state(request)
    actor = request.state.principal.actor
    resource = await threaded(
        server.store.write_resource,
        env,
        kind,
        key,
        body,
        expected_version=expected,
        action=action,
        actor=actor,
        reason=reason,
        validate=validator(kind, key),
        details=details,
    )
    if kind == "metric":
        return resource
    revision = await threaded(server.store.revision, env)
    server.publish(env, revision)
    if kind == "flag" and resource.body.get("enabled", True) is False:
        await _notify_if_killed(request, env, key, resource)
    return resource


async def _notify_if_killed(request: Request, env: str, key: str, resource: Resource) -> None:
    """The rollout webhook when this write (a kill by any route) ended the flag's rollout."""
    server = state(request)
    record = await threaded(server.store.get_rollout, env, key)
    if record is None or record.state.get("killed_flag_version") != resource.version:
        return
    text = f"rollwise: rollout of {key} in {env} ABORTED: the flag was killed"
    await threaded(
        server.webhooks.notify, "rollout.aborted", text,
        {"env": env, "flag": key, "reason": "killed", "actor": resource.updated_by,
         "flag_version": resource.version},
    )  # fmt: skip


async def list_resources(request: Request) -> Response:
    env, kind = request.path_params["env"], kind_of(request)
    await authorize(request, "read", env)
    archived = request.query_params.get("archived", "false").lower() in ("1", "true", "yes")
    store = state(request).store
    items = await threaded(store.list_resources, env, kind, archived=archived)
    rendered = [render(r) for r in items]
    if request.query_params.get("stale", "").lower() in ("1", "true", "yes"):
        rendered = [r for r in rendered if r.get("stale")]
    if kind != "metric":
        return json_response({f"{kind}s": rendered})
    metrics = msgspec.convert(rendered, list[models.Metric])
    defined = {r.key for r in items if not r.archived} | {
        r.body[part] for r in items if not r.archived for part in ("numerator", "denominator")
        if isinstance(r.body.get(part), str)
    }  # fmt: skip
    seen = await threaded(store.seen_metrics, env)
    undefined = [
        models.UndefinedMetric(metric, events, last)
        for metric, events, last in seen
        if metric not in defined
    ]
    return model_response(models.MetricList(metrics, undefined))


async def get_resource(request: Request) -> Response:
    env, key, kind = request.path_params["env"], request.path_params["key"], kind_of(request)
    await authorize(request, "read", env)
    resource = await threaded(state(request).store.get_resource, env, kind, key)
    return answer(resource, headers={"ETag": f'"{resource.version}"'})


async def create_resource(request: Request) -> Response:
    env, kind = request.path_params["env"], kind_of(request)
    await authorize(request, "write", env)
    body = await read_json(request)
    key = body.get("key")
    if not isinstance(key, str):
        raise Invalid.from_problems([_problem("key", f"is required: the {kind} key")])
    if KEY_PATTERN.fullmatch(key) is None:
        raise Invalid.from_problems(
            [_problem("key", "must be 1-128 letters, digits, '_', '.' or '-'")]
        )
    resource = await write(
        request, env, kind, key, body, expected=None, action=f"{kind}.create",
        reason=reason_of(request, body),
    )  # fmt: skip
    return answer(resource, 201, {"ETag": f'"{resource.version}"'})


async def replace_resource(request: Request) -> Response:
    env, key, kind = request.path_params["env"], request.path_params["key"], kind_of(request)
    await authorize(request, "write", env)
    body = await read_json(request)
    expected = expected_version(request, body, required=True)
    reason = reason_of(request, body)
    if kind == "flag" and body.get("enabled") is False:  # a kill by another route
        current = await threaded(state(request).store.get_resource, env, kind, key)
        if current.body.get("enabled", True) is not False:
            await protected_reason(request, env, reason, "kill a flag")
    resource = await write(
        request, env, kind, key, body, expected=expected, action=f"{kind}.update", reason=reason
    )
    return answer(resource, headers={"ETag": f'"{resource.version}"'})


async def archive_resource(request: Request) -> Response:
    env, key, kind = request.path_params["env"], request.path_params["key"], kind_of(request)
    await authorize(request, "write", env)
    body = await read_json(request, required=False)
    expected = expected_version(request, body, required=False)
    if expected is None:
        expected = (await threaded(state(request).store.get_resource, env, kind, key)).version
    resource = await write(
        request, env, kind, key, None, expected=expected, action=f"{kind}.archive",
        reason=reason_of(request, body),
    )  # fmt: skip
    return answer(resource)


def _problem(path: str, message: str) -> Problem:
    return Problem(path, message)

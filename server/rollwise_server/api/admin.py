"""Environments, tokens and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import Response

from rollwise._parse import KEY_PATTERN
from rollwise_server.api.common import (
    authorize,
    json_response,
    read_json,
    reason_of,
    state,
    threaded,
)
from rollwise_server.auth import ROLES, hash_secret, new_secret
from rollwise_server.errors import BadRequest, Invalid
from rollwise_server.storage.base import AuditEntry, AuditQuery, TokenRecord

__all__ = [
    "create_environment",
    "create_token",
    "list_audit",
    "list_environments",
    "list_tokens",
    "revoke_token",
]


async def list_environments(request: Request) -> Response:
    await authorize(request, "read")
    return json_response({"environments": await threaded(state(request).store.environments)})


async def create_environment(request: Request) -> Response:
    principal = await authorize(request, "admin")
    body = await read_json(request)
    key = body.get("key")
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise Invalid("key: must be 1-128 letters, digits, '_', '.' or '-'", problems=[
            {"path": "key", "message": "must be 1-128 letters, digits, '_', '.' or '-'"}
        ])  # fmt: skip
    created = await threaded(
        state(request).store.create_environment, key, actor=principal.actor,
        reason=reason_of(request, body),
    )  # fmt: skip
    state(request).publish(key, 0)
    return json_response(created, 201)


def _token(record: TokenRecord) -> dict[str, Any]:
    return attrs.asdict(record)


async def create_token(request: Request) -> Response:
    principal = await authorize(request, "admin")
    body = await read_json(request)
    problems = []
    name, role, env = body.get("name"), body.get("role"), body.get("env")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        problems.append({"path": "name", "message": "must be a string of 1-100 characters"})
    if role not in ROLES:
        problems.append({"path": "role", "message": f"must be one of {', '.join(ROLES)}"})
    if role == "sdk" and not isinstance(env, str):
        problems.append({"path": "env", "message": "an sdk token needs its environment"})
    if role != "sdk" and env is not None:
        problems.append({"path": "env", "message": "only sdk tokens are bound to an environment"})
    if problems:
        raise Invalid(
            "; ".join(f"{p['path']}: {p['message']}" for p in problems), problems=problems
        )
    secret = new_secret()
    record = await threaded(
        state(request).store.create_token, name=name, role=role, env=env,
        secret_hash=hash_secret(secret), actor=principal.actor,
    )  # fmt: skip
    return json_response({**_token(record), "token": secret}, 201)


async def list_tokens(request: Request) -> Response:
    await authorize(request, "admin")
    records = await threaded(state(request).store.tokens)
    return json_response({"tokens": [_token(r) for r in records]})


async def revoke_token(request: Request) -> Response:
    principal = await authorize(request, "admin")
    record = await threaded(
        state(request).store.revoke_token, request.path_params["token_id"], actor=principal.actor
    )
    state(request).auth.forget()
    return json_response(_token(record))


def _entry(entry: AuditEntry) -> dict[str, Any]:
    return attrs.asdict(entry)


def _moment(value: str | None, name: str) -> str | None:
    """An RFC 3339 time as the audit log stores it (UTC, microseconds), or 400."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: must be an RFC 3339 date-time, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):
        raise BadRequest(f"{name}: {value!r} is out of range") from None


async def list_audit(request: Request) -> Response:
    await authorize(request, "read")
    params = request.query_params
    try:
        limit = int(params.get("limit", "100"))
        before = min(max(int(params["before"]), 0), 2**63 - 1) if "before" in params else None
    except ValueError:
        raise BadRequest("limit and before must be integers") from None
    if not 1 <= limit <= 1000:
        raise BadRequest("limit: must be between 1 and 1000")
    resource_type = params.get("resource_type")
    resource_key = params.get("resource_key")
    if "flag" in params:
        resource_type, resource_key = "flag", params["flag"]
    if "segment" in params:
        resource_type, resource_key = "segment", params["segment"]
    since, until = _moment(params.get("since"), "since"), _moment(params.get("until"), "until")
    query = AuditQuery(
        env=params.get("env"),
        resource_type=resource_type,
        resource_key=resource_key,
        actor=params.get("actor"),
        action=params.get("action"),
        since=since,
        until=until,
        before_id=before,
        limit=limit + 1,
    )
    entries = await threaded(state(request).store.audit, query)
    page = entries[:limit]
    next_cursor = page[-1].id if len(entries) > limit else None
    return json_response({"entries": [_entry(e) for e in page], "next_before": next_cursor})

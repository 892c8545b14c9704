"""Environments, tokens and the audit log."""

from __future__ import annotations

import re
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
from rollwise_server.auth import ROLES, hash_secret, new_secret, require
from rollwise_server.errors import BadRequest, Invalid
from rollwise_server.storage.base import AuditEntry, AuditQuery, TokenRecord

__all__ = [
    "create_environment",
    "create_token",
    "get_environment",
    "list_audit",
    "list_environments",
    "list_tokens",
    "revoke_token",
    "update_environment",
]


async def list_environments(request: Request) -> Response:
    principal = await authorize(request, "read")
    environments = await threaded(state(request).store.environments)
    if principal.envs is not None:
        environments = [e for e in environments if e["key"] in principal.envs]
    return json_response({"environments": environments})


async def get_environment(request: Request) -> Response:
    env = request.path_params["env"]
    await authorize(request, "read", env)
    return json_response(await threaded(state(request).store.environment, env))


def _problems(problems: list[dict[str, str]]) -> Invalid:
    return Invalid(
        "invalid request body: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems),
        problems=problems,
    )


async def create_environment(request: Request) -> Response:
    principal = await authorize(request, "admin", everywhere=True)
    body = await read_json(request)
    key, protected = body.get("key"), body.get("protected", False)
    problems = []
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        problems.append(
            {"path": "key", "message": "must be 1-128 letters, digits, '_', '.' or '-'"}
        )
    if not isinstance(protected, bool):
        problems.append({"path": "protected", "message": "must be true or false"})
    problems += [{"path": str(k), "message": "unknown field"} for k in body
                 if k not in ("key", "protected", "reason")]  # fmt: skip
    if problems:
        raise _problems(problems)
    created = await threaded(
        state(request).store.create_environment, key, actor=principal.actor,
        reason=reason_of(request, body), protected=protected,
    )  # fmt: skip
    state(request).publish(str(key), 0)
    return json_response(created, 201)


async def update_environment(request: Request) -> Response:
    """``PATCH {"protected": bool, "reason": "..."}``: admin-only, with a reason, audited."""
    env = request.path_params["env"]
    principal = await authorize(request, "admin", env)
    body = await read_json(request)
    protected, reason = body.get("protected"), reason_of(request, body)
    problems = [{"path": str(k), "message": "unknown field"} for k in body
                if k not in ("protected", "reason")]  # fmt: skip
    if not isinstance(protected, bool):
        problems.append({"path": "protected", "message": "is required: true or false"})
    if reason is None or not reason.strip():
        problems.append(
            {"path": "reason", "message": "is required to change an environment's protection"}
        )
    if problems:
        raise _problems(problems)
    updated = await threaded(
        state(request).store.set_protected, env, bool(protected), actor=principal.actor,
        reason=str(reason),
    )  # fmt: skip
    return json_response(updated)


def _token(record: TokenRecord) -> dict[str, Any]:
    out = attrs.asdict(record)
    out["envs"] = None if record.envs is None else list(record.envs)
    return out


_OWNER = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def _expiry(value: Any, problems: list[dict[str, str]]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                utc = moment.astimezone(UTC)
            except (OverflowError, ValueError):
                problems.append({"path": "expires_at", "message": "is out of range"})
                return None
            if utc <= datetime.now(UTC):
                problems.append({"path": "expires_at", "message": "must be in the future"})
                return None
            return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    problems.append(
        {"path": "expires_at", "message": "must be an RFC 3339 date-time or null (never)"}
    )
    return None


async def create_token(request: Request) -> Response:
    principal = await authorize(request, "admin", everywhere=True)
    body = await read_json(request)
    problems: list[dict[str, str]] = []
    known = ("name", "owner", "role", "env", "envs", "expires_at")
    problems += [{"path": str(k), "message": "unknown field"} for k in body if k not in known]
    name, role, env = body.get("name"), body.get("role"), body.get("env")
    owner, envs = body.get("owner"), body.get("envs")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        problems.append({"path": "name", "message": "must be a string of 1-100 characters"})
    if role not in ROLES:
        problems.append({"path": "role", "message": f"must be one of {', '.join(ROLES)}"})
    if owner is None and role == "sdk":
        owner = name  # an SDK key belongs to the application it is named for
    if not isinstance(owner, str) or _OWNER.fullmatch(owner.strip()) is None:
        problems.append({
            "path": "owner",
            "message": "is required: the person the token belongs to (1-200 characters)",
        })  # fmt: skip
    if envs is not None and (
        not isinstance(envs, list)
        or not envs
        or not all(isinstance(e, str) and KEY_PATTERN.fullmatch(e) for e in envs)
    ):
        problems.append(
            {"path": "envs", "message": "must be a non-empty list of environments, or null (all)"}
        )
        envs = None
    if role == "sdk":
        if env is None and isinstance(envs, list) and len(envs) == 1:
            env = envs[0]
        if not isinstance(env, str):
            problems.append({"path": "env", "message": "an sdk token needs its one environment"})
        elif envs is not None and envs != [env]:
            problems.append({"path": "envs", "message": "an sdk token has one environment"})
    elif env is not None:
        problems.append(
            {"path": "env", "message": "only sdk tokens take env; use envs for other roles"}
        )
    expires_at = _expiry(body.get("expires_at"), problems)
    known_envs = {e["key"] for e in await threaded(state(request).store.environments)}
    for i, each in enumerate(envs or []):
        if isinstance(each, str) and each not in known_envs:
            problems.append({"path": f"envs[{i}]", "message": f"no environment {each!r}"})
    if problems:
        raise _problems(problems)
    secret = new_secret()
    record = await threaded(
        state(request).store.create_token, name=name, role=role,
        env=env if role == "sdk" else None, secret_hash=hash_secret(secret),
        actor=principal.actor, owner=" ".join(str(owner).split()), envs=envs,
        expires_at=expires_at,
    )  # fmt: skip
    return json_response({**_token(record), "token": secret}, 201)


async def list_tokens(request: Request) -> Response:
    await authorize(request, "admin", everywhere=True)
    records = await threaded(state(request).store.tokens)
    return json_response({"tokens": [_token(r) for r in records]})


async def revoke_token(request: Request) -> Response:
    principal = await authorize(request, "admin", everywhere=True)
    record = await threaded(
        state(request).store.revoke_token, request.path_params["token_id"], actor=principal.actor
    )
    state(request).auth.forget()
    state(request).broadcaster.close_token(record.id)
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
    principal = await authorize(request, "read")
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
    resource_types: tuple[str, ...] | None = None
    if "flag" in params:  # the flag's own changes and those of its rollout
        resource_type, resource_key, resource_types = None, params["flag"], ("flag", "rollout")
    if "segment" in params:
        resource_type, resource_key = "segment", params["segment"]
    if "metric" in params:
        resource_type, resource_key = "metric", params["metric"]
    env = params.get("env")
    if principal.envs is not None and env is not None and env not in principal.envs:
        require(principal, "read", env)
    since, until = _moment(params.get("since"), "since"), _moment(params.get("until"), "until")
    query = AuditQuery(
        env=env,
        envs=principal.envs,
        resource_type=resource_type,
        resource_types=resource_types,
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

"""Environments, tokens and the audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rollwise.errors import Problem
from rollwise_server import models
from rollwise_server.api.common import (
    authorize,
    model_response,
    read_json,
    reason_of,
    state,
    threaded,
)
from rollwise_server.auth import hash_secret, new_secret, require
from rollwise_server.errors import BadRequest, Invalid
from rollwise_server.models import (
    CreatedToken,
    Environment,
    EnvironmentCreate,
    EnvironmentList,
    EnvironmentUpdate,
    Token,
    TokenCreate,
    TokenList,
    decode,
    in_field_order,
    problems_of,
    valid_fields,
)
from rollwise_server.storage.base import AuditQuery, TokenRecord
from rollwise_server.times import utc_moment

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
    return model_response(msgspec.convert({"environments": environments}, EnvironmentList))


async def get_environment(request: Request) -> Response:
    env = request.path_params["env"]
    await authorize(request, "read", env)
    environment = await threaded(state(request).store.environment, env)
    return model_response(msgspec.convert(environment, Environment))


async def create_environment(request: Request) -> Response:
    principal = await authorize(request, "admin", everywhere=True)
    create = decode(EnvironmentCreate, await read_json(request))
    created = await threaded(
        state(request).store.create_environment, create.key, actor=principal.actor,
        reason=create.reason if create.reason is not None else reason_of(request, {}),
        protected=create.protected,
    )  # fmt: skip
    state(request).publish(create.key, 0)
    return model_response(msgspec.convert(created, Environment), 201)


async def update_environment(request: Request) -> Response:
    """``PATCH {"protected": bool, "reason": "..."}``: admin-only, with a reason, audited."""
    env = request.path_params["env"]
    principal = await authorize(request, "admin", env)
    body = await read_json(request)
    if "reason" not in body and "reason" in request.query_params:
        body["reason"] = request.query_params["reason"]
    update = decode(EnvironmentUpdate, body)
    updated = await threaded(
        state(request).store.set_protected, env, update.protected, actor=principal.actor,
        reason=update.reason,
    )  # fmt: skip
    return model_response(msgspec.convert(updated, Environment))


def _token(record: TokenRecord) -> Token:
    return msgspec.convert(record, Token, from_attributes=True)


_OWNER = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


_STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


def _expiry(value: str | None, problems: list[Problem]) -> str | None:
    """An RFC 3339 time in the future as stored (UTC, microseconds), else a problem."""
    if value is None:
        return None
    try:
        utc = utc_moment(value)
    except OverflowError:
        problems.append(Problem("expires_at", "is out of range"))
        return None
    if utc is None:
        problems.append(Problem("expires_at", "must be an RFC 3339 date-time or null (never)"))
    elif utc <= datetime.now(UTC):
        problems.append(Problem("expires_at", "must be in the future"))
    else:
        return utc.strftime(_STORED)
    return None


async def create_token(request: Request) -> Response:
    """The body's shape is ``TokenCreate``; here, what a type cannot say: the roles' rules
    about environments and owners, the expiry in the future, environments that exist."""
    principal = await authorize(request, "admin", everywhere=True)
    body = await read_json(request)
    create, problems = problems_of(TokenCreate, body)
    fields = msgspec.structs.asdict(create) if create else valid_fields(TokenCreate, body)
    name, role, env = fields.get("name"), fields.get("role"), fields.get("env")
    owner, envs = fields.get("owner"), fields.get("envs")
    if owner is None and role == "sdk":
        owner = name  # an SDK key belongs to the application it is named for
    if "owner" in fields and (owner is None or _OWNER.fullmatch(owner.strip()) is None):
        problems.append(
            Problem("owner", "is required: the person the token belongs to (1-200 characters)")
        )
    if role == "sdk":
        if env is None and envs is not None and len(envs) == 1:
            env = envs[0]
        if env is None and "env" in fields:
            problems.append(Problem("env", "an sdk token needs its one environment"))
        elif envs is not None and envs != [env]:
            problems.append(Problem("envs", "an sdk token has one environment"))
    elif env is not None:
        problems.append(Problem("env", "only sdk tokens take env; use envs for other roles"))
    expires_at = _expiry(fields.get("expires_at"), problems)
    known_envs = {e["key"] for e in await threaded(state(request).store.environments)}
    for i, each in enumerate(envs or []):
        if each not in known_envs:
            problems.append(Problem(f"envs[{i}]", f"no environment {each!r}"))
    if problems:
        raise Invalid.from_problems(in_field_order(TokenCreate, problems))
    secret = new_secret()
    record = await threaded(
        state(request).store.create_token, name=name, role=role,
        env=env if role == "sdk" else None, secret_hash=hash_secret(secret),
        actor=principal.actor, owner=" ".join(str(owner).split()), envs=envs,
        expires_at=expires_at,
    )  # fmt: skip
    token = _token(record)
    return model_response(CreatedToken(**msgspec.structs.asdict(token), token=secret), 201)


async def list_tokens(request: Request) -> Response:
    await authorize(request, "admin", everywhere=True)
    records = await threaded(state(request).store.tokens)
    return model_response(TokenList([_token(r) for r in records]))


async def revoke_token(request: Request) -> Response:
    principal = await authorize(request, "admin", everywhere=True)
    record = await threaded(
        state(request).store.revoke_token, request.path_params["token_id"], actor=principal.actor
    )
    state(request).auth.forget()
    state(request).broadcaster.close_token(record.id)
    return model_response(_token(record))


def _moment(value: str | None, name: str) -> str | None:
    """An RFC 3339 time as the audit log stores it (UTC, microseconds), or 400."""
    if value is None:
        return None
    try:
        utc = utc_moment(value)
    except OverflowError:
        raise BadRequest(f"{name}: {value!r} is out of range") from None
    if utc is None:
        raise BadRequest(f"{name}: must be an RFC 3339 date-time, not {value!r}")
    return utc.strftime(_STORED)


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
    if "flag" in params:  # the flag's own changes and those of its rollout and monitors
        resource_type, resource_key = None, params["flag"]
        resource_types = ("flag", "rollout", "monitor")
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
    shown = [msgspec.convert(e, models.AuditEntry, from_attributes=True) for e in page]
    return model_response(models.AuditPage(shown, next_cursor))

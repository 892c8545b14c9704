"""Segments, the metric catalogue, the audit log and tokens."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from rollwise_server.api.common import threaded
from rollwise_server.errors import BadRequest
from rollwise_server.ui import words
from rollwise_server.ui.blast import segment_radius
from rollwise_server.ui.changes import changes, without_meta
from rollwise_server.ui.context import Console, endpoint, whole
from rollwise_server.ui.flags import history_of

__all__ = [
    "audit_page",
    "metrics_page",
    "revoke_token",
    "segment_page",
    "segment_revert",
    "segments_page",
    "tokens_page",
]

AUDIT_FILTERS = ("env", "actor", "action", "resource_type", "resource_key", "since", "until")
ROLES = ("viewer", "editor", "approver", "admin", "sdk")


@endpoint
async def segments_page(console: Console) -> Response:
    env = console.request.path_params["env"]
    environment = console.environment(env)
    items = await threaded(console.store.list_resources, env, "segment")
    flags = await threaded(console.store.list_resources, env, "flag")
    used: dict[str, list[str]] = {}
    for flag in flags:
        for rule in flag.body.get("rules") or []:
            for cond in rule.get("conditions") or []:
                if isinstance(cond, dict) and "segment" in cond:
                    used.setdefault(str(cond["segment"]), []).append(flag.key)
    rows = [
        {
            "key": s.key,
            "description": s.body.get("description", ""),
            "conditions": [words.condition(c) for c in s.body.get("conditions") or []],
            "flags": sorted(set(used.get(s.key, []))),
            "updated_at": s.updated_at,
            "updated_by": s.updated_by,
            "version": s.version,
        }
        for s in items
    ]
    return console.page("segments.html", env=env, environment=environment, rows=rows)


@endpoint
async def segment_page(console: Console) -> Response:
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    segment = await threaded(console.store.get_resource, env, "segment", key)
    return console.page(
        "segment.html",
        env=env,
        environment=environment,
        segment=segment,
        conditions=[words.condition(c) for c in segment.body.get("conditions") or []],
        history=await history_of(console, env, "segment", key),
    )


@endpoint
async def metrics_page(console: Console) -> Response:
    env = console.request.path_params["env"]
    environment = console.environment(env)
    answer = await console.api("GET", f"/api/v1/envs/{env}/metrics")
    body = answer.body if answer.ok else {"metrics": [], "undefined": []}
    return console.page("metrics.html", env=env, environment=environment, **body)


@endpoint
async def audit_page(console: Console) -> Response:
    params = console.request.query_params
    query = {name: params[name] for name in AUDIT_FILTERS if params.get(name)}
    for name in ("since", "until"):  # a datetime-local field's value is UTC without a zone
        if name in query and len(query[name]) in (16, 19) and "T" in query[name]:
            query[name] = query[name] + ("Z" if len(query[name]) == 19 else ":00Z")
    if whole(params.get("before")) is not None:
        query["before"] = params["before"]
    query["limit"] = "50"
    answer = await console.api("GET", "/api/v1/audit", query=query)
    entries: list[dict[str, Any]] = answer.body.get("entries", []) if answer.ok else []
    cursor = answer.body.get("next_before") if answer.ok else None
    filters = {name: params.get(name, "") for name in AUDIT_FILTERS}
    return console.page(
        "audit.html",
        entries=entries,
        cursor=cursor,
        filters=filters,
        problem="" if answer.ok else answer.detail,
    )


@endpoint
async def tokens_page(console: Console) -> Response:
    created: dict[str, Any] | None = None
    problem, problems, status = "", [], 200
    form = console.form
    if console.request.method == "POST":
        body: dict[str, Any] = {"name": form.get("name").strip(), "role": form.get("role")}
        for name in ("owner",):
            if form.get(name).strip():
                body[name] = form.get(name).strip()
        envs = [e for e in form.all("envs") if e]
        if body["role"] == "sdk":
            body["env"] = form.get("env")
        elif envs:
            body["envs"] = envs
        if form.get("expires_at"):
            text = form.get("expires_at")
            body["expires_at"] = text + ("Z" if len(text) == 19 else ":00Z")
        answer = await console.api("POST", "/api/v1/tokens", body)
        if answer.ok:
            created, status = answer.body, 201
        else:
            problem, problems, status = answer.detail, answer.problems, answer.status
    answer = await console.api("GET", "/api/v1/tokens")
    if not answer.ok:
        status = answer.status
    tokens = answer.body.get("tokens", []) if answer.ok else []
    return console.page(
        "tokens.html",
        status,
        tokens=tokens,
        created=created,
        problem=problem,
        problems=problems,
        roles=ROLES,
        form=form,
        list_problem="" if answer.ok else answer.detail,
    )


@endpoint
async def revoke_token(console: Console) -> Response:
    token_id = console.request.path_params["token_id"]
    answer = await console.api("DELETE", f"/api/v1/tokens/{token_id}")
    if not answer.ok:
        return console.page("error.html", answer.status, error=_Shown(answer.status, answer.detail))
    return RedirectResponse("/ui/tokens?revoked=" + token_id, 303)


class _Shown:
    """An API answer shown by ``error.html`` (which reads ``status``, ``title``, ``detail``)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status, self.title, self.detail = status, "Refused", detail


@endpoint
async def segment_revert(console: Console) -> Response:
    """``GET ?to=N``: what reverting a segment changes and which flags it touches; ``POST``:
    a new version with version N's conditions (a ``PUT`` through the API, with If-Match)."""
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    post = console.request.method == "POST"
    target = str((console.form if post else console.request.query_params).get("to", ""))
    console.require_write(env)
    number = whole(target)
    if number is None:
        raise BadRequest("to: the version to revert to")
    store = console.store
    current = await threaded(store.get_resource, env, "segment", key)
    found = await threaded(store.history, env, "segment", key, before=number + 1, limit=1)
    if not found or found[0].version != number or found[0].archived:
        raise BadRequest(f"segment {key!r} has no version {target} to revert to")
    old = found[0]
    reason = console.form.get("reason").strip()
    problem, status = "", 200
    if post:
        body = {**without_meta(old.body), **({"reason": reason} if reason else {})}
        version = console.form.get("version")
        answer = await console.api(
            "PUT",
            f"/api/v1/envs/{env}/segments/{key}",
            body,
            if_match=whole(version) or current.version,
        )
        if answer.ok:
            return RedirectResponse(f"/ui/envs/{env}/segments/{key}?done=revert", 303)
        problem, status = answer.detail, answer.status
    radii = await segment_radius(console, env, key, dict(old.body))
    return console.page(
        "segment_revert.html",
        status,
        env=env,
        environment=environment,
        current=current,
        old=old,
        changes=changes(current.body, old.body),
        radii=radii,
        reason=reason,
        problem=problem,
    )

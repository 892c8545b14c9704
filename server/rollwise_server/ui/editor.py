"""The flag editor: form → preview (diff and blast radius) → save with ``If-Match``.

Buttons that add or remove rows re-render the form as typed (no JavaScript needed). Preview
validates with the very validator the API's write uses, against the environment's segments,
so the problems shown at the fields are the server's. Save sends the previewed body through
the API (``calls.call``); a version conflict shows the other person's change and offers to
re-apply this one on top of it.
"""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
from starlette.responses import RedirectResponse, Response

from rollwise_server.api.common import threaded
from rollwise_server.api.resources import validator
from rollwise_server.errors import BadRequest, Invalid, NotFound
from rollwise_server.storage.base import Resource
from rollwise_server.storage.flag_type import check_flag_type
from rollwise_server.ui import draft as drafts
from rollwise_server.ui.blast import blast_radius
from rollwise_server.ui.changes import changes
from rollwise_server.ui.context import Console, endpoint, json_field, whole
from rollwise_server.ui.countries import COUNTRIES

__all__ = ["edit_flag", "new_flag"]


async def _segments(console: Console, env: str) -> dict[str, int]:
    items = await threaded(console.store.list_resources, env, "segment")
    return {s.key: len(s.body.get("conditions") or []) for s in items}


def _editor(
    console: Console,
    env: str,
    draft: dict[str, Any],
    *,
    version: int | None,
    problems: dict[str, str],
    problem: str = "",
    segments: list[str],
    status: int = 200,
) -> Response:
    return console.page(
        "editor.html",
        status,
        env=env,
        environment=console.environment(env),
        draft=drafts.shown(draft),
        version=version,
        errors=problems,
        problem=problem,
        segments=segments,
        operators=drafts.OPERATOR_NAMES,
        countries=COUNTRIES,
        reason=console.form.get("reason"),
    )


def _server_problems(
    error: Invalid | list[dict[str, Any]], draft: dict[str, Any]
) -> dict[str, str]:
    items = error.extra.get("problems", []) if isinstance(error, Invalid) else error
    out: dict[str, str] = {}
    for item in items or []:
        field = drafts.field_of(str(item.get("path", "")), draft) or "_form"
        out.setdefault(field, str(item.get("message", "")))
        if field == "_form":
            out["_form"] = f"{item.get('path')}: {item.get('message')}"
    return out


async def _current(console: Console, env: str, key: str) -> Resource | None:
    try:
        resource = await threaded(console.store.get_resource, env, "flag", key)
    except NotFound:
        return None
    return None if resource.archived else resource


async def _flow(console: Console, env: str, key: str | None) -> Response:
    environment = console.environment(env)
    console.require_write(env)
    form = console.form
    segments = await _segments(console, env)
    current = await _current(console, env, key) if key else None
    if key and current is None:
        raise NotFound(f"flag {key!r} does not exist in {env!r}")
    if console.request.method == "GET":
        draft = drafts.new_draft() if current is None else drafts.from_body(key or "", current.body)
        return _editor(
            console,
            env,
            draft,
            version=None if current is None else current.version,
            problems={},
            segments=sorted(segments),
        )
    action = form.get("action")
    version = whole(form.get("version"))
    if action == "save":
        return await _save(console, env, key, environment, segments, version, current)
    if action == "reapply" and current is not None:  # mine again, on top of the other change
        mine = json_field(form.get("body"), "body")
        mine = mine if isinstance(mine, dict) else {}
        base = whole(form.get("base")) or current.version
        merged = await _on_top(console, env, current, base, mine)
        draft = _draft_of(current.key, merged)
        return await _preview(console, env, draft, current.version, current, segments)
    draft = drafts.from_form(form)
    if key:
        draft["key"] = key
    if action != "preview":
        drafts.apply_action(draft, action)
        return _editor(console, env, draft, version=version, problems={}, segments=sorted(segments))
    return await _preview(console, env, draft, version, current, segments)


async def _preview(
    console: Console,
    env: str,
    draft: dict[str, Any],
    version: int | None,
    current: Resource | None,
    segments: dict[str, int],
    problem: str = "",
) -> Response:
    body, problems = drafts.to_body(draft)
    key = draft["key"]
    if not key:
        problems["key"] = "is required: the flag key"
    if problems:
        return _editor(
            console,
            env,
            draft,
            version=version,
            problems=problems,
            segments=sorted(segments),
            status=422,
        )
    try:
        canonical = validator("flag", key)({**body, "version": 1}, segments)
        if current is not None and not current.archived:  # as the save would: say it now
            check_flag_type(key, current.body, canonical)
    except Invalid as error:
        return _editor(
            console,
            env,
            draft,
            version=version,
            problems=_server_problems(error, draft),
            segments=sorted(segments),
            status=422,
        )
    canonical.pop("version", None)
    old = None if current is None else dict(current.body)
    radius = await blast_radius(console, env, key, old, canonical)
    return console.page(
        "preview.html",
        env=env,
        environment=console.environment(env),
        key=key,
        is_new=current is None,
        version=version,
        changes=changes(old or {}, canonical),
        radius=radius,
        body=json.dumps(canonical, ensure_ascii=False),
        reason=console.form.get("reason"),
        problem=problem,
    )


async def _save(
    console: Console,
    env: str,
    key: str | None,
    environment: dict[str, Any],
    segments: dict[str, int],
    version: int | None,
    current: Resource | None,
) -> Response:
    form = console.form
    body = json_field(form.get("body"), "body")
    if not isinstance(body, dict):
        raise BadRequest("body: must be a flag")
    key = key or str(form.get("key"))
    reason = form.get("reason").strip()
    payload = {**body, **({"reason": reason} if reason else {})}
    if version is None:
        answer = await console.api("POST", f"/api/v1/envs/{env}/flags", {"key": key, **payload})
    else:
        answer = await console.api(
            "PUT", f"/api/v1/envs/{env}/flags/{key}", payload, if_match=version
        )
    if answer.ok:
        return RedirectResponse(f"/ui/envs/{env}/flags/{key}?done=saved", 303)
    draft = _draft_of(key, body)
    if answer.status in (409, 412) and current is not None and version is not None:
        base = await threaded(console.store.history, env, "flag", key, before=version + 1, limit=1)
        base_body = dict(base[0].body) if base else {}
        return console.page(
            "conflict.html",
            409,
            env=env,
            environment=environment,
            key=key,
            current=current,
            version=version,
            theirs=changes(base_body, current.body),
            mine=changes(base_body, body),
            body=json.dumps(body, ensure_ascii=False),
            reason=reason,
        )
    if answer.status == 409 and version is None:
        problems = {"key": answer.detail}
    else:
        problems = _server_problems(answer.problems, draft)
        if not problems:
            problems = {"_form": answer.detail}
    return _editor(
        console,
        env,
        draft,
        version=version,
        problems=problems,
        problem=answer.detail,
        segments=sorted(segments),
        status=answer.status,
    )


async def _on_top(
    console: Console, env: str, current: Resource, base: int, mine: dict[str, Any]
) -> dict[str, Any]:
    """My change (version ``base`` → ``mine``) applied to the current version, place by place;
    where it no longer applies, my version whole."""
    found = await threaded(
        console.store.history, env, "flag", current.key, before=base + 1, limit=1
    )
    if not found or found[0].version != base:
        return mine
    before = {k: v for k, v in found[0].body.items() if k != "version"}
    try:
        patch = jsonpatch.make_patch(before, mine)
        merged = patch.apply({k: v for k, v in current.body.items() if k != "version"})
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
        return mine
    return merged if isinstance(merged, dict) else mine


def _draft_of(key: str, body: Any) -> dict[str, Any]:
    """The draft of a body that came back from the browser (it may have been forged)."""
    try:
        return drafts.from_body(key, body)
    except (AttributeError, TypeError, KeyError, ValueError):
        raise BadRequest("body: not a flag; open the editor again") from None


@endpoint
async def new_flag(console: Console) -> Response:
    return await _flow(console, console.request.path_params["env"], None)


@endpoint
async def edit_flag(console: Console) -> Response:
    params = console.request.path_params
    return await _flow(console, params["env"], params["key"])

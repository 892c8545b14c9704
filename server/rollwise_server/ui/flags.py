"""Flag pages: the list of an environment, a flag's page (rules in words, rollout, history),
kill and enable with a reason, revert to any version after a preview."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from rollwise_server.api.common import threaded
from rollwise_server.api.resources import is_stale
from rollwise_server.errors import BadRequest, NotFound
from rollwise_server.ui import words
from rollwise_server.ui.blast import blast_radius
from rollwise_server.ui.changes import changes
from rollwise_server.ui.context import Console, endpoint, whole

__all__ = ["flag_page", "flags_page", "history_of", "kill_page", "revert_page"]

PAGE_SIZE = 100
HISTORY_PAGE = 20


def _api(env: str, key: str = "", tail: str = "") -> str:
    path = f"/api/v1/envs/{env}/flags"
    return f"{path}/{key}{tail}" if key else path


def _variants_summary(body: dict[str, Any]) -> str:
    parts = [f"default {body.get('default_variant')}"]
    for rule in body.get("rules") or []:
        split = (rule.get("serve") or {}).get("split")
        if split:
            parts.append(f"{rule.get('id')}: {words.shares(split)}")
    return "; ".join(parts)


@endpoint
async def flags_page(console: Console) -> Response:
    env = console.request.path_params["env"]
    environment = console.environment(env)
    params = console.request.query_params
    query = params.get("q", "").strip().lower()
    try:
        number = max(1, int(params.get("page", "1")))
    except ValueError:
        raise BadRequest("page: must be a number") from None
    store = console.store
    flags = await threaded(store.list_resources, env, "flag")
    rollouts = {r.flag: r for r in await threaded(store.all_rollouts) if r.env == env}
    if query:
        flags = [
            f
            for f in flags
            if query in f.key.lower() or query in str(f.body.get("description", "")).lower()
        ]
    total = len(flags)
    shown = flags[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    rows = []
    for flag in shown:
        rollout = rollouts.get(flag.key)
        rows.append(
            {
                "key": flag.key,
                "description": flag.body.get("description", ""),
                "state": words.flag_state(flag.body),
                "variants": list(flag.body.get("variants") or {}),
                "serves": _variants_summary(dict(flag.body)),
                "rollout": None if rollout is None else words.stage(rollout.plan, rollout.state),
                "updated_at": flag.updated_at,
                "updated_by": flag.updated_by,
                "stale": is_stale(flag.body),
                "version": flag.version,
            }
        )
    pages = max(1, -(-total // PAGE_SIZE))
    return console.page(
        "flags.html",
        env=env,
        environment=environment,
        rows=rows,
        query=params.get("q", ""),
        total=total,
        number=number,
        pages=pages,
    )


async def history_of(console: Console, env: str, kind: str, key: str) -> dict[str, Any]:
    """A page of history with each version's changes against the one before."""
    before = console.request.query_params.get("before")
    query = {"limit": str(HISTORY_PAGE + 1)}
    if (at := whole(before)) is not None:
        query["before"] = str(at)
    answer = await console.api("GET", f"/api/v1/envs/{env}/{kind}s/{key}/history", query=query)
    if not answer.ok:
        return {"entries": [], "next_before": None}
    entries = list(reversed(answer.body["versions"]))  # the newest first
    shown = []
    for index, entry in enumerate(entries[:HISTORY_PAGE]):
        previous = entries[index + 1] if index + 1 < len(entries) else None
        if entry["version"] == 1 and previous is None:
            diff = changes({}, entry["body"])
        elif previous is None:
            diff = []  # the version before is on the next page
        else:
            diff = changes(previous["body"], entry["body"])
        shown.append(
            {**entry, "changes": diff, "known": previous is not None or entry["version"] == 1}
        )
    more = len(entries) > HISTORY_PAGE or answer.body.get("next_before")
    next_before = shown[-1]["version"] if more and shown and shown[-1]["version"] > 1 else None
    return {"entries": shown, "next_before": next_before}


@endpoint
async def flag_page(console: Console) -> Response:
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    store = console.store
    flag = await threaded(store.get_resource, env, "flag", key)
    rollout = await threaded(store.get_rollout, env, key)
    monitors = await threaded(store.monitors, env, key)
    body = dict(flag.body)
    rules = [
        {
            "id": rule.get("id"),
            "conditions": [words.condition(c) for c in rule.get("conditions") or []],
            "serve": words.serve(rule.get("serve") or {}),
        }
        for rule in body.get("rules") or []
    ]
    others = [e["key"] for e in console.environments if e["key"] != env]
    return console.page(
        "flag.html",
        env=env,
        environment=environment,
        flag=flag,
        body=body,
        rules=rules,
        state=words.flag_state(body),
        stale=is_stale(body),
        rollout=None
        if rollout is None
        else {
            "status": rollout.state.get("status"),
            "stage": words.stage(rollout.plan, rollout.state),
        },
        history=await history_of(console, env, "flag", key),
        others=others,
        monitors=[
            {
                "name": m.name,
                "status": m.state.get("status", "ok"),
                "last": (m.state.get("alerts") or [None])[-1],
            }
            for m in monitors
        ],
    )


@endpoint
async def kill_page(console: Console) -> Response:
    """``GET``: what a kill (or an enable) does, with the reason field; ``POST``: do it."""
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    action = console.request.path_params["action"]
    if action not in ("kill", "enable"):
        raise NotFound(f"no page {action!r} for a flag")
    environment = console.environment(env)
    console.require_write(env)
    flag = await threaded(console.store.get_resource, env, "flag", key)
    rollout = await threaded(console.store.get_rollout, env, key)
    reason = console.form.get("reason").strip()
    if console.request.method == "POST":
        body: dict[str, Any] = {"reason": reason} if reason else {}
        if action == "kill":
            answer = await console.api("POST", _api(env, key, "/kill"), body)
        else:
            current = {k: v for k, v in flag.body.items() if k != "version"}
            answer = await console.api(
                "PUT", _api(env, key), {**current, "enabled": True, **body}, if_match=flag.version
            )
        if answer.ok:
            return RedirectResponse(f"/ui/envs/{env}/flags/{key}?done={action}", 303)
        return console.page(
            "confirm.html",
            422 if answer.status == 422 else answer.status,
            env=env,
            environment=environment,
            flag=flag,
            action=action,
            rollout=rollout,
            reason=reason,
            problem=answer.detail,
            problems=answer.problems,
        )
    return console.page(
        "confirm.html",
        env=env,
        environment=environment,
        flag=flag,
        action=action,
        rollout=rollout,
        reason="",
        problem="",
        problems=[],
    )


@endpoint
async def revert_page(console: Console) -> Response:
    """``GET ?to=N``: the change a revert makes and its blast radius; ``POST``: revert."""
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    source = console.form if console.request.method == "POST" else console.request.query_params
    target = str(source.get("to", ""))
    console.require_write(env)
    number = whole(target)
    if number is None:
        raise BadRequest("to: the version to revert to")
    store = console.store
    current = await threaded(store.get_resource, env, "flag", key)
    versions = await threaded(store.history, env, "flag", key, before=number + 1, limit=1)
    if not versions or versions[0].version != number:
        raise BadRequest(f"flag {key!r} has no version {target}")
    old = versions[0]
    problem, problems, status = "", [], 200
    reason = console.form.get("reason").strip()
    if console.request.method == "POST":
        body: dict[str, Any] = {"to_version": number}
        if reason:
            body["reason"] = reason
        answer = await console.api(
            "POST", _api(env, key, "/revert"), body, if_match=whole(console.form.get("version"))
        )
        if answer.ok:
            return RedirectResponse(f"/ui/envs/{env}/flags/{key}?done=revert", 303)
        problem, problems, status = answer.detail, answer.problems, answer.status
    radius = await blast_radius(console, env, key, dict(current.body), dict(old.body))
    return console.page(
        "revert.html",
        status,
        env=env,
        environment=environment,
        current=current,
        old=old,
        changes=changes(current.body, old.body),
        radius=radius,
        reason=reason,
        problem=problem,
        problems=problems,
    )

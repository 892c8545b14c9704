"""Promote a flag to another environment with the segments its rules use: first a dry run
(what each would change there), then the promotion — each segment an audited change of its
own in the target, then the flag (the API's ``promote``), all through the API."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from rollwise_server.api.common import meaningful, threaded
from rollwise_server.cli_promotion import segments_of
from rollwise_server.errors import BadRequest, Invalid, NotFound
from rollwise_server.storage.base import Resource
from rollwise_server.ui.changes import changes, without_meta
from rollwise_server.ui.context import Console, endpoint

__all__ = ["promote_page"]


async def _live(console: Console, env: str, kind: str, key: str) -> Resource | None:
    try:
        resource = await threaded(console.store.get_resource, env, kind, key)
    except NotFound:
        return None
    return None if resource.archived else resource


async def _plan(console: Console, env: str, target: str, key: str) -> list[dict[str, Any]]:
    flag = await threaded(console.store.get_resource, env, "flag", key)
    items: list[dict[str, Any]] = []
    for name in segments_of(flag.body):
        source = await _live(console, env, "segment", name)
        if source is None:
            continue
        there = await _live(console, target, "segment", name)
        items.append(
            {
                "kind": "segment",
                "key": name,
                "source": source,
                "target": there,
                "changes": changes(there.body if there else {}, source.body),
            }
        )
    there = await _live(console, target, "flag", key)
    items.append(
        {
            "kind": "flag",
            "key": key,
            "source": flag,
            "target": there,
            "changes": changes(there.body if there else {}, flag.body),
        }
    )
    return items


@endpoint
async def promote_page(console: Console) -> Response:
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    source = console.form if console.request.method == "POST" else console.request.query_params
    target = str(source.get("to", ""))
    if not target or target == env:
        raise BadRequest("to: the environment to promote into (another one)")
    target_env = console.environment(target)
    plan = await _plan(console, env, target, key)
    reason = console.form.get("reason").strip()
    done: list[str] = []
    problem = ""
    if console.request.method == "POST":
        # what the API would refuse at the flag is refused before the segments are written:
        # a refused promotion changes nothing in the target
        console.require_write(target)
        if target_env["protected"] and not meaningful(reason):
            raise Invalid(
                f"reason: required to promote a flag into protected environment {target!r}",
                problems=[
                    {"path": "reason", "message": f"required in protected environment {target!r}"}
                ],
            )
        extra = {"reason": reason} if reason else {}
        for item in plan:
            if item["target"] is not None and not item["changes"]:
                continue
            if item["kind"] == "segment":
                body = {**without_meta(item["source"].body), **extra}
                if item["target"] is None:
                    answer = await console.api(
                        "POST", f"/api/v1/envs/{target}/segments", {"key": item["key"], **body}
                    )
                else:
                    answer = await console.api(
                        "PUT",
                        f"/api/v1/envs/{target}/segments/{item['key']}",
                        body,
                        if_match=item["target"].version,
                    )
            else:
                answer = await console.api(
                    "POST", f"/api/v1/envs/{env}/flags/{key}/promote", {"to": target, **extra}
                )
            if not answer.ok:
                problem = f"{item['kind']} {item['key']}: {answer.detail}"
                break
            done.append(f"{item['kind']} {item['key']}")
        plan = await _plan(console, env, target, key)
    return console.page(
        "promote.html",
        200 if not problem else 422,
        env=env,
        environment=environment,
        target=target,
        target_env=target_env,
        key=key,
        plan=plan,
        reason=reason,
        done=done,
        problem=problem,
        posted=console.request.method == "POST",
    )

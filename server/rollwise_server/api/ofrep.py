"""OFREP, the OpenFeature Remote Evaluation Protocol: rollwise flags for any language.

``POST /ofrep/v1/evaluate/flags/{key}`` evaluates one flag, ``POST /ofrep/v1/evaluate/flags``
every flag of the SDK token's environment (with an ETag), for a context posted as
``{"context": {"targetingKey": ..., ...}}``. The evaluation is the SDK's own: an offline
``rollwise.Client`` on the environment's current rules document (one per revision), so reasons,
error codes and bucketing are those of every SDK. Split assignments are exposures, recorded as
an SDK records them (deduplicated per unit) and stored through the same ingestion as
``POST /api/v1/sdk/exposures``. The context maps as in the Python provider: its attributes,
with ``targetingKey`` as ``user_id`` (the default bucketing unit). ``value`` is the variant's
typed value (a string flag's: its key unless the variant gives one). See docs/ofrep.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import rollwise
from rollwise import thaw
from rollwise.assignment import Assignment, Reason
from rollwise.events import Exposure
from rollwise_server.api.common import authenticate, read_raw, state
from rollwise_server.api.sdk import current_document
from rollwise_server.auth import require

__all__ = ["evaluate_flag", "evaluate_flags"]

logger = logging.getLogger("rollwise.server")

UNIT_ATTRIBUTE = "user_id"
"""What ``targetingKey`` becomes: the attribute flags bucket by unless they say otherwise."""

_ERRORS = {"FLAG_NOT_FOUND": 404, "INVALID_CONTEXT": 400, "PARSE_ERROR": 400,
           "PROVIDER_NOT_READY": 503, "GENERAL": 500}  # fmt: skip


class _Evaluators:
    """One offline client per environment at its current revision, and the exposures it makes
    waiting to be stored."""

    def __init__(self) -> None:
        self.clients: dict[str, tuple[int, rollwise.Client]] = {}
        self.pending: dict[str, list[Exposure]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    def client(self, env: str, revision: int, document: dict[str, Any]) -> rollwise.Client:
        found = self.clients.get(env)
        if found is not None and found[0] == revision:
            return found[1]
        queue = self.pending.setdefault(env, [])
        client = rollwise.Client.offline(document, on_exposure=queue.append)
        self.clients[env] = (revision, client)
        return client


def _evaluators(request: Request) -> _Evaluators:
    app_state = request.app.state
    found = getattr(app_state, "ofrep", None)
    if found is None:
        found = _Evaluators()
        app_state.ofrep = found
    return found


async def _env(request: Request) -> str:
    """The SDK token's environment: ``Authorization: Bearer`` or ``X-API-Key`` (401 without)."""
    header = request.headers.get("authorization")
    key = request.headers.get("x-api-key")
    if not header and key:
        header = f"Bearer {key}"
    principal = await authenticate(request, header)
    request.state.principal = principal
    require(principal, "sdk")
    return principal.env or ""


async def _context(request: Request) -> dict[str, Any] | str:
    """The evaluation context as a rollwise context, or why it is not one."""
    raw = await read_raw(request)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return "the body is not JSON"
    if not isinstance(body, dict):
        return 'the body must be a JSON object: {"context": {...}}'
    context = body.get("context", {})
    if not isinstance(context, dict):
        return "context: must be a JSON object"
    out = {k: v for k, v in context.items() if k != "targetingKey"}
    target = context.get("targetingKey")
    if target is not None:
        if not isinstance(target, str):
            return "context.targetingKey: must be a string"
        out[UNIT_ATTRIBUTE] = target
    return out


def _result(key: str, assignment: Assignment) -> tuple[int, dict[str, Any]]:
    """The OFREP answer for one flag: a success, or a failure with its status."""
    if assignment.is_error or assignment.variant is None:
        code = assignment.error_code.value if assignment.error_code else "GENERAL"
        details = {
            "FLAG_NOT_FOUND": f"flag {key!r} was not found",
            "INVALID_CONTEXT": f"the context cannot evaluate flag {key!r}",
        }.get(code, f"flag {key!r} could not be evaluated")
        return _ERRORS.get(code, 500), {"key": key, "errorCode": code, "errorDetails": details}
    metadata: dict[str, Any] = {}
    if assignment.flag_version is not None:
        metadata["flag_version"] = assignment.flag_version
    if assignment.rule is not None:
        metadata["rule"] = assignment.rule
    reason = assignment.reason.value if assignment.reason != Reason.STALE else "STALE"
    value = assignment.variant if assignment.value is None else thaw(assignment.value)
    return 200, {"key": key, "value": value, "reason": reason,
                 "variant": assignment.variant, "metadata": metadata}  # fmt: skip


def _store_exposures(request: Request, env: str) -> None:
    """Hand the exposures made to the ingestion, as an SDK's batch (the request never waits)."""
    evaluators = _evaluators(request)
    queue = evaluators.pending.get(env)
    if not queue:
        return
    batch, queue[:] = list(queue), []
    raw = json.dumps({"events": [e.to_json() for e in batch]}).encode()
    task = asyncio.create_task(state(request).ingest.submit("exposures", raw, None, env))
    evaluators.tasks.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        evaluators.tasks.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            logger.error("rollwise: OFREP exposures were not stored: %s", finished.exception())

    task.add_done_callback(done)


async def _client(request: Request, env: str) -> tuple[rollwise.Client, int]:
    document = await current_document(request, env)
    return _evaluators(request).client(env, document.revision, document.document), (
        document.revision
    )


async def evaluate_flag(request: Request) -> Response:
    env = await _env(request)
    key = request.path_params["key"]
    context = await _context(request)
    if isinstance(context, str):
        return JSONResponse({"key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": context},
                            status_code=400)  # fmt: skip
    client, _ = await _client(request, env)
    status, body = _result(key, client.evaluate(key, context))
    _store_exposures(request, env)
    return JSONResponse(body, status_code=status)


async def evaluate_flags(request: Request) -> Response:
    env = await _env(request)
    context = await _context(request)
    if isinstance(context, str):
        return JSONResponse({"errorCode": "INVALID_CONTEXT", "errorDetails": context},
                            status_code=400)  # fmt: skip
    client, revision = await _client(request, env)
    digest = hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode())
    etag = f'"{revision}-{digest.hexdigest()[:16]}"'  # a new one with any change of any flag
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    asked = request.headers.get("if-none-match") or ""
    if any(t.strip().removeprefix("W/") in (etag, "*") for t in asked.split(",")):
        return Response(status_code=304, headers=headers)
    flags = [_result(key, client.evaluate(key, context))[1] for key in client.flag_keys()]
    _store_exposures(request, env)
    return JSONResponse({"flags": flags, "metadata": {"revision": revision}}, headers=headers)

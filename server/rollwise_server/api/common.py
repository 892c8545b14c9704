"""Helpers shared by the API endpoints: auth, bodies, versions, responses."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rollwise.limits import json_depth
from rollwise_server.auth import Permission, Principal, require
from rollwise_server.errors import (
    BadRequest,
    Invalid,
    PayloadTooLarge,
    PreconditionRequired,
    TooManyAuthFailures,
    Unauthorized,
)
from rollwise_server.models.common import MAX_VERSION
from rollwise_server.state import ServerState
from rollwise_server.throttle import client_key
from rollwise_server.tracing import store_span

PRINCIPAL_KEY = "rollwise.principal"
"""Where the console puts the signed-in principal of an in-process call (``ui/calls.py``):
an ASGI scope key that only server code can set, never a header or a cookie."""

__all__ = [
    "MAX_JSON_DEPTH",
    "authenticate",
    "authorize",
    "decode_json_object",
    "expected_version",
    "json_depth",
    "json_response",
    "model_response",
    "protected_reason",
    "read_json",
    "read_raw",
    "state",
    "threaded",
]

T = TypeVar("T")
logger = logging.getLogger("rollwise.server")


def state(request: Request) -> ServerState:
    server: ServerState = request.app.state.rollwise
    return server


async def threaded(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call in the worker thread pool (a span of it when tracing)."""
    with store_span(func):
        return await run_in_threadpool(func, *args, **kwargs)


async def authenticate(request: Request, header: str | None) -> Principal:
    """The principal of an ``Authorization`` header (401 if none is valid). Failures count
    against the client's address, and an address with too many gets 429 (``throttle.py``):
    the API and the console's sign-in share this."""
    server = state(request)
    address = client_key(request.client.host if request.client else None)
    wait = server.throttle.retry_after(address)
    if wait is not None:
        server.metrics.auth_throttled.inc()
        raise TooManyAuthFailures(
            f"too many failed authentications from {address}; try again in {wait} s",
            retry_after=wait,
        )
    try:
        principal = server.auth.cached(header)
        if principal is None:
            principal = await threaded(server.auth.lookup, header)
    except Unauthorized:
        server.metrics.auth_failures.inc()
        if server.throttle.failed(address):
            logger.warning(
                "rollwise: %d failed authentications from %s within a minute; its requests "
                "are answered 429 until the minute is over",
                server.throttle.limit,
                address,
            )
        raise
    return principal


async def authorize(
    request: Request, permission: Permission, env: str | None = None, *, everywhere: bool = False
) -> Principal:
    """The caller's principal, if allowed ``permission`` (in ``env``, or in every environment
    with ``everywhere``); else 401/403. Environment routes always name their ``env``. An
    address with too many failed authentications is 429 (``throttle.py``)."""
    given = request.scope.get(PRINCIPAL_KEY)
    if isinstance(given, Principal):  # the console's in-process call (``ui/calls.py``)
        request.state.principal = given
        return require(given, permission, env, everywhere=everywhere)
    principal = await authenticate(request, request.headers.get("authorization"))
    request.state.principal = principal
    return require(principal, permission, env, everywhere=everywhere)


async def read_raw(request: Request) -> bytes:
    """The request body, refusing more than ``max_body_bytes`` (413)."""
    limit = state(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


MAX_JSON_DEPTH = 64
"""How deep an admin request's JSON may nest (objects and arrays): far more than any flag,
plan or metric needs, far less than a parser's or an SDK's recursion limit."""


LOOP_DECODE_BYTES = 64 * 1024
"""Bodies up to this size are decoded on the event loop (microseconds); larger ones in a worker
thread, so that a client sending megabytes of JSON does not hold up everyone else's requests."""


async def read_json(request: Request, *, required: bool = True) -> dict[str, Any]:
    """A JSON object body (an empty body is ``{}`` unless ``required``)."""
    raw = await read_raw(request)
    if not raw.strip():
        if required:
            raise BadRequest("a JSON object body is required")
        return {}
    if len(raw) > LOOP_DECODE_BYTES:
        return await threaded(decode_json_object, raw)
    return decode_json_object(raw)


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Decode and check a JSON object body: 400 for invalid JSON, nesting deeper than
    ``MAX_JSON_DEPTH``, NaN or a lone surrogate, or anything but an object."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        body = None
    if body is None or json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise BadRequest(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        json.dumps(body, ensure_ascii=False, allow_nan=False).encode()  # no NaN, lone surrogate
    except (ValueError, UnicodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def expected_version(request: Request, body: dict[str, Any], *, required: bool) -> int | None:
    """The version a write edits: ``If-Match`` or the body's ``version`` (428 if required)."""
    header = request.headers.get("if-match")
    if header:
        tag = header.strip().removeprefix("W/").strip('"')
        if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):
            raise BadRequest('If-Match must be the version being edited, e.g. If-Match: "3"')
        return int(tag)
    value = body.get("version")
    if value is None:
        if required:
            raise PreconditionRequired(
                'name the version you edit, with If-Match or "version" in the body'
            )
        return None
    if type(value) is not int or not 1 <= value <= MAX_VERSION:
        raise BadRequest("version: must be the integer version being edited")
    return value


def reason_of(request: Request, body: dict[str, Any]) -> str | None:
    reason = body.get("reason", request.query_params.get("reason"))
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason: must be a string")
    if reason is not None and len(reason) > 2000:
        raise BadRequest("reason: must be at most 2000 characters")
    return reason


def meaningful(text: str) -> bool:
    """Whether ``text`` says anything: more than spaces and invisible format characters
    (zero-width spaces, joiners, direction marks)."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


async def protected_reason(request: Request, env: str, reason: str | None, what: str) -> None:
    """A ``reason`` is required to ``what`` in a protected environment (422 naming it)."""
    if reason is not None and meaningful(reason):
        return
    environment = await threaded(state(request).store.environment, env)
    if environment["protected"]:
        raise Invalid(
            f"reason: required to {what} in protected environment {env!r}",
            problems=[{"path": "reason", "message": f"required in protected environment {env!r}"}],
        )


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=headers)


def model_response(
    value: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """An answer encoded from its model (``rollwise_server.models``)."""
    return Response(
        msgspec.json.encode(value), status, headers=headers, media_type="application/json"
    )

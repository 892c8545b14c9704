"""The SDK endpoints: the rules document (ETag, 304, gzip), the change stream, event ingestion.

A stream ends when its token expires or is revoked (``app._end_tokens``); the SDK then
reconnects and is refused with 401. A token may hold ``max_streams_per_token`` streams open in
one server process (429 above): with many application instances sharing one SDK key, each holds
one; the bound stops one leaked key from holding the server's connections."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rollwise_server import models
from rollwise_server.api.common import (
    authorize,
    model_response,
    read_raw,
    state,
    threaded,
)
from rollwise_server.documents import RenderedDocument, etag_matches
from rollwise_server.errors import BadRequest, TooManyStreams
from rollwise_server.ingest import EventKind
from rollwise_server.notify import Subscription

__all__ = ["current_document", "ingest_events", "ingest_exposures", "rules", "stream"]

STREAM_RETRY_AFTER = 60
"""Seconds a client refused a stream is asked to wait (it polls the rules meanwhile)."""


async def current_document(request: Request, env: str) -> RenderedDocument:
    """The environment's current document, rendered at most once per revision (single flight)."""
    server = state(request)
    revision = server.broadcaster.revisions.get(env)
    cached = server.documents.peek(env, revision) if revision is not None else None
    if cached is not None:
        return cached
    async with server.documents.render_lock(env):
        revision = server.broadcaster.revisions.get(env)
        cached = server.documents.peek(env, revision) if revision is not None else None
        if cached is None:
            cached = await threaded(server.documents.render, env)
            server.publish(env, cached.revision)
    return cached


async def rules(request: Request) -> Response:
    principal = await authorize(request, "sdk")
    env = principal.env or ""
    server = state(request)
    revision = server.broadcaster.revisions.get(env)
    if revision is not None and etag_matches(request.headers.get("if-none-match"), revision):
        headers = {"ETag": f'"{revision}"', "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
        return Response(status_code=304, headers=headers)
    document = await current_document(request, env)
    headers = {"ETag": document.etag, "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), document.revision):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(document.gzipped, media_type="application/json", headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)


def _event(document: RenderedDocument) -> bytes:
    """The pre-encoded event (sse-starlette sends bytes as they are)."""
    return document.event


class _StreamResponse(EventSourceResponse):
    """Frees the stream's subscription (its slot) however the response ends: the client gone,
    the token ended, a ``HEAD``, or a client gone before the first event was sent (the events
    generator, never started, would not close it)."""

    def __init__(self, subscription: Subscription, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()


async def stream(request: Request) -> Response:
    """Server-sent events: ``rules`` events carrying each new revision and its document."""
    principal = await authorize(request, "sdk")
    env = principal.env or ""
    server = state(request)
    last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        last_seen = int(last) if last else None
    except ValueError:
        raise BadRequest("Last-Event-ID must be a revision number") from None
    limit = server.settings.max_streams_per_token
    if server.broadcaster.streams_of(principal.token_id) >= limit:
        raise TooManyStreams(
            f"this token has {limit} streams open already (max_streams_per_token); close one, "
            "or poll /api/v1/sdk/rules meanwhile",
            retry_after=STREAM_RETRY_AFTER,
        )
    subscription = server.broadcaster.subscribe(env, principal.token_id)  # no await in between
    expires = principal.expires_at

    async def events() -> AsyncIterator[bytes]:
        with subscription:
            document = await current_document(request, env)
            if last_seen is None or last_seen != document.revision:
                yield _event(document)
            seen = document.revision
            while True:
                timeout = None if expires is None else max(0.0, expires - time.time())
                revision = await subscription.wait(timeout)
                if subscription.closed or (expires is not None and time.time() >= expires):
                    return  # the token was revoked or expired: the stream ends
                if revision is None or revision <= seen:
                    continue
                document = await current_document(request, env)
                if document.revision > seen:
                    seen = document.revision
                    yield _event(document)

    return _StreamResponse(
        subscription,
        events(),
        ping=server.settings.heartbeat_seconds,
        headers={"Cache-Control": "no-cache"},
    )


async def _ingest(request: Request, kind: EventKind) -> Response:
    principal = await authorize(request, "sdk")
    server = state(request)
    raw = await read_raw(request)
    result = await server.ingest.submit(
        kind, raw, request.headers.get("content-encoding"), principal.env or ""
    )
    counts, errors = result.counts, result.errors
    server.metrics.events.labels(kind).inc(counts.accepted)
    server.metrics.duplicates.labels(kind).inc(counts.duplicates)
    server.metrics.rejected.labels(kind).inc(len(errors))
    shown = msgspec.convert(errors[:100], list[models.EventError])
    return model_response(
        models.IngestResult(counts.accepted, counts.duplicates, len(errors), shown)
    )


async def ingest_exposures(request: Request) -> Response:
    return await _ingest(request, "exposures")


async def ingest_events(request: Request) -> Response:
    return await _ingest(request, "outcomes")


async def ingest_predictions(request: Request) -> Response:
    return await _ingest(request, "predictions")

"""``create_app(settings)``: the Starlette application of the flag server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollwise_server.access import AccessLogMiddleware
from rollwise_server.api import (
    admin,
    flags,
    health,
    history,
    monitors,
    ofrep,
    resources,
    results,
    rollouts,
    sdk,
)
from rollwise_server.api import webhooks as webhooks_api
from rollwise_server.api.common import threaded
from rollwise_server.auth import TokenAuth
from rollwise_server.documents import DocumentCache
from rollwise_server.errors import ApiError
from rollwise_server.ingest_worker import IngestWorker
from rollwise_server.metrics import Metrics
from rollwise_server.models import Problem
from rollwise_server.notify import Broadcaster
from rollwise_server.openapi import openapi_document
from rollwise_server.rollouts.controller import Controller
from rollwise_server.routes import RouteTemplates
from rollwise_server.settings import Settings
from rollwise_server.state import ServerState
from rollwise_server.storage import open_store
from rollwise_server.storage.sql import now_iso
from rollwise_server.throttle import AuthThrottle
from rollwise_server.tracing import TracingMiddleware, open_tracing
from rollwise_server.ui.routes import UI_ROUTES
from rollwise_server.webhooks import Webhooks

__all__ = ["ROUTES", "create_app"]

logger = logging.getLogger("rollwise.server")

ENV = "/api/v1/envs/{env}"


@functools.cache
def _openapi_body() -> bytes:
    """The OpenAPI document, encoded once: it is a function of the code alone."""
    return msgspec.json.encode(openapi_document())


def _openapi() -> Response:
    return Response(_openapi_body(), media_type="application/json")


ROUTES: list[Route] = [
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
    Route("/api/v1/openapi.json", lambda r: _openapi(), methods=["GET"]),
    Route("/api/v1/envs", admin.list_environments, methods=["GET"]),
    Route("/api/v1/envs", admin.create_environment, methods=["POST"]),
    Route(f"{ENV}", admin.get_environment, methods=["GET"]),
    Route(f"{ENV}", admin.update_environment, methods=["PATCH"]),
    Route(f"{ENV}/flags", resources.list_resources, methods=["GET"]),
    Route(f"{ENV}/flags", resources.create_resource, methods=["POST"]),
    Route(f"{ENV}/flags/{{key}}", resources.get_resource, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}", resources.replace_resource, methods=["PUT"]),
    Route(f"{ENV}/flags/{{key}}", resources.archive_resource, methods=["DELETE"]),
    Route(f"{ENV}/flags/{{key}}/history", history.history, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}/kill", flags.kill, methods=["POST"]),
    Route(f"{ENV}/flags/{{key}}/revert", flags.revert, methods=["POST"]),
    Route(f"{ENV}/flags/{{key}}/promote", flags.promote, methods=["POST"]),
    Route(f"{ENV}/flags/{{key}}/rollout", rollouts.get_rollout, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}/rollout", rollouts.put_rollout, methods=["PUT"]),
    Route(f"{ENV}/flags/{{key}}/rollout/{{action}}", rollouts.rollout_action, methods=["POST"]),
    Route(f"{ENV}/flags/{{key}}/monitors", monitors.list_monitors, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}/monitors/{{name}}", monitors.get_monitor, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}/monitors/{{name}}", monitors.put_monitor, methods=["PUT"]),
    Route(f"{ENV}/flags/{{key}}/monitors/{{name}}", monitors.delete_monitor, methods=["DELETE"]),
    Route(
        f"{ENV}/flags/{{key}}/monitors/{{name}}/acknowledge",
        monitors.acknowledge,
        methods=["POST"],
    ),
    Route(f"{ENV}/flags/{{key}}/rollouts", rollouts.list_runs, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}/rollouts/{{run}}/review", rollouts.get_review, methods=["GET"]),
    Route(f"{ENV}/flags/{{key}}/rollouts/{{run}}/lessons", rollouts.put_lessons, methods=["PUT"]),
    Route(f"{ENV}/segments", resources.list_resources, methods=["GET"]),
    Route(f"{ENV}/segments", resources.create_resource, methods=["POST"]),
    Route(f"{ENV}/segments/{{key}}", resources.get_resource, methods=["GET"]),
    Route(f"{ENV}/segments/{{key}}", resources.replace_resource, methods=["PUT"]),
    Route(f"{ENV}/segments/{{key}}", resources.archive_resource, methods=["DELETE"]),
    Route(f"{ENV}/segments/{{key}}/history", history.history, methods=["GET"]),
    Route(f"{ENV}/metrics", resources.list_resources, methods=["GET"]),
    Route(f"{ENV}/metrics", resources.create_resource, methods=["POST"]),
    Route(f"{ENV}/metrics/{{key}}", resources.get_resource, methods=["GET"]),
    Route(f"{ENV}/metrics/{{key}}", resources.replace_resource, methods=["PUT"]),
    Route(f"{ENV}/metrics/{{key}}", resources.archive_resource, methods=["DELETE"]),
    Route(f"{ENV}/metrics/{{key}}/history", history.history, methods=["GET"]),
    Route("/api/v1/tokens", admin.list_tokens, methods=["GET"]),
    Route("/api/v1/tokens", admin.create_token, methods=["POST"]),
    Route("/api/v1/tokens/{token_id}", admin.revoke_token, methods=["DELETE"]),
    Route("/api/v1/audit", admin.list_audit, methods=["GET"]),
    Route("/ofrep/v1/evaluate/flags", ofrep.evaluate_flags, methods=["POST"]),
    Route("/ofrep/v1/evaluate/flags/{key}", ofrep.evaluate_flag, methods=["POST"]),
    Route("/api/v1/sdk/rules", sdk.rules, methods=["GET"]),
    Route("/api/v1/sdk/stream", sdk.stream, methods=["GET"]),
    Route("/api/v1/sdk/exposures", sdk.ingest_exposures, methods=["POST"]),
    Route("/api/v1/sdk/events", sdk.ingest_events, methods=["POST"]),
    Route("/api/v1/sdk/predictions", sdk.ingest_predictions, methods=["POST"]),
    *results.ROUTES_RESULTS,
    *webhooks_api.ROUTES_WEBHOOKS,
]


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
"""Sent with every response: no MIME sniffing, no framing, no referrer."""
DEFAULT_CACHE_CONTROL = "no-store"
"""Unless an endpoint says otherwise (the rules document and the stream say ``no-cache``):
answers carry tokens and private data, and no cache on the way may keep them."""


def _problem(error: ApiError) -> Response:
    return Response(
        msgspec.json.encode(error.to_document()),
        status_code=error.status,
        media_type="application/problem+json",
        headers=error.headers(),
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return _problem(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status_code", 500))
    detail = str(getattr(exc, "detail", "error"))
    body = Problem(type="about:blank", title=detail, status=status, code="http", detail=detail)
    return Response(msgspec.json.encode(body), status, media_type="application/problem+json")


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("rollwise: unhandled error on %s %s", request.method, request.url.path)
    body = Problem(
        type="about:blank", title="Internal Server Error", status=500, code="internal",
        detail="an unexpected error; the server log has the details",
    )  # fmt: skip
    # Sent by Starlette's outermost middleware, past SecurityHeadersMiddleware: add them here.
    headers = {**SECURITY_HEADERS, "Cache-Control": DEFAULT_CACHE_CONTROL}
    return Response(
        msgspec.json.encode(body), 500, media_type="application/problem+json", headers=headers
    )


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every response, and ``Cache-Control: no-store`` to those
    whose endpoint did not choose a ``Cache-Control`` (pure ASGI: streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", DEFAULT_CACHE_CONTROL)
            await send(message)

        await self.app(scope, receive, add_headers)


class MetricsMiddleware:
    """Counts requests by route template, method and status, and times them (pure ASGI)."""

    def __init__(self, app: ASGIApp, templates: RouteTemplates, metrics: Metrics):
        self.app = app
        self.templates = templates
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = self.templates.of(scope)
            if route != "/api/v1/sdk/stream":
                self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()


async def _poll_revisions(server: ServerState) -> None:
    """Re-read revisions now and then, so changes made by another process reach the streams."""
    while True:
        await asyncio.sleep(server.settings.revision_poll_seconds)
        try:
            environments = await threaded(server.store.environments)
        except Exception:
            logger.warning("rollwise: reading revisions failed", exc_info=True)
            continue
        for env in environments:
            server.publish(env["key"], env["revision"])


MAINTENANCE_SECONDS = 3600.0


async def _maintain(server: ServerState) -> None:
    """At start and once an hour: the store's housekeeping (PostgreSQL: event partitions,
    retention)."""
    while True:
        try:
            await threaded(server.store.maintain, server.settings.event_retention)
        except Exception:
            logger.warning("rollwise: the database's housekeeping failed", exc_info=True)
        await asyncio.sleep(MAINTENANCE_SECONDS)


STREAM_TOKEN_CHECK_SECONDS = 1.0


async def _end_tokens(server: ServerState) -> None:
    """Forget the cached lookups and close the streams of tokens that were revoked or expired
    (within about a second of the database saying so, whichever replica revoked them): one
    query per second for every token in use here."""
    while True:
        await asyncio.sleep(STREAM_TOKEN_CHECK_SECONDS)
        tokens = sorted({*server.broadcaster.token_ids(), *server.auth.cached_token_ids()})
        if not tokens:
            continue
        try:
            ended = await threaded(server.store.tokens_ended, tokens, now_iso())
        except Exception:
            logger.warning("rollwise: checking the tokens in use failed", exc_info=True)
            continue
        server.auth.forget_tokens(ended)
        for token_id in ended:
            server.broadcaster.close_token(token_id)


def create_app(settings: Settings | None = None) -> Starlette:
    """The flag server as an ASGI application; the store opens in the lifespan."""
    settings = settings or Settings.from_env()
    tracing = open_tracing(settings.tracing)
    broadcaster = Broadcaster()
    metrics = Metrics(broadcaster.connected)
    holder: dict[str, ServerState] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        options = (
            {"event_max_age": settings.event_max_age, "event_max_future": settings.event_max_future}
            if settings.db.startswith(("postgresql://", "postgres://"))
            else {}
        )
        store = await threaded(open_store, settings.db, **options)
        webhooks = Webhooks.from_settings(store, settings)
        webhooks.start()  # pending deliveries of an earlier run are sent from now on
        server = ServerState(
            settings=settings,
            store=store,
            auth=TokenAuth(store, settings.token_cache_seconds),
            documents=DocumentCache(store),
            broadcaster=broadcaster,
            metrics=metrics,
            ingest=IngestWorker(
                store,
                max_body_bytes=settings.max_body_bytes,
                max_events=settings.max_batch_events,
                max_age=settings.event_max_age,
                max_future=settings.event_max_future,
            ),
            webhooks=webhooks,
            throttle=AuthThrottle(settings.auth_failures_per_minute),
        )
        metrics.storage_writable.set_function(lambda: float(store.writes.writable))
        loop = asyncio.get_running_loop()

        def published_elsewhere(env: str, revision: int) -> None:
            loop.call_soon_threadsafe(server.publish, env, revision)

        store.watch(published_elsewhere)
        for env in await threaded(store.environments):
            server.publish(env["key"], env["revision"])
        app.state.rollwise = server
        holder["server"] = server
        controller = Controller(store, webhooks, server.publish, settings.controller_interval)
        app.state.controller = controller
        metrics.controller_leader.set_function(lambda: float(controller.leading))
        metrics.controller_last_round.set_function(lambda: controller.last_round_at)
        # What is loaded by now (modules, functions, types) lives as long as the process:
        # moved out of the collector's sight, it is not traversed by every full collection
        # (40-100 ms each here; benchmarks/RESULTS.md, "Console pages").
        gc.freeze()
        tasks = [
            asyncio.create_task(_poll_revisions(server)),
            asyncio.create_task(controller.run()),
            asyncio.create_task(_end_tokens(server)),
            asyncio.create_task(_maintain(server)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await threaded(server.ingest.close)
            await threaded(webhooks.close)
            await threaded(store.close)
            if tracing is not None:
                await threaded(tracing.shutdown)  # sends the spans not sent yet

    app = Starlette(
        routes=[*ROUTES, *UI_ROUTES],
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            404: _http_error,
            405: _http_error,
            Exception: _unexpected,
        },
    )
    templates = RouteTemplates([*ROUTES, *UI_ROUTES])
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, templates=templates, metrics=metrics)
    if tracing is not None:
        app.add_middleware(TracingMiddleware, templates=templates, tracing=tracing)
    app.add_middleware(AccessLogMiddleware, templates=templates, sample=settings.access_log_sample)
    return app

"""Optional OpenTelemetry tracing: a span for each request and each database call.

Off by default. ``ROLLWISE_TRACING=otlp`` (with ``pip install 'rollwise[server,otel]'``) sends
spans to an OpenTelemetry collector over OTLP/HTTP, configured by the standard variables
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``, ...). A
request's span is named after its route template (``PUT /api/v1/envs/{env}/flags/{key}``:
never a key or a token) and continues the caller's trace when the request carries a W3C
``traceparent``; each store call made for it (``threaded``) is a child span named after the
store method, with the database system. The provider belongs to the app (not the process), so
servers in one process each trace on their own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollwise_server.routes import RouteTemplates

__all__ = [
    "TRACING_MODES",
    "Tracing",
    "TracingMiddleware",
    "current",
    "open_tracing",
    "store_span",
]

TRACING_MODES = ("off", "otlp")
_current: contextvars.ContextVar[Tracing | None] = contextvars.ContextVar(
    "rollwise_tracing", default=None
)


class Tracing(Protocol):
    """What the server needs of a tracer (``otel.OtelTracing``)."""

    tracer: Any

    def shutdown(self) -> None: ...
    def request(self, scope: Any) -> AbstractContextManager[Any]: ...
    def failed(self, span: Any) -> None: ...


def open_tracing(mode: str) -> Tracing | None:
    """The tracing of ``ROLLWISE_TRACING``: ``None`` when off."""
    if mode == "off":
        return None
    from rollwise_server.otel import OtelTracing

    return OtelTracing()


def current() -> contextvars.ContextVar[Tracing | None]:
    """The tracing of the request being answered (set by ``Tracing.request``)."""
    return _current


@contextmanager
def store_span(func: Callable[..., Any]) -> Iterator[None]:
    """A child span of the current request for a blocking call (``api.common.threaded``);
    nothing when tracing is off or outside a request."""
    tracing = _current.get()
    if tracing is None:
        yield
        return
    owner = getattr(func, "__self__", None)
    name = f"{type(owner).__name__}.{func.__name__}" if owner is not None else func.__name__
    with tracing.tracer.start_as_current_span(name) as span:
        dialect = getattr(owner, "dialect", None)
        if dialect is not None:
            span.set_attribute("db.system.name", dialect)
        yield


class TracingMiddleware:
    """A span per HTTP request, named after its route template (pure ASGI)."""

    def __init__(self, app: ASGIApp, templates: RouteTemplates, tracing: Tracing) -> None:
        self.app = app
        self.templates = templates
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracing.request(scope) as span:
            try:
                await self.app(scope, receive, record)
            finally:
                route = self.templates.of(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.request.method", scope["method"])
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                request_id = scope.get("state", {}).get("request_id")
                if request_id is not None:
                    span.set_attribute("rollwise.request_id", request_id)
                if status >= 500:
                    self.tracing.failed(span)

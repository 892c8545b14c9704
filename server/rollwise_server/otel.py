"""The OpenTelemetry side of ``tracing`` (extra ``rollwise[otel]``): a tracer provider that
sends spans over OTLP/HTTP, as the standard ``OTEL_*`` variables configure it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rollwise.errors import ConfigurationError
from rollwise_server.tracing import current

__all__ = ["OtelTracing"]


class OtelTracing:
    """A tracer and the provider that exports its spans (``shutdown`` sends what is left)."""

    def __init__(self, service: str = "rollwise") -> None:
        try:
            from opentelemetry import propagate, trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ConfigurationError(
                "tracing: ROLLWISE_TRACING=otlp needs OpenTelemetry: "
                "pip install 'rollwise[server,otel]'"
            ) from None
        self._trace = trace
        self._propagate = propagate
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("rollwise_server")

    def shutdown(self) -> None:
        self.provider.shutdown()

    @contextmanager
    def request(self, scope: Any) -> Iterator[Any]:
        """The span of one request, current while it is answered."""
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        parent = self._propagate.extract(carrier)
        kind = self._trace.SpanKind.SERVER
        with self.tracer.start_as_current_span(scope["method"], context=parent, kind=kind) as span:
            token = current().set(self)
            try:
                yield span
            finally:
                current().reset(token)

    def failed(self, span: Any) -> None:
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))

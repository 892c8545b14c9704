"""``ROLLWISE_TRACING=otlp``: spans of requests and of the store calls they make, sent over
OTLP/HTTP to a receiver (a real HTTP server on 127.0.0.1, decoding the protobuf as a collector
does), continuing the caller's W3C trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from rollwise_server.settings import Settings
from rollwise_server.testing import live_server, postgresql_under_test
from tests.server.conftest import EU_SEGMENT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Any] = []
        self.paths: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.server.spans.extend(scope.spans)
        self.server.paths.append(self.path)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield server
    server.shutdown()
    server.server_close()


def _attributes(span: Any) -> dict[str, Any]:
    out = {}
    for item in span.attributes:
        value = item.value
        out[item.key] = value.string_value or value.int_value
    return out


def test_requests_and_their_store_calls_are_traced(receiver: Receiver, tmp_path: Path) -> None:
    with live_server(tmp_path, tracing="otlp") as server:
        response = server.session().post(
            f"{server.url}/api/v1/envs/production/segments",
            json=EU_SEGMENT,
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "X-Request-ID": "trace-1"},
        )
        assert response.status_code == 201
        assert server.session().get(f"{server.url}/api/v1/envs/nowhere").status_code == 404
    # the server has stopped: its provider sent what was left
    assert receiver.paths
    assert set(receiver.paths) == {"/v1/traces"}
    by_name: dict[str, list[Any]] = {}
    for span in receiver.spans:
        by_name.setdefault(span.name, []).append(span)
    assert "POST /api/v1/envs/{env}/segments" in by_name, sorted(by_name)
    (request,) = by_name["POST /api/v1/envs/{env}/segments"]
    assert request.trace_id.hex() == TRACE_ID  # the caller's trace goes on
    assert request.parent_span_id.hex() == PARENT_ID
    assert (
        _attributes(request).items()
        >= {
            "http.route": "/api/v1/envs/{env}/segments",
            "http.response.status_code": 201,
            "rollwise.request_id": "trace-1",
        }.items()
    )
    store, dialect = (
        ("PostgresStore", "postgresql") if postgresql_under_test() else ("SQLiteStore", "sqlite")
    )
    writes = [s for s in by_name.get(f"{store}.write_resource", [])
              if s.trace_id == request.trace_id]  # fmt: skip
    assert len(writes) == 1, sorted(by_name)
    assert writes[0].parent_span_id == request.span_id
    assert _attributes(writes[0])["db.system.name"] == dialect
    assert "nowhere" not in " ".join(by_name)  # names are templates, never values
    assert by_name["GET /api/v1/envs/{env}"]


def test_tracing_is_off_by_default_and_a_bad_mode_names_the_variable() -> None:
    assert Settings().tracing == "off"
    with pytest.raises(Exception, match="ROLLWISE_TRACING: must be one of off, otlp"):
        Settings(tracing="jaeger")

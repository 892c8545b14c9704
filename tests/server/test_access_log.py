"""The access log: failures always, a sample of the rest, request ids, JSON lines; and every
``rollwise serve`` option from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rollwise_server.access import AccessLogMiddleware, JsonFormatter, request_id
from rollwise_server.routes import RouteTemplates
from rollwise_server.testing import ServerProcess


class Who:
    owner = "alice"


async def ok(request: Request) -> Response:
    request.state.principal = Who()
    return PlainTextResponse("ok")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


class Client:
    """Calls the app as an ASGI server would (one request, no network)."""

    def __init__(self, sample: float) -> None:
        draws = random.Random(7)  # noqa: S311 - a fixed seed: the sample is reproducible
        routes = [Route("/items/{key}", ok), Route("/things/{key}", ok), Route("/boom", boom)]
        app = Starlette(routes=routes)
        templates = RouteTemplates(routes)
        app.add_middleware(
            AccessLogMiddleware, templates=templates, sample=sample, chance=draws.random
        )
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "server": ("test", 80), "client": ("127.0.0.1", 1),
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        }  # fmt: skip
        start: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)

        async def call() -> None:
            # a 500 is sent, and the error goes on to the server, as with uvicorn
            with contextlib.suppress(RuntimeError):
                await self.app(scope, receive, send)

        asyncio.run(call())
        names = {k.decode(): v.decode() for k, v in start.get("headers", [])}
        return int(start["status"]), {k.lower(): v for k, v in names.items()}


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The access log's records (``log.records``: those of the test's call phase)."""
    caplog.set_level(logging.INFO, logger="rollwise.access")
    return caplog


def test_every_request_is_logged_with_its_route_template_and_actor_at_sample_one(
    log: pytest.LogCaptureFixture,
) -> None:
    status, headers = Client(1.0).get("/items/secret-key", headers={"X-Request-ID": "abc-123"})
    assert status == 200
    assert headers["x-request-id"] == "abc-123"
    (record,) = log.records
    fields = record.access  # type: ignore[attr-defined]
    assert fields["route"] == "/items/{key}"  # the template, never the key
    assert "secret-key" not in record.getMessage()
    assert (fields["status"], fields["actor"], fields["request_id"]) == (200, "alice", "abc-123")
    assert fields["duration_ms"] >= 0


def test_routes_that_share_an_endpoint_are_told_apart(log: pytest.LogCaptureFixture) -> None:
    """The flags, segments and metrics routes share their endpoints: each is logged (and
    counted, and traced) under its own template."""
    client = Client(1.0)
    client.get("/things/a")
    client.get("/items/b")
    assert [r.access["route"] for r in log.records] == ["/things/{key}", "/items/{key}"]  # type: ignore[attr-defined]


def test_at_sample_zero_only_failures_are_logged(log: pytest.LogCaptureFixture) -> None:
    client = Client(0.0)
    for _ in range(20):
        assert client.get("/items/a")[0] == 200
    assert log.records == []
    assert client.get("/boom")[0] == 500
    (record,) = log.records
    assert record.levelno == logging.WARNING
    assert record.access["status"] == 500  # type: ignore[attr-defined]


def test_a_sample_is_about_its_share(log: pytest.LogCaptureFixture) -> None:
    client = Client(0.1)
    for _ in range(1000):
        client.get("/items/a")
    assert 50 <= len(log.records) <= 160  # binomial(1000, 0.1): mean 100, sd 9.5


def test_request_ids() -> None:
    assert request_id("req-1.2:3_x") == "req-1.2:3_x"
    for bad in (None, "", "x" * 65, "a b", "<script>", "é"):
        made = request_id(bad)
        assert made != bad
        assert len(made) == 16


def test_json_lines() -> None:
    record = logging.LogRecord(
        "rollwise.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None
    )
    record.access = {"request_id": "r1", "status": 200}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x"
    assert (line["level"], line["logger"], line["request_id"], line["status"]) == (
        "info", "rollwise.access", "r1", 200,
    )  # fmt: skip
    assert line["ts"].endswith("Z")


def test_rollwise_serve_takes_its_options_from_the_environment_and_logs_json(
    tmp_path: Path,
) -> None:
    env = {"ROLLWISE_LOG_FORMAT": "json", "ROLLWISE_ACCESS_LOG_SAMPLE": "1",
           "ROLLWISE_HOST": "127.0.0.1"}  # fmt: skip
    with ServerProcess(tmp_path, log_level="info", **env) as server:
        response = requests.get(
            f"{server.url}/api/v1/envs", headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200
        rid = response.headers["X-Request-ID"]
    records = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    (access,) = [r for r in records if r.get("request_id") == rid]
    assert access["route"] == "/api/v1/envs"
    assert access["status"] == 200
    assert access["actor"] == "admin"
    assert any("Uvicorn running" in r["message"] for r in records)  # uvicorn's lines too
    assert not any(
        '"GET /api/v1/envs HTTP/1.1"' in r["message"] for r in records
    )  # no uvicorn access

"""The access log: one line per request, for every failure and a sample of the rest.

uvicorn's own access log writes a line for every request at the default level (1.8 M lines,
131 MB in one benchmark), so ``rollwise serve`` turns it off and this middleware logs instead
(logger ``rollwise.access``): every 5xx, and each other request with probability
``access_log_sample`` (default 1%; 0 turns sampling off, 1 logs everything). Each line carries
the request id (the client's ``X-Request-ID`` if it is a short token, else a new one, sent back
in the response), the method, the route template (not the path: no keys or secrets), the
status, the duration and the actor (the token's owner) when the request authenticated.
With ``--log-format json`` every log line is one JSON object (``JsonFormatter``).
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollwise_server.routes import RouteTemplates

__all__ = ["AccessLogMiddleware", "JsonFormatter", "request_id"]

_RANDOM = random.Random()  # noqa: S311 - jitter and sampling, not secrets
"""The access log sampler's own generator: it never moves the global ``random`` state, which
applications (and Hypothesis, in the tests) own."""

logger = logging.getLogger("rollwise.access")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
FIELDS = ("request_id", "method", "route", "status", "duration_ms", "actor")


def request_id(given: str | None) -> str:
    """The client's request id if it is a short token of safe characters, else a new one."""
    if given is not None and _CLIENT_ID.fullmatch(given):
        return given
    return secrets.token_hex(8)


class AccessLogMiddleware:
    """Logs failures and a sample of requests; gives each request an id (pure ASGI)."""

    def __init__(
        self,
        app: ASGIApp,
        templates: RouteTemplates,
        sample: float,
        chance: Callable[[], float] = _RANDOM.random,
    ) -> None:
        self.app = app
        self.templates = templates
        self.sample = sample
        self.chance = chance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id")
        rid = request_id(given.decode("latin-1") if given is not None else None)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if status >= 500 or (self.sample > 0 and self.chance() < self.sample):
                principal = scope.get("state", {}).get("principal")
                actor = getattr(principal, "owner", None) or getattr(principal, "name", None)
                route = self.templates.of(scope)
                duration = round(1000 * (time.perf_counter() - start), 2)
                fields = {"request_id": rid, "method": scope["method"], "route": route,
                          "status": status, "duration_ms": duration, "actor": actor}  # fmt: skip
                logger.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    "%s %s %s %s %.2fms %s", rid, scope["method"], route, status, duration,
                    actor or "-", extra={"access": fields},
                )  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an access line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)

    converter = time.gmtime  # type: ignore[assignment]

"""The console's writes go through the JSON API, in process.

A form handler does not reimplement a change: it sends the same request an API client would
(``call``) to the same endpoint, as the signed-in person. Approvals, protected environments,
roles, If-Match, kills that end rollouts — every guarantee of ``/api/v1`` holds for the console
because it is the same code. The principal travels in the ASGI scope under ``PRINCIPAL_KEY``,
which only server code can set: a client's request has no way to put it there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import attrs
import msgspec
from starlette.requests import Request

from rollwise_server.api.common import PRINCIPAL_KEY
from rollwise_server.auth import Principal
from rollwise_server.errors import ApiError

__all__ = ["PRINCIPAL_KEY", "Answer", "call"]


@attrs.frozen
class Answer:
    """What the API answered: the status, the decoded JSON body and the headers."""

    status: int
    body: Any
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problems(self) -> list[dict[str, str]]:
        """The problem document's ``problems`` (each a path and a message), if any."""
        if isinstance(self.body, dict) and isinstance(self.body.get("problems"), list):
            return [p for p in self.body["problems"] if isinstance(p, dict)]
        return []

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or "")
        return ""


async def call(
    request: Request,
    principal: Principal,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    if_match: int | None = None,
) -> Answer:
    """Send ``method path`` with a JSON ``body`` to the API, as ``principal``."""
    headers = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
    if if_match is not None:
        headers.append((b"if-match", f'"{if_match}"'.encode()))
    raw = b"" if body is None else msgspec.json.encode(body)
    headers.append((b"content-length", str(len(raw)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode(query or {}).encode(),
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        "app": request.app,
        "state": request.scope.get("state", {}),
        PRINCIPAL_KEY: principal,
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app.router(scope, receive, send)
    except ApiError as error:
        document = msgspec.to_builtins(error.to_document())
        return Answer(error.status, document, error.headers())
    data = b"".join(chunks)
    decoded = msgspec.json.decode(data) if data else None
    names = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}
    return Answer(int(start.get("status", 500)), decoded, names)

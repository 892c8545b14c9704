"""A deliberately misbehaving flag server on 127.0.0.1, for the SDK's fault tests.

It speaks just enough of the SDK protocol (rules with ETag, the SSE stream, event ingestion)
over real sockets, and can be told to answer 500s, garbage, or to hang. Faults that a real
server cannot be made to produce on demand are the reason it exists.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FaultServer"]


class FaultServer:
    """``mode``: ``ok``, ``error`` (500), ``garbage`` (200 with junk), ``hang`` (no answer).

    ``retry_ms`` makes each stream start with a ``retry:`` block; ``stream_once`` ends each
    stream right after its first event; ``heartbeats`` sends a comment line every 0.2 s.
    ``arrivals`` has the monotonic time and path of every request, ``streams_ended`` the time
    each stream was closed by the server.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.mode = "ok"
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self.retry_ms: int | None = None
        self.stream_once = False
        self.heartbeats = False
        self.arrivals: list[tuple[float, str]] = []
        self.streams_ended: list[float] = []
        self._release = threading.Event()
        self._changed = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _misbehave(self) -> bool:
                owner.requests += 1
                if owner.mode == "hang":
                    owner._release.wait(30)
                    self.close_connection = True
                    return True
                if owner.mode == "error":
                    self._send(500, b'{"detail": "broken"}')
                    return True
                if owner.mode == "garbage":
                    self._send(200, b"\x00\xffnot json at all")
                    return True
                return False

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                owner.arrivals.append((time.monotonic(), self.path))
                if self._misbehave():
                    return
                if self.path.startswith("/api/v1/sdk/rules"):
                    revision = owner.document.get("revision")
                    if self.headers.get("If-None-Match") == f'"{revision}"':
                        self._send(304, b"", {"ETag": f'"{revision}"'})
                    else:
                        body = json.dumps(owner.document).encode()
                        self._send(200, body, {"ETag": f'"{revision}"'})
                elif self.path.startswith("/api/v1/sdk/stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    if owner.retry_ms is not None:
                        self.wfile.write(f"retry: {owner.retry_ms}\r\n\r\n".encode())
                    sent = None
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline and owner.mode == "ok":
                        revision = owner.document.get("revision")
                        if revision != sent:
                            data = json.dumps({"revision": revision, "document": owner.document})
                            chunk = f"id: {revision}\r\nevent: rules\r\ndata: {data}\r\n\r\n"
                            try:
                                self.wfile.write(chunk.encode())
                                self.wfile.flush()
                            except OSError:
                                return
                            sent = revision
                            if owner.stream_once:
                                break
                        with owner._changed:
                            owner._changed.wait(0.2)
                        if owner.heartbeats:
                            try:
                                self.wfile.write(b": ping\r\n")
                                self.wfile.flush()
                            except OSError:
                                return
                    self.close_connection = True
                    if owner.stream_once:
                        with contextlib.suppress(OSError):
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_RDWR)
                        owner.streams_ended.append(time.monotonic())
                else:
                    self._send(404, b"{}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self._misbehave():
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                events = json.loads(raw)["events"]
                owner.received.extend(events)
                answer = {"accepted": len(events), "duplicates": 0, "rejected": 0, "errors": []}
                self._send(200, json.dumps(answer).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # streams may still be open: do not wait for them
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def publish(self, document: dict[str, Any]) -> None:
        """Serve ``document`` from now on and push it to the open streams."""
        self.document = document
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.mode = "ok"
        self._server.shutdown()
        self._server.server_close()

"""How the SDK talks to the flag server: a two-method seam and its ``requests`` implementation.

``Transport`` is what the sync and sender threads need (after httpx's transport seam):
fetching the rules document with an ETag, following the change stream, and posting event
batches. ``RequestsTransport`` does it over one pooled ``requests.Session``; its errors are the
SDK's own: ``ServerUnavailableError`` (unreachable, timeout, 5xx), ``AuthenticationError``
(401/403) and ``TransportError`` for other refusals, each with the HTTP ``status`` if any.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

import attrs
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rollwise._version import __version__
from rollwise.config import ClientConfig
from rollwise.errors import AuthenticationError, ServerUnavailableError, TransportError
from rollwise.sse import SSEEvent, iter_events, iter_lines

__all__ = ["EventKind", "RequestsTransport", "RulesResponse", "SendResult", "Stream", "Transport"]

EventKind = Literal["exposures", "outcomes"]
_PATHS = {"exposures": "/api/v1/sdk/exposures", "outcomes": "/api/v1/sdk/events"}
USER_AGENT = f"rollwise-python/{__version__}"


@attrs.frozen
class RulesResponse:
    """``status`` 200 with the document's bytes, or 304 (``body`` is ``None``)."""

    status: int
    etag: str | None
    body: bytes | None


@attrs.frozen
class SendResult:
    accepted: int
    duplicates: int
    rejected: int
    errors: tuple[Any, ...] = ()


class Stream(Protocol):
    def events(self) -> Iterator[SSEEvent]: ...
    def close(self) -> None: ...


class Transport(Protocol):
    def fetch_rules(self, etag: str | None) -> RulesResponse: ...
    def open_stream(self, last_event_id: str | None) -> Stream: ...
    def send_events(self, kind: EventKind, bodies: Sequence[str]) -> SendResult: ...
    def close(self) -> None: ...


def _error(response: requests.Response, what: str) -> TransportError:
    detail = response.text[:300]
    with contextlib.suppress(ValueError):
        detail = str(response.json().get("detail", detail))
    message = f"{what}: the server answered {response.status_code}: {detail}"
    error: TransportError
    if response.status_code in (401, 403):
        error = AuthenticationError(message)
    elif response.status_code >= 500:
        error = ServerUnavailableError(message)
    else:
        error = TransportError(message)
    error.status = response.status_code  # type: ignore[attr-defined]
    return error


class _RequestsStream:
    def __init__(self, response: requests.Response) -> None:
        self._response = response

    def _chunks(self) -> Iterator[bytes]:
        """Whatever bytes have arrived, as soon as they arrive (``read1``), chunked or not."""
        raw = self._response.raw
        while True:
            data = raw.read1(65536)
            if not data:
                return
            yield data

    def events(self) -> Iterator[SSEEvent]:
        try:
            yield from iter_events(iter_lines(self._chunks()))
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            # OSError/ValueError: the response was closed under the reader by close()
            raise ServerUnavailableError(f"the rules stream broke: {exc}") from exc

    def close(self) -> None:
        """Close the stream, waking a thread blocked reading it (shut the socket down first)."""
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()


class RequestsTransport:
    """``Transport`` over one pooled ``requests.Session``."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._session = requests.Session()
        self._session.headers.update(
            {"Authorization": f"Bearer {config.sdk_key}", "User-Agent": USER_AGENT}
        )
        retry = Retry(
            total=2,
            connect=2,
            read=0,
            status=2,
            backoff_factor=0.1,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=4)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._timeout = (config.connect_timeout, config.read_timeout)

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, self._config.url + path, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerUnavailableError(
                f"{what}: {self._config.url} is unreachable: {exc}"
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(f"{what}: {exc}") from exc

    def fetch_rules(self, etag: str | None) -> RulesResponse:
        headers = {"Accept-Encoding": "gzip"}
        if etag:
            headers["If-None-Match"] = etag
        response = self._request(
            "GET", "/api/v1/sdk/rules", "fetching rules", headers=headers, timeout=self._timeout
        )
        if response.status_code == 304:
            return RulesResponse(304, response.headers.get("ETag", etag), None)
        if response.status_code != 200:
            raise _error(response, "fetching rules")
        return RulesResponse(200, response.headers.get("ETag"), response.content)

    def open_stream(self, last_event_id: str | None) -> Stream:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        response = self._request(
            "GET",
            "/api/v1/sdk/stream",
            "opening the rules stream",
            headers=headers,
            stream=True,
            timeout=(self._config.connect_timeout, self._config.stream_timeout),
        )
        if response.status_code != 200:
            response.close()
            raise _error(response, "opening the rules stream")
        return _RequestsStream(response)

    def send_events(self, kind: EventKind, bodies: Sequence[str]) -> SendResult:
        payload = gzip.compress(('{"events":[' + ",".join(bodies) + "]}").encode(), 5)
        response = self._request(
            "POST",
            _PATHS[kind],
            f"sending {kind}",
            data=payload,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            timeout=self._timeout,
        )
        if response.status_code != 200:
            raise _error(response, f"sending {kind}")
        try:
            result = response.json()
            return SendResult(
                int(result["accepted"]),
                int(result["duplicates"]),
                int(result["rejected"]),
                tuple(result.get("errors", ())),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ServerUnavailableError(f"sending {kind}: an unreadable answer: {exc}") from exc

    def close(self) -> None:
        self._session.close()

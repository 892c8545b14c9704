"""How the SDK talks to the flag server: a two-method seam and its ``requests`` implementation.

``Transport`` is what the sync and sender threads need (after httpx's transport seam):
fetching the rules document with an ETag, following the change stream, and posting event
batches. ``RequestsTransport`` does it over one pooled ``requests.Session``; its errors are the
SDK's own: ``ServerUnavailableError`` (unreachable, timeout, 5xx), ``AuthenticationError``
(401/403) and ``TransportError`` for other refusals, each with the HTTP ``status`` if any.
Each call is one request: urllib3's own retries are off, because the threads retry with their
own backoff and log each change of state once, where urllib3 would log every retry.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol

import attrs
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rollwise import limits
from rollwise._version import __version__
from rollwise.config import ClientConfig
from rollwise.errors import AuthenticationError, ServerUnavailableError, TransportError
from rollwise.sse import SSEEvent, SSEParser, iter_lines

__all__ = [
    "EVENT_PATHS",
    "HEARTBEAT",
    "MAX_STREAM_LINE",
    "USER_AGENT",
    "EventKind",
    "Failover",
    "RequestsTransport",
    "RulesResponse",
    "SendResult",
    "Stream",
    "Transport",
    "batch_payload",
    "http_error",
    "send_result",
    "stream_events",
]

EventKind = Literal["exposures", "outcomes", "predictions"]
EVENT_PATHS = {
    "exposures": "/api/v1/sdk/exposures",
    "outcomes": "/api/v1/sdk/events",
    "predictions": "/api/v1/sdk/predictions",
}
USER_AGENT = f"rollwise-python/{__version__}"
_READ_SIZE = 65536


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
    """An open rules stream.

    ``events()`` yields each event, and ``HEARTBEAT`` for each comment line (the server's
    heartbeat), so that a reader knows the stream is alive; it raises a ``TransportError`` when
    the stream breaks. A stream may also have a ``retry`` attribute: the reconnection time in
    milliseconds that the server last asked for (``None`` if it did not).
    """

    def events(self) -> Iterator[SSEEvent]: ...
    def close(self) -> None: ...


HEARTBEAT = SSEEvent(event="", data="")
"""What ``Stream.events()`` yields for a comment line; a parsed event never has an empty name."""


class Transport(Protocol):
    def fetch_rules(self, etag: str | None) -> RulesResponse: ...
    def open_stream(self, last_event_id: str | None) -> Stream: ...
    def send_events(self, kind: EventKind, bodies: Sequence[str]) -> SendResult: ...
    def close(self) -> None: ...


_CONNECTION_PREFIX = re.compile(r"^(?:<[^>]*>|\w+\(host=[^)]*\)): ")


def _cause(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the wrappers' repetitions.

    ``Failed to establish a new connection: [Errno 111] Connection refused`` rather than
    ``HTTPConnectionPool(...): Max retries exceeded with url: ... (Caused by ...)``.
    """
    for _ in range(8):
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args:
            inner = exc.args[0]
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    return _CONNECTION_PREFIX.sub("", str(exc)) or type(exc).__name__


def _bounded_body(response: requests.Response) -> bytes:
    """The decoded body, read no further than one byte past ``MAX_DOCUMENT_BYTES``: a larger
    document is refused by the parser anyway, and a gzip bomb is not inflated whole."""
    try:
        body = response.raw.read(limits.MAX_DOCUMENT_BYTES + 1, decode_content=True)
    except Exception as exc:  # urllib3's decoding and protocol errors
        raise ServerUnavailableError(f"fetching rules: reading the answer failed: {exc}") from exc
    finally:
        response.close()
    return bytes(body or b"")


def _error(response: requests.Response, what: str) -> TransportError:
    return http_error(response.status_code, response.text, what)


def http_error(status: int, text: str, what: str) -> TransportError:
    """The SDK's error for an HTTP answer other than 200 (and 304 for the rules), with its
    ``status``: 401/403 refuse the key, 5xx and 429 mean "try again later", the rest refuse."""
    detail = text[:300]
    with contextlib.suppress(ValueError, AttributeError):
        detail = str(json.loads(text).get("detail", detail))
    message = f"{what}: the server answered {status}: {detail}"
    error: TransportError
    if status in (401, 403):
        error = AuthenticationError(message)
    elif status >= 500 or status == 429:  # try again later
        error = ServerUnavailableError(message)
    else:
        error = TransportError(message)
    error.status = status  # type: ignore[attr-defined]
    return error


def batch_payload(bodies: Sequence[str]) -> bytes:
    """The gzip'd ``{"events": [...]}`` body of one batch of JSON events."""
    return gzip.compress(('{"events":[' + ",".join(bodies) + "]}").encode(), 5)


def send_result(kind: EventKind, answer: Any) -> SendResult:
    """The ingest endpoint's parsed answer; an unreadable one means "try again later"."""
    try:
        return SendResult(
            int(answer["accepted"]),
            int(answer["duplicates"]),
            int(answer["rejected"]),
            tuple(answer.get("errors", ())),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServerUnavailableError(f"sending {kind}: an unreadable answer: {exc}") from exc


def stream_events(parser: SSEParser, lines: Iterable[str]) -> Iterator[SSEEvent]:
    """The events that ``lines`` of a rules stream dispatch, and ``HEARTBEAT`` for a comment."""
    for line in lines:
        comments = parser.comments
        event = parser.feed_line(line)
        if event is not None:
            yield event
        elif parser.comments != comments:
            yield HEARTBEAT


MAX_STREAM_LINE = 2 * limits.MAX_DOCUMENT_BYTES
"""The longest stream line read: an event's data line holds one rules document (refused above
``MAX_DOCUMENT_BYTES`` anyway), so a server cannot make the reader hold more."""


class _RequestsStream:
    def __init__(self, response: requests.Response, last_event_id: str | None) -> None:
        self._response = response
        self._parser = SSEParser(last_event_id=last_event_id)

    @property
    def retry(self) -> int | None:
        """The reconnection time (milliseconds) the server asked for with ``retry:``, if any."""
        return self._parser.retry

    def _chunks(self) -> Iterator[bytes]:
        """Whatever bytes have arrived, as soon as they arrive, on any urllib3 from 1.26 on."""
        raw = self._response.raw
        read1 = getattr(raw, "read1", None)  # urllib3 >= 2.2: chunked or not
        if read1 is not None:
            while data := read1(_READ_SIZE):
                yield data
        elif getattr(raw, "chunked", False):  # 1.26 to 2.1: one HTTP chunk at a time
            yield from raw.read_chunked(decode_content=False)
        else:  # these can only block for a whole buffer here, which would stall the events
            raise ServerUnavailableError(
                "the rules stream is not chunked, and urllib3 before 2.2 cannot read it as it "
                "arrives: install urllib3>=2.2"
            )

    def events(self) -> Iterator[SSEEvent]:
        try:
            yield from stream_events(
                self._parser, iter_lines(self._chunks(), max_line=MAX_STREAM_LINE)
            )
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            # OSError/ValueError: the response was closed under the reader by close()
            raise ServerUnavailableError(f"the rules stream broke: {exc}") from exc

    def close(self) -> None:
        """Close the stream, waking a thread blocked reading it (shut the socket down first).

        A response read to the connection's end (no length, not chunked) has taken the socket
        from its connection (``connection.sock`` is ``None``): then it is reached through a
        duplicate of the response's descriptor, since shutting down either shuts down both.
        """
        raw = self._response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        # AttributeError, ValueError, OSError: the response is closed already (no descriptor)
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                with socket.fromfd(raw.fileno(), socket.AF_INET, socket.SOCK_STREAM) as dup:
                    dup.shutdown(socket.SHUT_RDWR)
        self._response.close()


class Failover:
    """The server that requests go to: ``url`` first, then each of ``fallback_urls`` in turn
    while the current one cannot be reached; it stays on the one that answers."""

    def __init__(self, config: ClientConfig) -> None:
        self._urls = (config.url, *config.fallback_urls)
        self._current = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._urls[self._current]

    def pick(self) -> tuple[int, str]:
        """The index and URL of the server for the next request."""
        with self._lock:
            return self._current, self._urls[self._current]

    def failed(self, index: int) -> str:
        """The server at ``index`` was unreachable: move on; ``"; next: <url>"``, or ``""``
        when there is no other."""
        if len(self._urls) == 1:
            return ""
        with self._lock:  # the next attempt goes to the next replica
            if self._current == index:
                self._current = (index + 1) % len(self._urls)
            return f"; next: {self._urls[self._current]}"


class RequestsTransport:
    """``Transport`` over one pooled ``requests.Session``."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._session = requests.Session()
        self._session.headers.update(
            {"Authorization": f"Bearer {config.sdk_key}", "User-Agent": USER_AGENT}
        )
        # No retries inside urllib3: the sync and sender threads retry with their own backoff
        # and report each change of state once, where urllib3 would log every retry.
        retry = Retry(total=0, read=False, raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=4)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._timeout = (config.connect_timeout, config.read_timeout)
        self._servers = Failover(config)

    @property
    def url(self) -> str:
        """The server that requests go to now: ``url``, or the fallback that last answered."""
        return self._servers.url

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        index, url = self._servers.pick()
        try:
            return self._session.request(method, url + path, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            then = self._servers.failed(index)
            raise ServerUnavailableError(
                f"{what}: {url} is unreachable: {_cause(exc)}{then}"
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(f"{what}: {exc}") from exc

    def fetch_rules(self, etag: str | None) -> RulesResponse:
        headers = {"Accept-Encoding": "gzip"}
        if etag:
            headers["If-None-Match"] = etag
        response = self._request(
            "GET", "/api/v1/sdk/rules", "fetching rules", headers=headers,
            timeout=self._timeout, stream=True,  # read bounded (``_bounded_body``)
        )  # fmt: skip
        if response.status_code == 304:
            return RulesResponse(304, response.headers.get("ETag", etag), None)
        if response.status_code != 200:
            raise _error(response, "fetching rules")
        return RulesResponse(200, response.headers.get("ETag"), _bounded_body(response))

    def open_stream(self, last_event_id: str | None) -> Stream:
        # identity: the reader takes the bytes as they come, with no content decoding
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
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
        return _RequestsStream(response, last_event_id)

    def send_events(self, kind: EventKind, bodies: Sequence[str]) -> SendResult:
        payload = batch_payload(bodies)
        response = self._request(
            "POST",
            EVENT_PATHS[kind],
            f"sending {kind}",
            data=payload,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            timeout=self._timeout,
        )
        if response.status_code != 200:
            raise _error(response, f"sending {kind}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise ServerUnavailableError(f"sending {kind}: an unreadable answer: {exc}") from exc
        return send_result(kind, answer)

    def close(self) -> None:
        self._session.close()

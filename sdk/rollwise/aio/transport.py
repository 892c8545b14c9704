"""``HttpxTransport``: the SDK's three requests over one ``httpx.AsyncClient``.

The asyncio counterpart of ``rollwise.transport.RequestsTransport``, with the same requests,
headers, bounds, errors (``ServerUnavailableError``, ``AuthenticationError``, ``TransportError``
with the HTTP ``status``) and failover to ``fallback_urls``; the encoding of a batch, the
reading of the ingest answer and the stream's parsing are the same functions. httpx makes no
retries of its own: the tasks retry with their own backoff.
"""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from rollwise import limits
from rollwise.config import ClientConfig
from rollwise.errors import ServerUnavailableError, TransportError
from rollwise.sse import LineSplitter, SSEEvent, SSEParser
from rollwise.transport import (
    EVENT_PATHS,
    MAX_STREAM_LINE,
    USER_AGENT,
    EventKind,
    Failover,
    RulesResponse,
    SendResult,
    batch_payload,
    http_error,
    send_result,
    stream_events,
)

__all__ = ["AsyncReader", "HttpxTransport"]

_TRANSPORT_ERRORS = (httpx.TransportError, httpx.StreamError)


class AsyncReader:
    """An open rules stream, read one event at a time; closed by the task that opened it.

    ``close()`` (what the rules plan calls) only asks for it; ``aclose()`` closes the response.
    """

    def __init__(self, response: httpx.Response, last_event_id: str | None) -> None:
        self._response = response
        self._parser = SSEParser(last_event_id=last_event_id)
        self._lines = LineSplitter(max_line=MAX_STREAM_LINE)
        self._chunks: AsyncIterator[bytes] = response.aiter_raw()
        self._ready: collections.deque[SSEEvent] = collections.deque()
        self.closing = False

    @property
    def retry(self) -> int | None:
        """The reconnection time (milliseconds) the server asked for with ``retry:``, if any."""
        return self._parser.retry

    async def next_event(self) -> SSEEvent | None:
        """The next event (``HEARTBEAT`` for a comment), or ``None`` when the stream ends."""
        while not self._ready:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return None
            except (*_TRANSPORT_ERRORS, ValueError) as exc:
                raise ServerUnavailableError(f"the rules stream broke: {exc!r}") from exc
            try:
                self._ready.extend(stream_events(self._parser, self._lines.feed(chunk)))
            except ValueError as exc:  # a line over MAX_STREAM_LINE
                raise ServerUnavailableError(f"the rules stream broke: {exc}") from exc
        return self._ready.popleft()

    def close(self) -> None:
        self.closing = True

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxTransport:
    """Fetch the rules, open the stream and post event batches with httpx."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {config.sdk_key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            follow_redirects=False,
        )
        self._servers = Failover(config)

    @property
    def url(self) -> str:
        """The server that requests go to now: ``url``, or the fallback that last answered."""
        return self._servers.url

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request, its answer's body still to read (``stream=True``)."""
        index, url = self._servers.pick()
        request = self._client.build_request(method, url + path, **kwargs)
        try:
            return await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            then = self._servers.failed(index)
            cause = str(exc) or type(exc).__name__
            raise ServerUnavailableError(f"{what}: {url} is unreachable: {cause}{then}") from exc

    async def _refusal(self, response: httpx.Response, what: str) -> TransportError:
        try:
            text = (await response.aread())[:4096].decode("utf-8", "replace")
        except _TRANSPORT_ERRORS:
            text = ""
        finally:
            await response.aclose()
        return http_error(response.status_code, text, what)

    async def fetch_rules(self, etag: str | None) -> RulesResponse:
        headers = {"Accept-Encoding": "gzip"}
        if etag:
            headers["If-None-Match"] = etag
        response = await self._call("GET", "/api/v1/sdk/rules", "fetching rules", headers=headers)
        if response.status_code == 304:
            await response.aclose()
            return RulesResponse(304, response.headers.get("ETag", etag), None)
        if response.status_code != 200:
            raise await self._refusal(response, "fetching rules")
        return RulesResponse(200, response.headers.get("ETag"), await _bounded_body(response))

    async def open_stream(self, last_event_id: str | None) -> AsyncReader:
        # identity: the reader takes the bytes as they come, with no content decoding
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(self._config.stream_timeout, connect=self._config.connect_timeout)
        what = "opening the rules stream"
        response = await self._call(
            "GET", "/api/v1/sdk/stream", what, headers=headers, timeout=timeout
        )
        if response.status_code != 200:
            raise await self._refusal(response, what)
        return AsyncReader(response, last_event_id)

    async def send_events(self, kind: EventKind, bodies: Sequence[str]) -> SendResult:
        what = f"sending {kind}"
        response = await self._call(
            "POST",
            EVENT_PATHS[kind],
            what,
            content=batch_payload(bodies),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        if response.status_code != 200:
            raise await self._refusal(response, what)
        try:
            answer = json.loads(await response.aread())
        except (*_TRANSPORT_ERRORS, ValueError) as exc:
            raise ServerUnavailableError(f"{what}: an unreadable answer: {exc}") from exc
        finally:
            await response.aclose()
        return send_result(kind, answer)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _bounded_body(response: httpx.Response) -> bytes:
    """The decoded body, read no further than one byte past ``MAX_DOCUMENT_BYTES``: a larger
    document is refused by the parser anyway, and a gzip bomb is not inflated whole."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limits.MAX_DOCUMENT_BYTES:
                break
    except (*_TRANSPORT_ERRORS, httpx.DecodingError) as exc:
        raise ServerUnavailableError(f"fetching rules: reading the answer failed: {exc}") from exc
    finally:
        await response.aclose()
    return bytes(body[: limits.MAX_DOCUMENT_BYTES + 1])

"""``RulesSync``: the thread that keeps a client's rules fresh.

It fetches the document (``If-None-Match``), then follows the server-sent-events stream, each
event carrying a new revision's document. When the stream breaks it reconnects with jittered
exponential backoff and ``Last-Event-ID``, fetching once in between so nothing is missed; when
streaming is off, or keeps failing, it polls every ``poll_interval``. A document that fails to
parse or compile is rejected and the last good one stays; the error shows in ``status()``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rollwise.backoff import Backoff
from rollwise.config import ClientConfig
from rollwise.errors import AuthenticationError, RollwiseError
from rollwise.rules import RulesDocument
from rollwise.transport import Stream, Transport

__all__ = ["RulesSync", "SyncState"]

logger = logging.getLogger("rollwise")

_STREAM_FAILURES_BEFORE_POLLING = 3


class SyncState:
    """What the sync thread knows, read by ``Client.status()`` (plain attributes, no lock)."""

    def __init__(self) -> None:
        self.connection = "connecting"
        self.last_sync: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.rejected_revision: int | None = None


class RulesSync:
    """Fetch, stream, reconnect and poll; ``install(document, source)`` adopts a new document."""

    def __init__(
        self,
        config: ClientConfig,
        transport: Transport,
        install: Callable[[RulesDocument], bool],
        current_revision: Callable[[], int | None],
        ready: threading.Event,
    ) -> None:
        self._config = config
        self._transport = transport
        self._install = install
        self._current_revision = current_revision
        self._ready = ready
        self.state = SyncState()
        self._stop = threading.Event()
        self._stream: Stream | None = None
        self._etag: str | None = None
        self._thread: threading.Thread | None = None
        self._logged_at: float | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rollwise-rules-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # --- the loop ---

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception:  # the sync thread must outlive any bug; it starts over
                if self._stop.is_set():
                    return  # closing: the transport was torn down under the thread
                logger.exception("rollwise: the rules sync failed; restarting it")
                self._stop.wait(1.0)

    def _loop(self) -> None:
        backoff = Backoff(base=0.5, cap=self._config.max_backoff)
        stream_failures = 0
        while not self._stop.is_set():
            try:
                self._fetch()
            except AuthenticationError as exc:
                self._failed(exc)
                self._stop.wait(self._config.poll_interval)
                continue
            except RollwiseError as exc:
                self._failed(exc)
                self._stop.wait(backoff.next())
                continue
            backoff.reset()
            if self._config.streaming and stream_failures < _STREAM_FAILURES_BEFORE_POLLING:
                started = time.monotonic()
                try:
                    self._follow()
                except RollwiseError as exc:
                    if self._stop.is_set():
                        break
                    self._failed(exc)
                if time.monotonic() - started > 60:
                    stream_failures = 0  # it worked for a while: a fresh start
                else:
                    stream_failures += 1
                self._stop.wait(backoff.next())
            else:
                self.state.connection = "polling"
                if self._stop.wait(self._config.poll_interval):
                    break
                if stream_failures >= _STREAM_FAILURES_BEFORE_POLLING:
                    stream_failures -= 1  # try the stream again now and then

    def _failed(self, exc: Exception) -> None:
        if self._stop.is_set():
            return
        message = str(exc)
        now = time.time()
        # log a new kind of problem at once, the same one again at most once a minute
        if message != self.state.last_error or now - (self._logged_at or 0) > 60:
            logger.warning("rollwise: %s; serving the last good rules", message)
            self._logged_at = now
        self.state.connection = "disconnected"
        self.state.last_error = message
        self.state.last_error_at = now

    def _fetch(self) -> None:
        response = self._transport.fetch_rules(self._etag)
        self.state.last_sync = time.time()
        body = response.body
        if response.status == 200 and body is not None and self._adopt(body, "fetched"):
            self._etag = response.etag
        self._ready.set()

    def _follow(self) -> None:
        revision = self._current_revision()
        stream = self._transport.open_stream(None if revision is None else str(revision))
        self._stream = stream
        try:
            if self._stop.is_set():
                return
            self.state.connection = "streaming"
            for event in stream.events():
                if self._stop.is_set():
                    return
                self.state.last_sync = time.time()
                if event.event != "rules":
                    continue
                try:
                    payload: Any = json.loads(event.data)
                    document = payload["document"]
                except (ValueError, KeyError, TypeError) as exc:
                    self._reject(None, f"an unreadable stream event: {exc}")
                    continue
                self._adopt(document, "streamed")
        finally:
            self._stream = None
            stream.close()

    def _adopt(self, data: bytes | dict[str, Any], how: str) -> bool:
        """Parse and install a document; a bad one is rejected and the last good one stays."""
        raw: Any = None
        try:
            raw = json.loads(data) if isinstance(data, bytes) else data
            document = RulesDocument.from_json(raw)
        except (RollwiseError, ValueError) as exc:
            revision = raw.get("revision") if isinstance(raw, dict) else None
            self._reject(revision if isinstance(revision, int) else None, str(exc))
            return False
        current = self._current_revision()
        if current is not None and document.revision <= current:
            return True
        try:
            self._install(document)
        except Exception as exc:  # noqa: BLE001 - a document that cannot compile is rejected
            self._reject(document.revision, f"compiling it failed: {exc}")
            return False
        logger.info("rollwise: rules revision %d %s", document.revision, how)
        return True

    def _reject(self, revision: int | None, reason: str) -> None:
        self.state.rejected_revision = revision
        self.state.last_error = f"rejected rules revision {revision}: {reason}"
        self.state.last_error_at = time.time()
        logger.error("rollwise: %s; keeping the last good rules", self.state.last_error)

"""``RulesSync``: the thread that keeps a client's rules fresh, and says truthfully how it goes.

The logic is ``RulesFollower``'s plan of steps (``rollwise._steps``): ``RulesSync`` performs them
on a thread with the blocking transport, ``rollwise.aio`` on an asyncio task with httpx.

It fetches the document (``If-None-Match``), then follows the server-sent-events stream, each
event carrying a new revision's document. When the stream ends or breaks it reconnects after the
server's ``retry:`` time (0.5 s if it sent none), doubled on each consecutive failure up to
``max_backoff``, with up to 50% jitter, and fetches once in between so nothing is missed. When
streaming is off, or three streams in a row fail within a minute, it polls every
``poll_interval`` and tries the stream again now and then. A document that fails to parse or
compile is rejected and the last good one stays; the error shows in ``status()``.

``state.connection`` is what ``status().connection`` reports:

- ``connecting``: no answer yet, or reconnecting after the stream ended (transient);
- ``streaming``: the stream is open;
- ``polling``: streaming is off or keeps failing, and the last poll was answered;
- ``disconnected``: the server is unreachable, times out or answers 5xx; retried with backoff;
- ``unauthorized``: the server refused the SDK key (401/403); retried every ``poll_interval``.

A change between the settled states (all but ``connecting``) is logged once, with what the
client serves meanwhile; single retries are logged at DEBUG only.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import attrs

from rollwise._parse import load_json
from rollwise._steps import Plan, drive
from rollwise.config import ClientConfig
from rollwise.errors import AuthenticationError, ConfigurationError, RollwiseError
from rollwise.rules import RulesDocument
from rollwise.sse import SSEEvent
from rollwise.status import Connection
from rollwise.transport import RulesResponse, Stream, Transport

__all__ = [
    "EventReader",
    "Fetch",
    "Next",
    "Open",
    "RulesFollower",
    "RulesSync",
    "SyncState",
    "SyncStep",
    "Wait",
    "reconnect_delay",
]

_RANDOM = random.Random()  # noqa: S311 - jitter and sampling, not secrets
"""The reconnection jitter's own generator: it never moves the global ``random`` state, which
applications (and Hypothesis, in the tests) own."""

logger = logging.getLogger("rollwise")

_STREAM_FAILURES_BEFORE_POLLING = 3
_STREAM_WORKED = 60.0
"""A stream open this long was a success: the failure counts start over."""
_DEFAULT_RETRY = 0.5
"""The reconnection time (seconds) until the server sends a ``retry:`` field."""
_MIN_RETRY = 0.1
_TROUBLE = ("disconnected", "unauthorized")
"""The shortest reconnection time honoured: ``retry: 0`` must not become a busy loop."""


def reconnect_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: Callable[[], float] = _RANDOM.random,
) -> float:
    """Seconds to wait before reconnection ``attempt`` (0: the first since things worked).

    ``base`` (the server's ``retry:``) doubles with each consecutive failure up to ``cap``; the
    wait is that plus up to half as much again (``rng`` in ``[0, 1)``), never more than
    ``cap``. So it is never sooner than the server asked, unless it asked for more than
    ``cap``, and clients that lost the server together do not all return at the same instant.
    """
    if not (math.isfinite(base) and base >= 0 and math.isfinite(cap) and cap >= 0):
        raise ConfigurationError(f"reconnect delay: bad base {base!r} or cap {cap!r}")
    ceiling = min(cap, math.ldexp(base, min(max(attempt, 0), 64)))
    return min(cap, ceiling * (1.0 + rng() / 2))


class SyncState:
    """What the sync thread knows, read by ``Client.status()`` (plain attributes, no lock)."""

    def __init__(self) -> None:
        self.connection: Connection = "connecting"
        self.last_sync: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.rejected_revision: int | None = None
        self.retry: float | None = None
        """The reconnection time (seconds) the server asked for with ``retry:``, bounded."""


@attrs.frozen
class Fetch:
    """Fetch the rules document (``If-None-Match: etag``): a ``RulesResponse``."""

    etag: str | None


@attrs.frozen
class Open:
    """Open the rules stream (``Last-Event-ID``): an ``EventReader``."""

    last_event_id: str | None


@attrs.frozen
class Next:
    """The reader's next event (``HEARTBEAT`` for a comment), or ``None`` at the stream's end."""

    reader: EventReader


@attrs.frozen
class Wait:
    """Wait ``seconds`` (less when stopping): whether the sync is stopping."""

    seconds: float


SyncStep = Fetch | Open | Next | Wait


class EventReader(Protocol):
    """An open rules stream as the plan sees it; ``close()`` never blocks."""

    @property
    def retry(self) -> int | None: ...
    def close(self) -> None: ...


class _Flag(Protocol):
    def is_set(self) -> bool: ...
    def set(self) -> None: ...


class _Reader:
    """A blocking ``Stream``, read one event a step."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._events = iter(stream.events())

    @property
    def retry(self) -> int | None:
        retry = getattr(self._stream, "retry", None)
        return retry if isinstance(retry, int) else None

    def next_event(self) -> SSEEvent | None:
        return next(self._events, None)

    def close(self) -> None:
        self._stream.close()


class RulesFollower:
    """Fetch, stream, reconnect and poll, as a plan of ``SyncStep``; ``install(document)`` adopts
    a new document. ``RulesSync`` performs the steps on a thread, ``rollwise.aio`` on a task.

    ``serving()`` says what the client serves meanwhile (for the log lines), for example
    ``"serving rules revision 4 from the disk cache"``.
    """

    def __init__(
        self,
        config: ClientConfig,
        transport: object,
        install: Callable[[RulesDocument], bool],
        current_revision: Callable[[], int | None],
        ready: _Flag,
        serving: Callable[[], str],
        answered: _Flag | None = None,
    ) -> None:
        self._config = config
        self._endpoint = transport
        self._install = install
        self._current_revision = current_revision
        self._ready = ready
        self._answered = answered
        """Set by the server's first answer, rules or a refused key (``wait_until_ready``)."""
        self._serving = serving
        self.state = SyncState()
        self._stop = threading.Event()
        """Set when stopping (only ever read by the plan, never waited on)."""
        self._stream: EventReader | None = None
        self._etag: str | None = None
        self._settled: Connection = "connecting"
        self._settled_at = time.monotonic()
        self._stream_error: str | None = None
        self._stream_failures = 0
        self._tracebacks: set[str] = set()

    # --- the plan ---

    def _plan(self) -> Plan[SyncStep, None]:
        attempt = 0
        while not self._stop.is_set():
            try:
                yield from self._loop()
            except Exception as exc:  # noqa: BLE001 - the sync outlives any bug; logged
                if self._stop.is_set():
                    return  # closing: the transport was torn down under the sync
                self._unexpected("the rules sync", exc)
                self._error(f"the rules sync failed: {exc!r}")
                self._enter("disconnected", self.state.last_error)
                yield Wait(self._delay(attempt))
                attempt += 1

    def _loop(self) -> Plan[SyncStep, None]:
        failures = 0  # consecutive failed attempts: they set the reconnection delay
        while not self._stop.is_set():
            try:
                yield from self._fetch()
            except AuthenticationError as exc:
                self._error(str(exc))
                self._enter("unauthorized", str(exc))
                if self._answered is not None:  # a refused key: waiting for rules is in vain
                    self._answered.set()
                yield Wait(self._config.poll_interval)
                continue
            except RollwiseError as exc:
                self._error(str(exc))
                self._enter("disconnected", str(exc))
                yield Wait(self._delay(failures))
                failures += 1
                continue
            if self._config.streaming and self._stream_failures < _STREAM_FAILURES_BEFORE_POLLING:
                if (yield from self._stream_once()) >= _STREAM_WORKED:
                    failures = self._stream_failures = 0
                else:
                    self._stream_failures += 1
                if self._stop.is_set():
                    break
                yield Wait(self._delay(failures))
                failures += 1
            else:
                failures = 0
                self._enter("polling")
                if (yield Wait(self._config.poll_interval)):
                    break
                if self._stream_failures >= _STREAM_FAILURES_BEFORE_POLLING:
                    self._stream_failures -= 1  # try the stream again now and then

    def _delay(self, attempt: int) -> float:
        base = _DEFAULT_RETRY if self.state.retry is None else self.state.retry
        delay = reconnect_delay(attempt, base=base, cap=self._config.max_backoff)
        logger.debug("rollwise: reconnecting to %s in %.2f s", self._server(), delay)
        return delay

    def _stream_once(self) -> Plan[SyncStep, float]:
        """Follow the stream until it ends; how many seconds it lasted."""
        started = time.monotonic()
        self._stream_error = None
        try:
            yield from self._follow()
            logger.debug("rollwise: the rules stream ended")
        except RollwiseError as exc:
            if not self._stop.is_set():
                self._stream_failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in the stream code: reconnect, then poll
            if not self._stop.is_set():
                self._unexpected("the rules stream", exc)
                self._stream_failed(f"the rules stream failed: {exc!r}")
        finally:
            if not self._stop.is_set():
                self._enter("connecting")
        return time.monotonic() - started

    def _stream_failed(self, message: str) -> None:
        self._stream_error = message
        self._error(message)
        logger.debug("rollwise: %s", message)

    def _unexpected(self, what: str, exc: Exception) -> None:
        """Log a bug with its traceback, once per kind: it would recur on every attempt."""
        kind = f"{what}:{type(exc).__name__}:{exc}"
        if kind in self._tracebacks or len(self._tracebacks) >= 16:
            logger.debug("rollwise: %s failed again: %r", what, exc)
            return
        self._tracebacks.add(kind)
        logger.error("rollwise: %s failed unexpectedly; it carries on", what, exc_info=exc)

    # --- the state, and one log line per change ---

    def _error(self, message: str | None) -> None:
        self.state.last_error = message
        self.state.last_error_at = time.time()

    def _server(self) -> str:
        """The server requests go to now (a replica of ``fallback_urls`` after a failover)."""
        return str(getattr(self._endpoint, "url", self._config.url))

    def _enter(
        self, connection: Connection, detail: str | None = None, *, log: bool = True
    ) -> None:
        self.state.connection = connection
        if not log or connection in ("connecting", self._settled) or self._stop.is_set():
            return
        previous, away = self._settled, time.monotonic() - self._settled_at
        self._settled, self._settled_at = connection, time.monotonic()
        url = self._server()
        if connection == "disconnected":
            logger.warning(
                "rollwise: %s; %s; retrying with backoff (at most %g s apart)",
                detail, self._serving(), self._config.max_backoff,
            )  # fmt: skip
            return
        if connection == "unauthorized":
            logger.error(
                "rollwise: the flag server rejected the SDK key (%s); %s; retrying every %g s",
                detail, self._serving(), self._config.poll_interval,
            )  # fmt: skip
            return
        since = f", after {away:.0f} s {previous}" if previous in _TROUBLE else ""
        if connection == "streaming":
            logger.info(
                "rollwise: streaming rule changes from %s (rules revision %s)%s",
                url, self._current_revision(), since,
            )  # fmt: skip
        elif connection == "polling":
            why = ""
            if self._config.streaming:
                why = f"; {_STREAM_FAILURES_BEFORE_POLLING} streams in a row ended within a minute"
                why += f", the last with: {self._stream_error}" if self._stream_error else ""
            logger.info(
                "rollwise: polling %s for rule changes every %g s (rules revision %s)%s%s",
                url, self._config.poll_interval, self._current_revision(), since, why,
            )  # fmt: skip

    # --- fetching and streaming ---

    def _fetch(self) -> Plan[SyncStep, None]:
        response: RulesResponse = yield Fetch(self._etag)
        self.state.last_sync = time.time()
        body = response.body
        if response.status == 200 and body is not None and self._adopt(body, "fetched"):
            self._etag = response.etag
        self._ready.set()
        if self._answered is not None:
            self._answered.set()

    def _follow(self) -> Plan[SyncStep, None]:
        revision = self._current_revision()
        stream: EventReader = yield Open(None if revision is None else str(revision))
        self._stream = stream
        try:
            if self._stop.is_set():
                return
            # A stream tried again while polling is logged once it has proved itself (an event
            # or heartbeat a minute on): one that opens and soon fails is not worth two lines.
            opened = time.monotonic()
            probing = self._settled == "polling"
            self._enter("streaming", log=not probing)
            while (event := (yield Next(stream))) is not None:
                if self._stop.is_set():
                    return
                if probing and time.monotonic() - opened >= _STREAM_WORKED:
                    probing = False
                    self._enter("streaming")
                self.state.last_sync = time.time()
                if event.event != "rules":
                    continue  # a heartbeat (HEARTBEAT), or an event this SDK does not use
                try:
                    payload: Any = load_json(event.data)  # size and depth bounded
                    document = payload["document"]
                except (RollwiseError, ValueError, KeyError, TypeError) as exc:
                    self._reject(None, f"an unreadable stream event: {exc}")
                    continue
                self._adopt(document, "streamed")
        finally:
            self._stream = None
            self._remember_retry(stream.retry)
            stream.close()

    def _remember_retry(self, milliseconds: Any) -> None:
        """The server's ``retry:`` (milliseconds), bounded to ``[0.1 s, max_backoff]``."""
        if isinstance(milliseconds, int) and not isinstance(milliseconds, bool):
            seconds = min(max(milliseconds / 1000, _MIN_RETRY), self._config.max_backoff)
            if seconds != self.state.retry:
                logger.debug("rollwise: the server asks to reconnect after %g s", seconds)
            self.state.retry = seconds

    def _adopt(self, data: bytes | dict[str, Any], how: str) -> bool:
        """Parse and install a document; a bad one is rejected and the last good one stays."""
        raw: Any = None
        try:
            raw = load_json(data) if isinstance(data, bytes) else data  # size and depth bounded
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
        self._error(f"rejected rules revision {revision}: {reason}")
        logger.error("rollwise: %s; %s", self.state.last_error, self._serving())


class RulesSync(RulesFollower):
    """``RulesFollower`` on a thread of its own, with the blocking ``Transport``."""

    def __init__(
        self,
        config: ClientConfig,
        transport: Transport,
        install: Callable[[RulesDocument], bool],
        current_revision: Callable[[], int | None],
        ready: threading.Event,
        serving: Callable[[], str],
        answered: threading.Event | None = None,
    ) -> None:
        super().__init__(config, transport, install, current_revision, ready, serving, answered)
        self._transport = transport
        self._thread: threading.Thread | None = None

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

    def _run(self) -> None:
        drive(self._plan(), self._perform)

    def _perform(self, step: SyncStep) -> Any:
        if isinstance(step, Fetch):
            return self._transport.fetch_rules(step.etag)
        if isinstance(step, Open):
            return _Reader(self._transport.open_stream(step.last_event_id))
        if isinstance(step, Next):
            return cast(_Reader, step.reader).next_event()
        return self._stop.wait(step.seconds)

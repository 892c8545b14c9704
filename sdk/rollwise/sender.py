"""``EventSender``: the thread that delivers exposures, outcomes and predictions, losing none.

Every ``flush_interval`` (or at once on ``flush()``) it drains the in-memory queues into gzip'd
batches of at most ``batch_size`` events and posts them. Timeouts and 5xx are retried with
jittered backoff; when the server stays unreachable the batch goes to the on-disk spool, and
while the spool holds anything new batches go behind it, so events reach the server in order.
Once the server answers again the spool is replayed, oldest first. Events the server rejects as
invalid are dropped and counted. Event ids make delivery at-least-once and storage exactly-once.

With ``spool_first`` every batch is written to the spool before it is sent, and what queued
while a batch was being sent is spooled before the next send: a crash of the process loses only
the events still in memory, those recorded since the last spool write.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from rollwise._steps import Plan, drive
from rollwise.backoff import Backoff
from rollwise.config import ClientConfig
from rollwise.errors import (
    AuthenticationError,
    ServerUnavailableError,
    SpoolError,
    TransportError,
)
from rollwise.events import Outcome
from rollwise.exposures import ExposureLog
from rollwise.ids import event_id
from rollwise.shadow import PredictionLog
from rollwise.spool import Spool
from rollwise.transport import EventKind, SendResult, Transport

__all__ = [
    "EventDelivery",
    "EventSender",
    "OutcomeQueue",
    "Pause",
    "Send",
    "SendStep",
    "SenderStats",
]

logger = logging.getLogger("rollwise")

_IMMEDIATE_RETRIES = 2
_KINDS: dict[str, EventKind] = {
    "exposures": "exposures", "outcomes": "outcomes", "predictions": "predictions"
}  # fmt: skip


class SenderStats:
    """Counters of the sender (plain ints, updated by the sender thread)."""

    def __init__(self) -> None:
        self.sent = {"exposures": 0, "outcomes": 0, "predictions": 0}
        self.duplicates = {"exposures": 0, "outcomes": 0, "predictions": 0}
        self.rejected = {"exposures": 0, "outcomes": 0, "predictions": 0}
        self.spooled = 0
        self.replayed = 0
        self.batches = 0
        self.last_error: str | None = None
        self.last_sent_at: float | None = None


class OutcomeQueue:
    """Outcomes from ``client.track``: raw tuples now, ``Outcome`` values when drained."""

    def __init__(self, max_queue: int, clock: Callable[[], float] = time.time) -> None:
        self._queue: deque[tuple[float, str, str, str, float, dict[str, Any] | None]] = deque()
        self._max = max_queue
        self._clock = clock
        self.tracked = 0
        self.dropped = 0
        self._warned_at = -1e9

    def put(
        self, metric: str, unit_type: str, unit: str, value: float, attrs: dict[str, Any] | None
    ) -> None:
        if len(self._queue) >= self._max:
            self.dropped += 1
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                logger.warning(
                    "rollwise: the outcome queue is full (%d); outcomes are dropped "
                    "(%d so far): the sender cannot keep up", self._max, self.dropped,
                )  # fmt: skip
            return
        self._queue.append((self._clock(), metric, unit_type, unit, value, attrs))
        self.tracked += 1

    def drain(self, limit: int | None = None) -> list[Outcome]:
        out: list[Outcome] = []
        queue = self._queue
        while queue and (limit is None or len(out) < limit):
            ts, metric, unit_type, unit, value, attrs = queue.popleft()
            out.append(Outcome(event_id(ts), ts, metric, unit_type, unit, value, attrs or {}))
        return out

    def __len__(self) -> int:
        return len(self._queue)


def _json(event: Any) -> str:
    data = event.to_json()
    for key, value in data["attrs"].items():  # attrs are JSON scalars already; guard NaN
        if isinstance(value, float) and not math.isfinite(value):
            data["attrs"][key] = None
    return json.dumps(data, separators=(",", ":"))


@attrs.frozen
class Send:
    """Post one batch of a kind: a ``SendResult`` (or the transport's error)."""

    kind: EventKind
    bodies: list[str]


@attrs.frozen
class Pause:
    """Sleep ``seconds`` before a quick retry."""

    seconds: float


SendStep = Send | Pause


class EventDelivery:
    """What to send, when to retry, spool and replay: one delivery round as a plan of
    ``SendStep`` (``rollwise._steps``). ``EventSender`` performs it on a thread, ``rollwise.aio``
    on an asyncio task."""

    def __init__(
        self,
        config: ClientConfig,
        exposures: ExposureLog,
        outcomes: OutcomeQueue,
        spool: Spool | None,
        predictions: PredictionLog | None = None,
    ) -> None:
        self._config = config
        self._exposures = exposures
        self._outcomes = outcomes
        self._predictions = PredictionLog(queue=False) if predictions is None else predictions
        self._spool = spool
        self.stats = SenderStats()
        self._stop = threading.Event()
        """Set when stopping (only ever read by the plan, never waited on)."""
        self._busy = False
        self._unreachable_until = 0.0
        self._backoff = Backoff(base=0.5, cap=config.max_backoff)
        self.dropped_unspoolable = 0
        self._behind = False
        self._away = False  # the server stopped taking events: logged once, until it is back

    def delivered(self) -> bool:
        """Nothing queued, spooled or being sent."""
        return self.pending() == 0 and not self._busy

    def pending(self) -> int:
        spooled = len(self._spool) if self._spool is not None else 0
        return len(self._exposures) + len(self._outcomes) + len(self._predictions) + spooled

    def _cycle(self) -> Plan[SendStep, None]:
        """One round: send (or spool) what is queued, then replay the spool."""
        backlog = len(self._exposures) + len(self._outcomes) + len(self._predictions)
        self._behind = backlog > self._config.max_queue // 2
        yield from self._drain()
        yield from self._replay()
        if self._config.spool_first:
            yield from self._drain()  # what queued during the last send waits on disk

    def _drain(self) -> Plan[SendStep, None]:
        """Send or spool everything queued, batch by batch."""
        batch = self._config.batch_size
        while True:
            exposures = self._exposures.drain(batch)
            if exposures:
                yield from self._deliver("exposures", self._encode("exposures", exposures))
            outcomes = self._outcomes.drain(batch)
            if outcomes:
                yield from self._deliver("outcomes", self._encode("outcomes", outcomes))
            predictions = self._predictions.drain(batch)
            if predictions:
                yield from self._deliver("predictions", self._encode("predictions", predictions))
            if not exposures and not outcomes and not predictions:
                break

    def _encode(self, kind: EventKind, events: list[Any]) -> list[str]:
        """Each event as JSON; one that cannot be encoded is counted as rejected and logged,
        never allowed to cost the rest of its batch."""
        bodies = []
        for event in events:
            try:
                bodies.append(_json(event))
            except Exception as exc:  # noqa: BLE001 - whatever an attribute holds
                self.stats.rejected[kind] += 1
                self.stats.last_error = f"an event could not be encoded as JSON: {exc}"
                logger.warning("rollwise: dropped one of the %s: %s", kind, self.stats.last_error)
        return bodies

    def _reachable(self) -> bool:
        return time.monotonic() >= self._unreachable_until

    def _deliver(self, kind: EventKind, bodies: list[str]) -> Plan[SendStep, None]:
        """Send now, or behind the spool when it holds anything or the server is away."""
        behind = self._behind  # sending cannot keep up: spill to disk rather than drop later
        first = self._config.spool_first
        if self._spool is not None and (
            first or len(self._spool) > 0 or behind or not self._reachable()
        ):
            self._to_spool(kind, bodies)
            return
        if not (yield from self._send(kind, bodies)):
            self._to_spool(kind, bodies)

    def _send(
        self, kind: EventKind, bodies: list[str], retries: int = _IMMEDIATE_RETRIES
    ) -> Plan[SendStep, bool]:
        """Post one batch with ``retries`` quick retries; ``False`` when the server stays away."""
        for attempt in range(retries + 1):
            try:
                result: SendResult = yield Send(kind, bodies)
            except (ServerUnavailableError, AuthenticationError) as exc:
                self.stats.last_error = str(exc)
                if attempt < retries and not self._stop.is_set():
                    yield Pause(min(1.0, self._backoff.next()))
                    continue
                self._unreachable_until = time.monotonic() + self._backoff.next()
                if self._away:
                    logger.debug("rollwise: %s; events kept for later", exc)
                else:
                    self._away = True
                    logger.warning("rollwise: %s; events are kept until it is back", exc)
                return False
            except TransportError as exc:
                if getattr(exc, "status", None) == 413 and len(bodies) > 1:
                    half = len(bodies) // 2
                    return (yield from self._send(kind, bodies[:half])) and (
                        yield from self._send(kind, bodies[half:])
                    )
                self.stats.last_error = str(exc)
                self.stats.rejected[kind] += len(bodies)
                logger.error("rollwise: the server refused %d %s: %s", len(bodies), kind, exc)
                return True
            self._backoff.reset()
            if self._away:
                self._away = False
                logger.info("rollwise: the flag server takes events again")
            self.stats.batches += 1
            self.stats.sent[kind] += result.accepted
            self.stats.duplicates[kind] += result.duplicates
            self.stats.rejected[kind] += result.rejected
            self.stats.last_sent_at = time.time()
            if result.rejected:
                logger.warning(
                    "rollwise: the server rejected %d invalid %s, e.g. %s",
                    result.rejected,
                    kind,
                    result.errors[:1],
                )
            return True
        return False

    def _to_spool(self, kind: EventKind, bodies: list[str]) -> None:
        if self._spool is None:
            self.dropped_unspoolable += len(bodies)
            logger.warning("rollwise: %d %s dropped: no spool configured", len(bodies), kind)
            return
        try:
            stored = self._spool.append(kind, bodies)
        except SpoolError as exc:
            self.dropped_unspoolable += len(bodies)
            logger.error("rollwise: %d %s dropped: %s", len(bodies), kind, exc)
            return
        self.stats.spooled += stored

    def _replay(self) -> Plan[SendStep, None]:
        spool = self._spool
        if spool is None or not self._reachable():
            return
        first = self._config.spool_first
        while len(spool):
            if first:  # what queued during the last send goes to disk before the next one
                yield from self._drain()
            rows = spool.peek(self._config.batch_size)
            if not rows:
                return
            kind: EventKind = _KINDS.get(rows[0][1], "exposures")
            cut = next((i for i, row in enumerate(rows) if row[1] != rows[0][1]), len(rows))
            same = rows[:cut]
            # spooling first, a send is not retried at once: the batch is safe on disk, and a
            # send that cannot stall longer than its timeouts keeps the in-memory window short
            retries = 0 if first else _IMMEDIATE_RETRIES
            if not (yield from self._send(kind, [body for _, _, body in same], retries)):
                return
            spool.remove([seq for seq, _, _ in same])
            self.stats.replayed += len(same)


class EventSender(EventDelivery):
    """The background delivery of one client's events, on a thread of its own."""

    def __init__(
        self,
        config: ClientConfig,
        transport: Transport,
        exposures: ExposureLog,
        outcomes: OutcomeQueue,
        spool: Spool | None,
        predictions: PredictionLog | None = None,
    ) -> None:
        super().__init__(config, exposures, outcomes, spool, predictions)
        self._transport = transport
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rollwise-event-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop the thread; ``True`` when it has finished (it may still be sending, else)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def flush(self, timeout: float) -> bool:
        """Deliver everything queued and spooled; ``True`` when nothing is left."""
        deadline = time.monotonic() + timeout
        self._unreachable_until = 0.0  # a flush tries the server now
        while time.monotonic() < deadline:
            if self.delivered():
                return True
            self._wake.set()
            with self._idle:
                self._idle.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.delivered()

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            self._wake.wait(self._config.flush_interval)
            self._wake.clear()
            self._busy = True
            try:
                drive(self._cycle(), self._perform)
            except Exception:  # the sender must survive anything
                logger.exception("rollwise: the event sender failed; it carries on")
            finally:
                self._busy = False
                with self._idle:
                    self._idle.notify_all()
            if stopping:
                return

    def _perform(self, step: SendStep) -> SendResult | None:
        if isinstance(step, Send):
            return self._transport.send_events(step.kind, step.bodies)
        time.sleep(step.seconds)
        return None

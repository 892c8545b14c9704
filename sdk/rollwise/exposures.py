"""Exposure logging off the hot path: de-duplication, a lock-free queue and listeners.

A split assignment calls the flag's recorder. The recorder drops repeats of the same (flag,
version, variant, unit) seen recently (a bounded ``cachetools.TTLCache``), then appends a raw
tuple to a ``deque`` (an atomic append, no lock). ``Exposure`` values, with their UUIDs, are
built later by whoever drains the queue (the sender thread online, ``drain()`` offline), so the
application thread pays only for the tuple. Listeners (``on_exposure``, ``capture_exposures``)
are called synchronously with built ``Exposure`` values. Nothing here raises into the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import cachetools

from rollwise.assignment import Assignment
from rollwise.compiler import Recorder
from rollwise.events import Exposure, json_attrs
from rollwise.ids import event_id
from rollwise.rules import Flag

__all__ = ["ExposureListener", "ExposureLog"]

logger = logging.getLogger("rollwise")

ExposureListener = Callable[[Exposure], None]
_Raw = tuple[float, str, int, Assignment, str, str, dict[str, Any]]


class ExposureLog:
    """Records split assignments as exposures for one client."""

    def __init__(
        self,
        *,
        queue: bool = False,
        dedup_size: int = 100_000,
        dedup_ttl: float = 3600.0,
        max_queue: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue_enabled = queue
        self._queue: deque[_Raw] = deque()
        self._max_queue = max_queue
        self._seen: cachetools.TTLCache[tuple[str, int, str, str, str], bool] = cachetools.TTLCache(
            maxsize=dedup_size, ttl=dedup_ttl, timer=clock
        )
        self._lock = threading.Lock()
        self._listeners: tuple[ExposureListener, ...] = ()
        self._clock = clock
        self.recorded = 0
        self.duplicates = 0
        self.dropped = 0
        self._warned_at = -1e9

    @property
    def active(self) -> bool:
        """Whether anything consumes exposures (when not, the evaluator skips the hook)."""
        return self._queue_enabled or bool(self._listeners)

    def add_listener(self, listener: ExposureListener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: ExposureListener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def recorder(self, flag: Flag) -> Recorder:
        """The hook the compiler calls on each split assignment of ``flag``."""
        key, version, cohorts = flag.key, flag.version, flag.cohort_attributes
        seen, clock, queue = self._seen, self._clock, self._queue

        def record(result: Assignment, unit_type: str, unit: str, ctx: Mapping[str, Any]) -> None:
            try:
                if not (self._queue_enabled or self._listeners):
                    return
                dedup_key = (key, version, result.variant or "", unit_type, unit)
                with self._lock:
                    if dedup_key in seen:
                        self.duplicates += 1
                        return
                    seen[dedup_key] = True
                    self.recorded += 1
                raw = (clock(), key, version, result, unit_type, unit, json_attrs(ctx, cohorts))
                if self._queue_enabled:
                    if len(queue) < self._max_queue:
                        queue.append(raw)
                    else:
                        self.dropped += 1
                        self._warn_full()
                if self._listeners:
                    self._notify(_build(raw))
            except Exception:  # never let logging break an evaluation
                logger.exception("rollwise: recording an exposure of flag %r failed", key)

        return record

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning(
                "rollwise: the exposure queue is full (%d); exposures are dropped (%d so far)",
                self._max_queue,
                self.dropped,
            )

    def _notify(self, exposure: Exposure) -> None:
        for listener in self._listeners:
            try:
                listener(exposure)
            except Exception:
                logger.exception("rollwise: an exposure listener raised")

    def after_fork(self) -> None:
        """In a forked child: a fresh lock, and the parent's queued exposures left to the parent."""
        self._lock = threading.Lock()
        self._queue.clear()

    def drain(self, limit: int | None = None) -> list[Exposure]:
        """Remove and build up to ``limit`` queued exposures, oldest first."""
        out: list[Exposure] = []
        queue = self._queue
        while queue and (limit is None or len(out) < limit):
            out.append(_build(queue.popleft()))
        return out

    def __len__(self) -> int:
        return len(self._queue)


def _build(raw: _Raw) -> Exposure:
    ts, key, version, result, unit_type, unit, attrs = raw
    return Exposure(
        id=event_id(ts),
        ts=ts,
        flag=key,
        flag_version=version,
        variant=result.variant or "",
        rule=result.rule,
        unit_type=unit_type,
        unit=unit,
        attrs=attrs,
    )

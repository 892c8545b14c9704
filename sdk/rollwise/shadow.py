"""Shadow runs: the candidate model computed beside the served one, off the request path.

``client.shadow(flag, context)`` evaluates the flag as ``evaluate`` does and, for the share of
units the flag's ``shadow`` names, also offers its candidate variant::

    with client.shadow("fraud-model", context) as run:
        score = run.live(lambda: models[run.variant].predict(x))
        run.candidate(lambda: models[run.shadow_variant].predict(x))

``live`` runs on the caller's thread and returns (or raises) what the served model does: it is
the application's own work, timed and logged. ``candidate`` hands the call to a small pool of
worker threads and returns at once, so the request never waits for the candidate, and nothing
the candidate does (an exception, a timeout, a full pool) reaches the caller: it is counted.
Both predictions are logged as ``Prediction`` events sharing the run's id, so the server pairs
them per request and joins outcomes by unit. A run whose unit is not shadowed (or whose flag has
no shadow) still serves and logs nothing: ``candidate`` does not call its function.

Why a pool and not a thread per call: the candidate's cost must stay bounded when it is slower
than the traffic. Why a timeout that cannot stop the call: Python threads cannot be cancelled;
a candidate slower than ``shadow_timeout`` is logged as a timeout and its answer discarded.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from rollwise.assignment import Assignment
from rollwise.bucketing import BUCKET_SPACE, hash_unit
from rollwise.context import as_string
from rollwise.events import Prediction, json_attrs
from rollwise.ids import event_id
from rollwise.rules import Flag

__all__ = ["PredictionListener", "PredictionLog", "ShadowPool", "ShadowRun", "shadowed"]

logger = logging.getLogger("rollwise")

T = TypeVar("T")
PredictionListener = Callable[[Prediction], None]
_Raw = tuple[float, str, int, str, str, str, str, str, "str | None", "float | None", float, str,
             dict[str, Any]]  # fmt: skip
_MAX_LABEL = 256


def shadowed(flag: Flag, unit: str) -> bool:
    """Whether ``unit`` is in the share of ``flag``'s shadow (its own hash, salt
    ``{salt}.shadow``: independent of the split, the same on every request)."""
    shadow = flag.shadow
    if shadow is None:
        return False
    bound = math.floor(shadow.share * BUCKET_SPACE)
    return hash_unit(f"{flag.salt}.shadow", unit) < bound


def prediction_value(value: Any) -> tuple[str | None, float | None]:
    """A model's answer as ``(label, score)``: a number (or a one-element array of one) is a
    score, a string or a boolean a label; anything else is not logged (both ``None``)."""
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        try:
            value = value.item()  # numpy scalars and one-element arrays
        except Exception:  # noqa: BLE001 - any object may have an ``item``
            return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int | float):
        number = float(value)
        return (None, number) if math.isfinite(number) else (None, None)
    if isinstance(value, str) and 0 < len(value) <= _MAX_LABEL:
        return value, None
    return None, None


class PredictionLog:
    """Predictions of one client: raw tuples queued (online) and listeners (any client)."""

    def __init__(self, *, queue: bool, max_queue: int = 100_000) -> None:
        self._queue: deque[_Raw] = deque()
        self._queue_enabled = queue
        self._max = max_queue
        self._listeners: tuple[PredictionListener, ...] = ()
        self._lock = threading.Lock()
        self.recorded = 0
        self.dropped = 0
        self._warned_at = -1e9

    def add_listener(self, listener: PredictionListener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: PredictionListener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def put(self, raw: _Raw) -> None:
        self.recorded += 1
        if self._queue_enabled:
            if len(self._queue) < self._max:
                self._queue.append(raw)
            else:
                self.dropped += 1
                now = time.monotonic()
                if now - self._warned_at > 60:
                    self._warned_at = now
                    logger.warning(
                        "rollwise: the prediction queue is full (%d); predictions are dropped "
                        "(%d so far)", self._max, self.dropped,
                    )  # fmt: skip
        for listener in self._listeners:
            try:
                listener(_build(raw))
            except Exception:
                logger.exception("rollwise: a prediction listener raised")

    def drain(self, limit: int | None = None) -> list[Prediction]:
        out: list[Prediction] = []
        queue = self._queue
        while queue and (limit is None or len(out) < limit):
            out.append(_build(queue.popleft()))
        return out

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


def _build(raw: _Raw) -> Prediction:
    ts, flag, version, variant, role, run, unit_type, unit, label, score, ms, status, attrs = raw
    return Prediction(
        id=event_id(ts), ts=ts, flag=flag, flag_version=version, variant=variant, role=role,
        run=run, unit_type=unit_type, unit=unit, label=label, score=score, latency_ms=ms,
        status=status, attrs=attrs,
    )  # fmt: skip


class ShadowPool:
    """Daemon worker threads that run candidates, with a bound on the calls waiting for one.

    Not a ``ThreadPoolExecutor``: its threads are joined when the interpreter exits, so one
    candidate stuck on a socket would keep the application from exiting. These are daemons.
    """

    def __init__(self, *, workers: int = 2, max_pending: int = 1000, timeout: float = 1.0) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.timeout = timeout
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False
        self.runs = 0
        self.errors = 0
        self.timeouts = 0
        self.dropped = 0

    def submit(self, call: Callable[[], None]) -> bool:
        """Run ``call`` on a worker; ``False`` (and counted) when too many wait already."""
        with self._lock:
            if self._closed or self._pending >= self.max_pending:
                self.dropped += 1
                return False
            self._pending += 1
            if len(self._threads) < self.workers and len(self._threads) < self._pending:
                thread = threading.Thread(
                    target=self._work, name=f"rollwise-shadow-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._calls.put(call)
        return True

    def count(self, name: str) -> None:
        """Add one to the counter ``name`` (runs, errors, timeouts), from any thread."""
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def _work(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            try:
                call()
            except Exception:  # the call logs its own outcome; this guards the worker
                logger.exception("rollwise: a shadow run failed")
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until no candidate runs or waits; ``True`` when none does."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float) -> None:
        """Let running candidates finish (up to ``timeout``), then stop the workers; later
        candidates are dropped."""
        self.wait(timeout)
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._calls.put(None)

    def after_fork(self) -> None:
        """In a forked child the parent's workers do not exist: start afresh."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._calls = queue.SimpleQueue()
        self._threads = []
        self._pending = 0


class ShadowRun:
    """One request's shadow run; ``variant`` is served, ``shadow_variant`` is only computed."""

    __slots__ = (
        "_attrs", "_clock", "_flag", "_log", "_pool", "_run", "_unit", "_unit_type", "_version",
        "assignment", "shadow_variant", "variant",
    )  # fmt: skip

    def __init__(
        self,
        assignment: Assignment,
        flag: Flag | None,
        context: Mapping[str, Any],
        log: PredictionLog,
        pool: ShadowPool,
        clock: Callable[[], float],
    ) -> None:
        self.assignment = assignment
        self.variant: str | None = assignment.variant
        self.shadow_variant: str | None = None
        self._flag = flag
        self._log = log
        self._pool = pool
        self._clock = clock
        self._run = ""
        self._unit = ""
        self._unit_type = ""
        self._version = 0
        self._attrs: dict[str, Any] = {}
        shadow = None if flag is None else flag.shadow
        if flag is None or shadow is None or not flag.enabled or self.variant is None:
            return
        if shadow.variant == self.variant or assignment.error_code is not None:
            return  # the unit is served the candidate already, or the flag is in error
        unit = as_string(context.get(shadow.bucket_by))
        if unit is None or not unit or not shadowed(flag, unit):
            return
        self.shadow_variant = shadow.variant
        self._unit, self._unit_type, self._version = unit, shadow.bucket_by, flag.version
        self._attrs = json_attrs(context, flag.cohort_attributes)
        self._run = event_id(clock())

    @property
    def sampled(self) -> bool:
        """Whether this run computes the candidate (its unit is in the shadow's share)."""
        return self.shadow_variant is not None

    def live(self, predict: Callable[[], T]) -> T:
        """Call the served model now, on this thread; its answer (or exception) is the caller's.

        When the run is sampled the answer and its latency are logged as the ``live``
        prediction; an exception is logged as ``error`` and raised on."""
        if not self.sampled:
            return predict()
        start = time.perf_counter()
        try:
            value = predict()
        except BaseException:
            self._record("live", self.variant or "", None, start, "error")
            raise
        self._record("live", self.variant or "", value, start, "ok")
        return value

    def candidate(self, predict: Callable[[], Any]) -> bool:
        """Call the candidate on a shadow worker and return at once; never raises.

        ``False`` when nothing runs: the unit is not shadowed, or too many candidates wait
        already (counted as dropped)."""
        try:
            if not self.sampled:
                return False
            variant = self.shadow_variant or ""
            pool = self._pool

            def call() -> None:
                start = time.perf_counter()
                try:
                    value = predict()
                except Exception:  # noqa: BLE001 - the candidate's faults are counted, never raised
                    pool.count("errors")
                    self._record("shadow", variant, None, start, "error")
                    return
                if time.perf_counter() - start > pool.timeout:
                    pool.count("timeouts")
                    self._record("shadow", variant, None, start, "timeout")
                    return
                self._record("shadow", variant, value, start, "ok")

            if not pool.submit(call):
                return False
            pool.count("runs")
            return True
        except Exception:
            logger.exception("rollwise: starting a shadow run of %r failed", self.assignment.flag)
            return False

    def _record(self, role: str, variant: str, value: Any, start: float, status: str) -> None:
        try:
            latency_ms = (time.perf_counter() - start) * 1000.0
            label, score = prediction_value(value) if status == "ok" else (None, None)
            self._log.put(
                (self._clock(), self.assignment.flag, self._version, variant, role, self._run,
                 self._unit_type, self._unit, label, score, latency_ms, status, self._attrs)
            )  # fmt: skip
        except Exception:  # never let logging break the caller or a worker
            logger.exception("rollwise: recording a prediction of %r failed", self.assignment.flag)

    def __enter__(self) -> ShadowRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

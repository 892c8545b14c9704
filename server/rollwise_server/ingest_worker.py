"""The ingestion worker: threads of its own that decode, validate and store event batches.

Why threads of its own: decoding and validating a batch is CPU-bound Python; on the event loop
it would stall every other request. On SQLite, one thread: storing is SQLite work that releases
the GIL for every row it inserts, and beside a busy event loop or another worker the insert
waits for the GIL after each row (a convoy measured at 10x slower). On PostgreSQL, as many
threads as the store has ``ingest_writers``: a batch is one ``COPY`` and one ``INSERT``, during
which the thread waits on the network without the GIL, and another thread validates the next
batch meanwhile.

Batches that arrive while one is being stored are stored together in the next transaction
(group commit, up to ``max_rows`` events): one WAL write for several batches, and each request
still gets its own counts, after its events are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import attrs

from rollwise_server.ingest import EventKind, Window, decode_body, validate_batch
from rollwise_server.storage.base import EventRow, IngestCounts, Store
from rollwise_server.storage.sql import now_iso

__all__ = ["IngestResult", "IngestWorker"]


@attrs.frozen
class IngestResult:
    """What became of one batch: the store's counts and the rejected events' errors."""

    counts: IngestCounts
    errors: list[dict[str, Any]]


@attrs.define
class _Job:
    kind: EventKind
    raw: bytes
    encoding: str | None
    env: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[IngestResult]
    rows: list[EventRow] = attrs.field(factory=list)
    errors: list[dict[str, Any]] = attrs.field(factory=list)


_STOP = object()


def _reply(job: _Job, result: IngestResult | None, error: BaseException | None) -> None:
    with contextlib.suppress(RuntimeError):  # a closed event loop: nobody is waiting any more
        job.loop.call_soon_threadsafe(_settle, job.future, result, error)


def _settle(future: asyncio.Future[IngestResult], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away; its events are stored all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class IngestWorker:
    """Runs ``submit``ted batches through decode → validate → store on its own thread."""

    def __init__(
        self,
        store: Store,
        *,
        max_body_bytes: int,
        max_events: int,
        max_rows: int = 20_000,
        max_age: float = 30 * 86_400.0,
        max_future: float = 86_400.0,
    ) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.max_events = max_events
        self.max_age = max_age
        self.max_future = max_future
        self.max_rows = max_rows
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"rollwise-ingest-{i}", daemon=True)
            for i in range(max(1, store.ingest_writers))
        ]
        for thread in self._threads:
            thread.start()

    async def submit(
        self, kind: EventKind, raw: bytes, encoding: str | None, env: str
    ) -> IngestResult:
        """Store one request's batch; raises the decoding errors (400, 413) as they are."""
        loop = asyncio.get_running_loop()
        job = _Job(kind, raw, encoding, env, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def close(self, timeout: float = 30.0) -> None:
        """Store what was submitted, then stop the threads."""
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _prepare(self, job: _Job) -> bool:
        try:
            body = decode_body(job.raw, job.encoding, self.max_body_bytes)
            now = datetime.now(UTC)
            window = Window.around(now, self.max_age, self.max_future)
            job.rows, job.errors = validate_batch(
                job.kind, body, job.env, now_iso(), self.max_events, window
            )
        except Exception as exc:  # noqa: BLE001 - handed to the request that sent it
            _reply(job, None, exc)
            return False
        job.raw = b""
        return True

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                return
            group: list[_Job] = []
            rows = 0
            while True:
                assert isinstance(item, _Job)  # noqa: S101 - only jobs and _STOP are queued
                if self._prepare(item):
                    group.append(item)
                    rows += len(item.rows)
                if rows >= self.max_rows:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
            self._store(group)

    def _store(self, group: list[_Job]) -> None:
        if not group:
            return
        try:
            counts = self.store.ingest_many([(job.kind, job.rows) for job in group])
        except Exception as exc:  # noqa: BLE001 - every request of the group learns of it
            for job in group:
                _reply(job, None, exc)
            return
        for job, count in zip(group, counts, strict=True):
            _reply(job, IngestResult(count, job.errors), None)

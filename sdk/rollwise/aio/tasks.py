"""The asyncio tasks of an ``AsyncClient``: the rules sync and the event sender.

Each runs the same plan as the thread of ``rollwise.Client`` (``RulesFollower``,
``EventDelivery``: fetching, streaming, backoff, polling, batching, retries, the spool), and
awaits its steps on the event loop with ``HttpxTransport`` instead of blocking on them. Stopping
is cancelling: a step waiting on the network or on a timer ends at once, the plan is closed and
the open stream's response is closed before the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from rollwise._steps import adrive
from rollwise.aio.transport import AsyncReader, HttpxTransport
from rollwise.config import ClientConfig
from rollwise.exposures import ExposureLog
from rollwise.rules import RulesDocument
from rollwise.sender import EventDelivery, OutcomeQueue, Send, SendStep
from rollwise.shadow import PredictionLog
from rollwise.spool import Spool
from rollwise.sync import Fetch, Next, Open, RulesFollower, SyncStep

__all__ = ["AsyncEventSender", "AsyncRulesSync"]

logger = logging.getLogger("rollwise")


async def _stop_task(task: asyncio.Task[None] | None, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``task`` to end by itself, then cancel it; ``True`` if it
    ended by itself (or there was none)."""
    if task is None or task.done():
        return True
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        # wait() never raises the task's own cancellation, and lets one aimed at our caller
        # (a timeout around close(), a task group ending) go on
        await asyncio.wait({task})
        return False
    return True


class AsyncRulesSync(RulesFollower):
    """``RulesFollower`` on an asyncio task."""

    def __init__(
        self,
        config: ClientConfig,
        transport: HttpxTransport,
        install: Callable[[RulesDocument], bool],
        current_revision: Callable[[], int | None],
        ready: asyncio.Event,
        serving: Callable[[], str],
        answered: asyncio.Event | None = None,
    ) -> None:
        super().__init__(config, transport, install, current_revision, ready, serving, answered)
        self._transport = transport
        self._task: asyncio.Task[None] | None = None
        self._reader: AsyncReader | None = None

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rollwise-rules-sync")

    async def stop(self) -> None:
        self._stop.set()
        await _stop_task(self._task, 0.0)

    async def _run(self) -> None:
        try:
            await adrive(self._plan(), self._perform)
        finally:
            await self._release(closing=True)

    async def _release(self, *, closing: bool = False) -> None:
        """Close the response of a stream the plan is done with (or of any, when closing)."""
        reader = self._reader
        if reader is not None and (reader.closing or closing):
            self._reader = None
            await reader.aclose()

    async def _perform(self, step: SyncStep) -> Any:
        await self._release()
        if isinstance(step, Fetch):
            return await self._transport.fetch_rules(step.etag)
        if isinstance(step, Open):
            self._reader = await self._transport.open_stream(step.last_event_id)
            return self._reader
        if isinstance(step, Next):
            reader = step.reader
            assert isinstance(reader, AsyncReader)  # noqa: S101 - what _perform(Open) returned
            return await reader.next_event()
        await asyncio.sleep(step.seconds)
        return self._stop.is_set()


class AsyncEventSender(EventDelivery):
    """``EventDelivery`` on an asyncio task: a round every ``flush_interval``, or at once on
    ``flush()``."""

    def __init__(
        self,
        config: ClientConfig,
        transport: HttpxTransport,
        exposures: ExposureLog,
        outcomes: OutcomeQueue,
        spool: Spool | None,
        predictions: PredictionLog | None = None,
    ) -> None:
        super().__init__(config, exposures, outcomes, spool, predictions)
        self._transport = transport
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="rollwise-event-sender"
        )

    async def stop(self, timeout: float) -> bool:
        """End the task after one last round; ``True`` when it ended within ``timeout`` (else it
        was cancelled mid-round: the spool keeps what it holds)."""
        self._stop.set()
        self._wake.set()
        return await _stop_task(self._task, timeout)

    async def flush(self, timeout: float) -> bool:
        """Deliver everything queued and spooled; ``True`` when nothing is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._unreachable_until = 0.0  # a flush tries the server now
        while not self.delivered() and loop.time() < deadline and self._running():
            self._idle.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.05, deadline - loop.time())):
                    await self._idle.wait()
        return self.delivered()

    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            self._busy = True
            try:
                await adrive(self._cycle(), self._perform)
            except Exception:  # the sender must survive anything
                logger.exception("rollwise: the event sender failed; it carries on")
            finally:
                self._busy = False
                self._idle.set()
            if stopping:
                return

    async def _perform(self, step: SendStep) -> Any:
        if isinstance(step, Send):
            return await self._transport.send_events(step.kind, step.bodies)
        await asyncio.sleep(step.seconds)
        return None

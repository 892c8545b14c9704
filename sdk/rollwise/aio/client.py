"""``AsyncClient``: the online client for an asyncio application.

Evaluation is ``rollwise.evaluation.Evaluation``, the same synchronous code as ``Client``'s (no
``await`` on the hot path: it is CPU only and sub-microsecond). What differs is how the rules
and the events travel: two asyncio tasks on the application's event loop, with httpx, instead
of two threads with requests. The tasks run the same plans as the threads (``RulesFollower``,
``EventDelivery``), and the queues, the disk cache and the spool are the same objects.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, Self

from rollwise.aio.tasks import AsyncEventSender, AsyncRulesSync
from rollwise.aio.transport import HttpxTransport
from rollwise.client import RulesSource, load_document
from rollwise.config import ClientConfig, env_arguments
from rollwise.errors import RollwiseError
from rollwise.evaluation import Evaluation
from rollwise.exposures import ExposureListener, ExposureLog
from rollwise.online import OnlineState, setup_online
from rollwise.reporting import Reporting

__all__ = ["AsyncClient"]

logger = logging.getLogger("rollwise")


class _AsyncOnline(OnlineState):
    """The tasks, the HTTP client and the files of one ``AsyncClient``."""

    sync: AsyncRulesSync
    sender: AsyncEventSender
    ready: asyncio.Event

    def __init__(self, client: Evaluation, config: ClientConfig, exposures: ExposureLog) -> None:
        super().__init__(client, config, exposures, client._predictions)
        self.ready = asyncio.Event()
        self.answered = asyncio.Event()
        self.started = False
        self.transport = HttpxTransport(config)
        self.spool = self._open_spool("")
        self.sender = AsyncEventSender(
            config, self.transport, exposures, self.outcomes, self.spool, self.predictions
        )
        self.sync = AsyncRulesSync(
            config,
            self.transport,
            self.install_from_server,
            self.current_revision,
            self.ready,
            self.serving,
            self.answered,
        )

    def start(self) -> None:
        self.started = True
        if self.config.send_events:
            self.sender.start()
        self.sync.start()

    async def flush(self, timeout: float) -> bool:
        if not self.config.send_events:
            return True
        return await self.sender.flush(timeout)

    async def close(self) -> None:
        if not self.started and self.config.send_events:
            self.sender.start()  # never started: the events queued meanwhile still go out
        await self.flush(self.config.close_timeout)
        self.closed = True
        await self.sync.stop()
        if not await self.sender.stop(self.config.close_timeout):
            logger.warning(
                "rollwise: %d events were still being sent at close(); the spool keeps the rest",
                self.sender.pending(),
            )
        await self.transport.aclose()
        if self.spool is not None:
            self.spool.close()


class AsyncClient(Reporting):
    """Evaluates flags in-process, with rules kept in sync by asyncio tasks.

    ``AsyncClient(url, sdk_key, **options)`` takes the options of ``ClientConfig`` and does no
    network I/O; ``await client.start()`` (or ``async with AsyncClient(...) as client``) starts
    the tasks on the running event loop, and ``await client.close()`` flushes and stops them.
    """

    _online: _AsyncOnline
    """Always there (``Reporting``'s ``track``, ``status`` and ``stats`` read it)."""

    def __init__(
        self,
        url: str,
        sdk_key: str,
        *,
        bootstrap: RulesSource | None = None,
        on_exposure: ExposureListener | None = None,
        **options: Any,
    ) -> None:
        """Evaluation serves at once: the ``bootstrap`` document, or the last good rules from
        the disk cache, or the callers' defaults until the server answers."""
        config = ClientConfig(url=url, sdk_key=sdk_key, **options)
        exposures = setup_online(self, config, on_exposure)
        self._online = _AsyncOnline(self, config, exposures)
        self._online.serve_first(None if bootstrap is None else load_document(bootstrap))
        self._closing = asyncio.Lock()

    @classmethod
    def from_env(cls, **options: Any) -> AsyncClient:
        """An asyncio client configured by ``ROLLWISE_*`` variables, as ``Client.from_env``."""
        url, sdk_key, arguments = env_arguments(options)
        return cls(url, sdk_key, **arguments)

    # --- lifecycle ---

    async def start(self) -> Self:
        """Start the rules sync and the event sender on the running loop (once; again is a
        no-op). Returns the client. A closed client cannot start again."""
        online = self._online
        if online.closed:
            raise RollwiseError("this AsyncClient is closed: build a new one")
        if not online.started:
            online.start()
        return self

    async def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait until the server has sent the rules once (``True``); ``False`` when it refused
        the SDK key (at once) or ``timeout`` passed."""
        try:
            async with asyncio.timeout(timeout):
                await self._online.answered.wait()
        except TimeoutError:
            pass
        return self._online.ready.is_set()

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait for running shadow candidates, then send every queued and spooled event now;
        ``True`` if none is left after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle = await asyncio.to_thread(self._shadow_pool.wait, timeout)
        sent = await self._online.flush(max(0.0, deadline - loop.time()))
        return sent and idle

    async def close(self) -> None:
        """Let running shadow candidates finish, flush events (each up to ``close_timeout``),
        stop the tasks and close the HTTP client; evaluation keeps working. Idempotent."""
        async with self._closing:
            online = self._online
            if online.closed:
                return
            self._closed = True
            timeout = online.config.close_timeout
            await asyncio.to_thread(self._shadow_pool.close, timeout)
            await online.close()
            await asyncio.to_thread(self._changes.close, timeout)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"<rollwise.aio.AsyncClient revision={self._store.revision} "
            f"flags={len(self._evaluators)}>"
        )

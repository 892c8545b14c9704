"""The online half of a ``Client``: rules sync, event delivery, the disk cache, fork safety.

``Client.offline`` has none of this; ``Client(url, sdk_key)`` owns one ``Online``. It starts the
sync and sender threads, keeps the last good rules on disk, spools events while the server is
away, flushes at exit, and after ``os.fork()`` gives the child its own threads and spool.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollwise.config import ClientConfig
from rollwise.errors import ConfigurationError, SpoolError
from rollwise.evaluation import Evaluation
from rollwise.exposures import ExposureListener, ExposureLog
from rollwise.rules import RulesDocument
from rollwise.sender import EventDelivery, EventSender, OutcomeQueue
from rollwise.shadow import PredictionLog, ShadowPool
from rollwise.snapshot import load_snapshot, save_snapshot, snapshot_path
from rollwise.spool import Spool
from rollwise.status import RulesOrigin
from rollwise.sync import RulesFollower, RulesSync
from rollwise.transport import RequestsTransport, Transport

if TYPE_CHECKING:
    import asyncio

__all__ = ["Online", "OnlineState", "setup_online"]

logger = logging.getLogger("rollwise")


_ORIGINS = {
    "server": "received from the server",
    "disk_cache": "from the disk cache",
    "bootstrap": "from the bootstrap document",
}


def _fingerprint(config: ClientConfig) -> str:
    return hashlib.sha256(f"{config.url}\n{config.sdk_key}".encode()).hexdigest()[:16]


def setup_online(
    client: Evaluation, config: ClientConfig, on_exposure: ExposureListener | None
) -> ExposureLog:
    """Set up ``client``'s evaluation for an online client of ``config``: exposures queued for
    the sender, predictions and the shadow pool sized by the options; its exposure log."""
    if on_exposure is not None and not callable(on_exposure):
        raise ConfigurationError("on_exposure: must be callable")
    exposures = ExposureLog(
        queue=config.send_events,
        dedup_size=config.dedup_size,
        dedup_ttl=config.dedup_ttl,
        max_queue=config.max_queue,
    )
    client._setup(exposures, time.time)
    client._predictions = PredictionLog(queue=config.send_events, max_queue=config.max_queue)
    client._shadow_pool = ShadowPool(
        workers=config.shadow_workers,
        max_pending=config.shadow_max_pending,
        timeout=config.shadow_timeout,
    )
    if on_exposure is not None:
        exposures.add_listener(on_exposure)
    return exposures


class OnlineState:
    """What an online client keeps besides its threads or tasks: the queues, where its rules
    came from, the disk cache and the spool. ``Online`` adds the threads, ``rollwise.aio`` the
    asyncio tasks."""

    sync: RulesFollower
    """Follows the rules (a thread's ``RulesSync``, or an asyncio task)."""
    sender: EventDelivery
    """Delivers the events (a thread's ``EventSender``, or an asyncio task)."""
    spool: Spool | None
    ready: threading.Event | asyncio.Event
    """Set once the server has answered."""

    def __init__(
        self,
        client: Evaluation,
        config: ClientConfig,
        exposures: ExposureLog,
        predictions: PredictionLog | None = None,
    ) -> None:
        self.config = config
        self.predictions = (
            PredictionLog(queue=config.send_events) if predictions is None else predictions
        )
        self._client = weakref.ref(client)
        self.exposures = exposures
        self.outcomes = OutcomeQueue(config.max_queue)
        self.origin: RulesOrigin | None = None
        self.received_at: float | None = None
        self.closed = False
        self._snapshot = (
            snapshot_path(config.cache_dir, config.url, config.sdk_key)
            if config.cache_dir
            else None
        )

    def _open_spool(self, suffix: str) -> Spool | None:
        if self.config.cache_dir is None or not self.config.send_events:
            return None
        path = Path(self.config.cache_dir) / f"events-{_fingerprint(self.config)}{suffix}.sqlite"
        try:
            return Spool(path, max_bytes=self.config.spool_max_bytes)
        except SpoolError as exc:
            logger.error("rollwise: %s; events cannot be kept while the server is away", exc)
            return None

    def serve_first(self, bootstrap: RulesDocument | None) -> None:
        """Install what the client serves until the server answers: the disk cache, or the
        ``bootstrap`` document when it is newer (or there is no cache); else nothing."""
        client = self._client()
        if client is None:
            return
        cached = self.load_cache()
        if cached is not None and (bootstrap is None or cached.revision > bootstrap.revision):
            client._install(cached)
            self.origin = "disk_cache"
        elif bootstrap is not None:
            client._install(bootstrap)
            self.origin = "bootstrap"
            self.received_at = time.time()

    def current_revision(self) -> int | None:
        client = self._client()
        return None if client is None else client._store.revision

    def load_cache(self) -> RulesDocument | None:
        """The last good rules from the disk cache, if any (corrupt or foreign: ignored)."""
        if self._snapshot is None:
            return None
        loaded = load_snapshot(self._snapshot, url=self.config.url, sdk_key=self.config.sdk_key)
        if loaded is None:
            return None
        document, saved_at = loaded
        self.received_at = saved_at
        return document

    def rules_in_use(self) -> str | None:
        """``"rules revision 4 from the disk cache"``, or ``None`` while there are no rules."""
        revision = self.current_revision()
        if revision is None:
            return None
        return f"rules revision {revision} {_ORIGINS.get(self.origin or '', '')}".rstrip()

    def serving(self) -> str:
        """What the client serves while the server cannot be used, for the log lines."""
        rules = self.rules_in_use()
        if rules is None:
            return "no rules yet: every flag serves the caller's default"
        return f"serving {rules}"

    def install_from_server(self, document: RulesDocument) -> bool:
        client = self._client()
        if client is None:
            return False
        client._install(document)
        self.origin = "server"
        self.received_at = time.time()
        if self._snapshot is not None:
            try:
                save_snapshot(
                    self._snapshot, document, url=self.config.url, sdk_key=self.config.sdk_key
                )
            except OSError as exc:
                logger.warning("rollwise: could not save the rules cache: %s", exc)
        return True


class Online(OnlineState):
    """Threads and files of one online client."""

    sync: RulesSync
    sender: EventSender
    ready: threading.Event
    answered: threading.Event

    def __init__(
        self,
        client: Evaluation,
        config: ClientConfig,
        exposures: ExposureLog,
        transport_factory: Callable[[ClientConfig], Transport] | None,
        predictions: PredictionLog | None = None,
        shadow_pool: ShadowPool | None = None,
    ) -> None:
        super().__init__(client, config, exposures, predictions)
        self.shadow_pool = shadow_pool
        self._transport_factory = transport_factory or RequestsTransport
        self.ready = threading.Event()
        self.answered = threading.Event()
        self._build(spool_suffix="")
        self._atexit = _weak_method(self, "flush_at_exit")
        atexit.register(self._atexit)
        os.register_at_fork(after_in_child=_weak_method(self, "after_fork"))

    # --- set-up, also after a fork ---

    def _build(self, spool_suffix: str) -> None:
        config = self.config
        self.transport = self._transport_factory(config)
        self.spool = self._open_spool(spool_suffix)
        self.sender = EventSender(
            config, self.transport, self.exposures, self.outcomes, self.spool, self.predictions
        )
        self.sync = RulesSync(
            config,
            self.transport,
            self.install_from_server,
            self.current_revision,
            self.ready,
            self.serving,
            self.answered,
        )

    def start(self) -> None:
        if self.config.send_events:
            self.sender.start()
        self.sync.start()

    # --- lifecycle ---

    def flush(self, timeout: float) -> bool:
        if not self.config.send_events:
            return True
        return self.sender.flush(timeout)

    def flush_at_exit(self) -> None:
        if not self.closed:
            self.flush(self.config.close_timeout)

    def close(self) -> None:
        if self.closed:
            return
        self.flush(self.config.close_timeout)
        self.closed = True
        self.sync.stop()
        finished = self.sender.stop(self.config.close_timeout)
        if not finished:
            logger.warning(
                "rollwise: %d events were still being sent at close(); the spool keeps the rest",
                self.sender.pending(),
            )
            return  # the sender thread still owns the transport and the spool
        self.transport.close()
        if self.spool is not None:
            self.spool.close()
        atexit.unregister(self._atexit)

    def after_fork(self) -> None:
        """In a forked child: new threads, a new session and a spool of its own."""
        if self.closed:
            return
        self.exposures.after_fork()
        self.predictions.after_fork()
        if self.shadow_pool is not None:
            self.shadow_pool.after_fork()
        self.outcomes = OutcomeQueue(self.config.max_queue)
        self.ready = threading.Event()
        self._build(spool_suffix=f"-{os.getpid()}")
        self.start()


def _weak_method(owner: Any, name: str) -> Callable[[], None]:
    """A callback that calls ``owner.name()`` while ``owner`` is alive (no strong reference)."""
    ref = weakref.ref(owner)

    def call() -> None:
        target = ref()
        if target is not None:
            getattr(target, name)()

    return call

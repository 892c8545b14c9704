"""Whether the database can be written: the state that ``/readyz`` and the 503s report.

A write that fails because the disk is full (``SQLITE_FULL``) puts the store in the *full*
state; the next write that commits, a real one or the probe that ``/readyz`` runs while the
store is full, ends it. Each change of state is logged once (not once per refused request),
so a full disk shows up in the log as two lines, however long it lasts and however many
clients retry meanwhile.

SQLite writes into the WAL first and reuses its space once a checkpoint has copied it into the
database file, so on a full disk small writes may still commit for a while: "full" means that
a write failed for lack of space and none has committed since.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

__all__ = ["PROBE_INTERVAL", "RETRY_AFTER", "WriteState", "is_disk_full"]

logger = logging.getLogger("rollwise.server")

SQLITE_FULL = 13
RETRY_AFTER = 30
"""Seconds a refused writer is asked to wait (``Retry-After``): space takes a human to free."""
PROBE_INTERVAL = 1.0
"""At most one probe write a second, however often ``/readyz`` is asked."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether SQLite failed for lack of space (``SQLITE_FULL``, extended codes included)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == SQLITE_FULL


class WriteState:
    """Thread-safe: writes happen on the writer thread, ``/readyz`` reads from the loop."""

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._full_since: float | None = None
        self._last_probe = float("-inf")

    @property
    def writable(self) -> bool:
        return self._full_since is None

    def failed(self, exc: BaseException) -> None:
        """A write failed for lack of space."""
        with self._lock:
            if self._full_since is not None:
                return
            self._full_since = self._clock()
        logger.error(
            "rollwise: the database %s cannot be written: the disk is full (%s); writes answer "
            "503 and /readyz 503 until space is freed",
            self.path,
            exc,
        )

    def succeeded(self) -> None:
        """A write committed."""
        if self.writable:  # the usual case, without taking the lock
            return
        with self._lock:
            since, self._full_since = self._full_since, None
        if since is None:  # another thread said it first
            return
        lasted = self._clock() - since
        logger.warning(
            "rollwise: the database %s can be written again (it could not for %.0f s)",
            self.path,
            lasted,
        )

    def probe_due(self) -> bool:
        """Whether to try a probe write now: the store is full and no probe ran this second."""
        with self._lock:
            now = self._clock()
            if self._full_since is None or now - self._last_probe < PROBE_INTERVAL:
                return False
            self._last_probe = now
            return True

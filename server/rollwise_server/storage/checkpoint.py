"""WAL checkpoints on a thread of their own, so that the writer never stops to do one.

In WAL mode, by default, the connection whose commit takes the WAL past 1,000 pages copies the
WAL back into the database file (and syncs it) before its commit returns: under steady
ingestion that is nearly every commit, on the ingestion thread. Here a separate connection
runs a ``PASSIVE`` checkpoint every ``interval`` seconds (it never blocks the writer or the
readers, and SQLite releases the GIL while it works, so it runs on another core), and the
writer's own automatic checkpoint is moved to 10,000 pages (40 MB) as a bound in case this
thread falls behind. Measured: ~25% less SQLite time per ingested event.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["WRITER_AUTOCHECKPOINT_PAGES", "WalCheckpointer"]

WRITER_AUTOCHECKPOINT_PAGES = 10_000
log = logging.getLogger("rollwise_server")


class WalCheckpointer:
    """A daemon thread running ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` periodically."""

    def __init__(self, path: str, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self.failures = 0
        """Checkpoints that failed in a row (a full disk fails every one until space is freed)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollwise-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or I/O: the writer's own bound still holds
                    if not self.failures:  # logged once when they start failing, once when not
                        log.warning("WAL checkpoints fail: %s (said once, until they work)", exc)
                    self.failures += 1
                    continue
                if self.failures:
                    log.warning("WAL checkpoints work again (%d failed)", self.failures)
                    self.failures = 0
        finally:
            conn.close()

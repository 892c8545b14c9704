"""The SQLite store: WAL mode, one writer at a time, every change in one transaction.

Writes go through a single connection guarded by a lock (SQLite allows one writer; serializing
in Python avoids ``database is locked`` retries). Reads use one connection per thread, which WAL
lets run beside the writer. Changes commit with ``synchronous=NORMAL``: a process killed at any
point (``kill -9``) loses no committed transaction and leaves no half-written one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlite_utils import Database

from rollwise.analysis.reduce import Dialect
from rollwise_server.errors import StorageFull
from rollwise_server.storage.base import EventRow, IngestCounts
from rollwise_server.storage.checkpoint import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer
from rollwise_server.storage.migrations_sqlite import migrations
from rollwise_server.storage.per_thread import PerThread
from rollwise_server.storage.sql import (
    COLUMNS,
    DEFAULT_ENVIRONMENTS,
    PROTECTED_BY_DEFAULT,
    SqlStore,
    now_iso,
)
from rollwise_server.storage.writable import RETRY_AFTER, WriteState, is_disk_full

__all__ = ["SQLiteStore"]

_INSERT = {
    table: f"INSERT OR IGNORE INTO {table} ({', '.join(columns)})"
    f" VALUES ({', '.join('?' * len(columns))})"
    for table, columns in COLUMNS.items()
}


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SQLiteStore(SqlStore):
    """``Store`` on one SQLite file (``:memory:`` is not supported: readers need the file)."""

    dialect: Dialect = "sqlite"
    _SQL_NOT_INDEXED = " NOT INDEXED"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._write_lock = threading.Lock()
        self._writer = _connect(self.path)
        # 64 MiB of page cache for the writer (SQLite's default is 2 MB): ingestion inserts into
        # the analysis indexes at random places, and a page found in the cache is not re-read.
        self._writer.execute("PRAGMA cache_size = -65536")
        self._writer.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        self._db = Database(self._writer)
        self._readers = PerThread(self._connect_reader, sqlite3.Connection.close)
        with self._write_lock:
            migrations.apply(self._db)
            for env in DEFAULT_ENVIRONMENTS:
                self._writer.execute(
                    "INSERT OR IGNORE INTO environments (key, revision, created_at, protected)"
                    " VALUES (?, 0, ?, ?)",
                    (env, now_iso(), int(env in PROTECTED_BY_DEFAULT)),
                )
        self._checkpointer = WalCheckpointer(self.path)
        self.writes = WriteState(self.path)

    # --- connections and transactions ---

    def _reader(self) -> sqlite3.Connection:
        return self._readers.get()

    def _connect_reader(self) -> sqlite3.Connection:
        conn = _connect(self.path)
        conn.execute("PRAGMA query_only=ON")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer connection in one transaction (one writer at a time, under the lock).

        A transaction that fails for lack of disk space is rolled back and raises
        ``StorageFull`` (503, ``Retry-After``); ``self.writes`` remembers it for ``/readyz``."""
        with self._write_lock:
            changes = self._writer.total_changes
            try:
                with self._db.atomic():
                    yield self._writer
            except sqlite3.Error as exc:
                if not is_disk_full(exc):
                    raise
                self.writes.failed(exc)
                raise StorageFull(
                    "the database cannot be written: the disk is full; nothing was stored",
                    retry_after=RETRY_AFTER,
                ) from exc
            if self._writer.total_changes != changes:  # a commit that wrote: there was room
                self.writes.succeeded()  # (under the lock: in the order of the writes)

    def probe_write(self) -> bool:
        """Commit a write of one page (``user_version``, unused otherwise, set to itself): whether
        the database can be written. ``/readyz`` calls it while the disk is full."""
        try:
            with self.transaction() as conn:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                conn.execute(f"PRAGMA user_version = {int(version)}")
        except StorageFull:
            return False
        self.writes.succeeded()  # committed, though no row changed (see ``transaction``)
        return True

    def close(self) -> None:
        self._checkpointer.close()
        self._readers.close()
        with self._write_lock:
            self._writer.close()

    # --- events ---

    def ingest_many(
        self,
        batches: Sequence[
            tuple[Literal["exposures", "outcomes", "predictions"], Sequence[EventRow]]
        ],
    ) -> list[IngestCounts]:
        """Insert several batches in one transaction (group commit: one WAL write for all);
        each batch's counts. Rows whose ``id`` exists already are skipped."""
        if not any(rows for _, rows in batches):
            return [IngestCounts(0, 0) for _ in batches]
        counts = []
        with self.transaction() as conn:
            for table, rows in batches:
                before = conn.total_changes
                if rows:
                    conn.executemany(_INSERT[table], rows)
                accepted = conn.total_changes - before
                counts.append(IngestCounts(accepted, len(rows) - accepted))
        return counts

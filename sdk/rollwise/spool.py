"""The local event spool: a SQLite file that holds events while the server is unreachable.

Events wait here, oldest first, until the sender has delivered them and calls ``remove``; a
restarted process finds them again. The spool has a size cap so an outage cannot fill the disk:
events that do not fit are dropped, counted in ``dropped`` and logged once per overflow episode
(from the first drop until the spool has drained to half its cap).
It logs rather than issuing ``warnings.warn``, because a warning turned into an exception
(``-W error``) must never reach application code from a background thread.

Stdlib ``sqlite3`` only (sqlite-utils is a server dependency). One process per spool file: the
size and row counts are kept in memory, read from the file once at open.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from rollwise.errors import ConfigurationError, SpoolError

__all__ = ["Spool"]

logger = logging.getLogger("rollwise")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
)
"""
# Bytes, not characters: CAST(... AS BLOB) is the stored UTF-8, and length() of a blob does not
# stop at a NUL the way length() of a text does.
_SIZE = "total(length(CAST(body AS BLOB)))"
_TOTALS = "SELECT count(*), total(length(CAST(body AS BLOB))) FROM events"
_CHUNK = 500  # "?" per statement: under SQLITE_MAX_VARIABLE_NUMBER (999 in old builds)
_CORRUPT = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def _is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether the file is not a SQLite database or a damaged one (as opposed to unopenable)."""
    return getattr(exc, "sqlite_errorname", "").startswith(_CORRUPT)


class Spool:
    """A persistent FIFO of ``(kind, body)`` JSON texts with a size cap; safe to share by threads.

    ``max_bytes`` caps the UTF-8 size of the stored bodies (the file itself is somewhat larger).
    Raises ``SpoolError`` naming the path when the file cannot be opened or created; a file that
    is not a SQLite database (or a damaged one) is moved aside to ``<path>.corrupt-<timestamp>``
    with a logged warning, and a fresh spool is started in its place.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 100 * 1024 * 1024) -> None:
        if max_bytes < 0:
            raise ConfigurationError(f"spool max_bytes: expected an integer >= 0, not {max_bytes}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._dropped = 0
        self._overflowing = False  # between a drop and draining to half the cap: warned already
        self._episode_dropped = 0
        connection, self._count, self._size = self._open()
        self._connection: sqlite3.Connection | None = connection

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> tuple[sqlite3.Connection, int, int]:
        if self.path.is_dir():
            raise SpoolError(f"cannot open the event spool {self.path}: it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"cannot create the directory of the event spool {self.path}: {exc}"
            ) from exc
        try:
            return self._connect()
        except sqlite3.Error as exc:
            if not _is_corrupt(exc):
                raise SpoolError(f"cannot open the event spool {self.path}: {exc}") from exc
            reason = str(exc)
        aside = self._move_aside(reason)
        logger.warning(
            "event spool %s is not a usable SQLite database (%s); moved it to %s and started an "
            "empty spool; the events in it were not delivered",
            self.path,
            reason,
            aside,
        )
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the event spool {self.path}: {exc}") from exc

    def _connect(self) -> tuple[sqlite3.Connection, int, int]:
        """Open, configure and check the file; returns the connection, its rows and bytes."""
        connection = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed, not a power cut; fine for
            # a spool, and it keeps appends cheap.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
            try:
                connection.execute("SELECT seq, kind, body FROM events LIMIT 0")
            except sqlite3.OperationalError as exc:
                raise SpoolError(
                    f"{self.path} is a SQLite database but not a rollwise event spool: {exc}"
                ) from exc
            # Reads every row, so a damaged file shows up here, at open, not on the first append.
            count, size = connection.execute(_TOTALS).fetchone()
        except BaseException:
            connection.close()
            raise
        return connection, int(count), int(size)

    def _move_aside(self, reason: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        serial = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{serial}")
            serial += 1
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):  # a stale WAL must not be replayed into the new file
                companion = self.path.with_name(self.path.name + suffix)
                if companion.exists():
                    os.replace(companion, aside.with_name(aside.name + suffix))
        except OSError as exc:
            raise SpoolError(
                f"cannot open the event spool {self.path} ({reason}) nor move it aside: {exc}"
            ) from exc
        return aside

    # -- the queue -----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise SpoolError(f"the event spool {self.path} is closed")
        return self._connection

    def append(self, kind: str, bodies: Sequence[str]) -> int:
        """Store ``bodies`` (JSON texts) in order; returns how many were stored.

        What fits under the cap is stored: always a prefix, ``bodies[:n]``, so the order of the
        spool is the order of the calls. The rest is dropped and counted in ``dropped``. Raises
        ``SpoolError`` (storing nothing) if the file cannot be written or a body is not valid
        Unicode (a lone surrogate has no UTF-8 form).
        """
        sizes: list[int] = []
        for index, body in enumerate(bodies):
            try:
                sizes.append(len(body.encode("utf-8")))
            except UnicodeEncodeError as exc:
                raise SpoolError(
                    f"event spool {self.path}: body {index} is not valid text: {exc}"
                ) from exc
        with self._lock:
            connection = self._conn()
            room = self.max_bytes - self._size
            fits = 0
            for size in sizes:
                if size > room:
                    break
                room -= size
                fits += 1
            if fits:
                try:
                    with connection:  # one transaction: all of the prefix or nothing
                        connection.execute("BEGIN IMMEDIATE")
                        connection.executemany(
                            "INSERT INTO events (kind, body) VALUES (?, ?)",
                            [(kind, body) for body in bodies[:fits]],
                        )
                except sqlite3.Error as exc:
                    raise SpoolError(f"cannot write to the event spool {self.path}: {exc}") from exc
                self._count += fits
                self._size += sum(sizes[:fits])
            self._account_drops(len(sizes) - fits)
        return fits

    def _account_drops(self, dropped: int) -> None:
        if dropped == 0:
            return
        self._dropped += dropped
        self._episode_dropped += dropped
        if not self._overflowing:
            self._overflowing = True
            logger.warning(
                "event spool %s is full (%d of %d bytes used); dropping the events that do not "
                "fit until the server takes some (Spool.dropped counts them)",
                self.path,
                self._size,
                self.max_bytes,
            )

    def _end_episode(self) -> None:
        """An overflow ends once the spool has drained to half the cap.

        The margin keeps a spool hovering at its cap, where a small batch sometimes fits, from
        logging a warning for every other append.
        """
        if self._overflowing and self._size <= self.max_bytes // 2:
            logger.info(
                "event spool %s has room again (%d of %d bytes used); %d events were dropped "
                "while it was full",
                self.path,
                self._size,
                self.max_bytes,
                self._episode_dropped,
            )
            self._overflowing = False
            self._episode_dropped = 0

    def peek(self, limit: int) -> list[tuple[int, str, str]]:
        """Up to ``limit`` pending ``(seq, kind, body)`` rows, oldest first; removes nothing."""
        if limit <= 0:
            return []
        with self._lock:
            try:
                rows = (
                    self._conn()
                    .execute("SELECT seq, kind, body FROM events ORDER BY seq LIMIT ?", (limit,))
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the event spool {self.path}: {exc}") from exc
        return [(int(seq), str(kind), str(body)) for seq, kind, body in rows]

    def remove(self, seqs: Sequence[int]) -> None:
        """Delete the rows with these ``seq`` numbers (delivered events); ignores unknown ones."""
        unique = sorted(set(seqs))
        if not unique:
            return
        with self._lock:
            connection = self._conn()
            count = size = 0
            try:
                with connection:
                    connection.execute("BEGIN IMMEDIATE")
                    for start in range(0, len(unique), _CHUNK):
                        chunk = unique[start : start + _CHUNK]
                        marks = ",".join("?" * len(chunk))
                        where = f"FROM events WHERE seq IN ({marks})"
                        found, freed = connection.execute(
                            f"SELECT count(*), {_SIZE} {where}",
                            chunk,
                        ).fetchone()
                        connection.execute(f"DELETE {where}", chunk)
                        count += int(found)
                        size += int(freed)
            except sqlite3.Error as exc:
                raise SpoolError(
                    f"cannot remove rows of the event spool {self.path}: {exc}"
                ) from exc
            self._count -= count
            self._size -= size
            self._end_episode()

    # -- state ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Pending rows."""
        return self._count

    def __bool__(self) -> bool:
        """Always true, so ``if client_spool:`` means "there is a spool", not "it is non-empty"."""
        return True

    @property
    def size_bytes(self) -> int:
        """UTF-8 bytes of the pending bodies: what counts against ``max_bytes``."""
        return self._size

    @property
    def dropped(self) -> int:
        """Events dropped at the cap since this spool was opened."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._connection is None

    def close(self) -> None:
        """Close the file; pending rows stay for the next open. Calling it twice is harmless."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Spool {str(self.path)!r} rows={self._count} bytes={self._size}>"

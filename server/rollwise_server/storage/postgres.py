"""The PostgreSQL store: several server replicas on one database (``--db postgresql://...``).

Writes take a connection from a pool (``psycopg_pool``) for one transaction each; a write that
moves an environment's revision or edits its resources or rollouts first locks that
environment's row (``SqlStore._require_env``), so the writes of one environment happen one
after another whichever replica makes them: versions and revisions stay gap-free and If-Match
holds. Reads use one connection per thread, in autocommit mode, as the SQLite store's readers
do. A transaction that moves a revision sends it on the ``rollwise_revisions`` channel
(``NOTIFY``, delivered at commit); ``watch`` listens on a connection of its own and hands each
revision to the server, which publishes it to its SDK streams.

Events are copied (``COPY``) into a temporary table and inserted from there with ``ON CONFLICT
DO NOTHING``: one round trip per batch, each event stored once however often it is sent and
through whichever replica.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from rollwise.analysis.reduce import Dialect
from rollwise.errors import ConfigurationError
from rollwise_server.errors import Invalid, StorageFull
from rollwise_server.storage import migrations_postgres
from rollwise_server.storage.base import EventRow, IngestCounts
from rollwise_server.storage.per_thread import PerThread
from rollwise_server.storage.sql import (
    COLUMNS,
    DEFAULT_ENVIRONMENTS,
    PROTECTED_BY_DEFAULT,
    SqlStore,
    now_iso,
)
from rollwise_server.storage.writable import RETRY_AFTER, WriteState

__all__ = ["PostgresStore", "connect", "redacted", "translate"]

log = logging.getLogger("rollwise.server")

LEADER_LOCK = 0x726F6C6C6F7574
"""The session advisory lock that the replica running the controller holds ("rollout")."""
CHANNEL = "rollwise_revisions"
"""The ``NOTIFY`` channel of revisions: the payload is ``env:revision``."""
PARTITION_MONTHS_AHEAD = 2
"""Months of event partitions made ahead of the newest time that ingestion accepts."""
PARTITION_MONTHS_BACK = 12
"""Months of event partitions made behind the present, at most: older events (accepted under a
longer ``event_max_age``, or copied in) are stored in the default partition."""

_COPY_TYPES = {
    "exposures": ["text", "text", "text", "text", "int8", "text", "text", "text", "text", "text",
                  "text"],
    "outcomes": ["text", "text", "text", "text", "text", "text", "float8", "text", "text"],
    "predictions": ["text", "text", "text", "text", "int8", "text", "text", "text", "text",
                    "text", "text", "float8", "float8", "text", "text", "text"],
}  # fmt: skip
"""The types of ``COLUMNS``, for binary ``COPY`` (no text to parse on either side)."""

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|::|%|\?|:([A-Za-z_][A-Za-z0-9_]*)")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """The shared SQL's placeholders (``?``, ``:name``) in psycopg's (``%s``, ``%(name)s``),
    every ``%`` escaped (psycopg reads them in quoted literals too); quoted literals and ``::``
    casts are otherwise left alone."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("'"):
            return text.replace("%", "%%")
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        if match.group(1) is not None:
            return f"%({match.group(1)})s"
        return text

    return _PLACEHOLDER.sub(replace, sql)


def redacted(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class _Connection:
    """A psycopg connection that runs the shared SQL (its placeholders translated)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        if params is None:
            return self.raw.execute(sql)
        return self.raw.execute(translate(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cursor = self.raw.cursor()
        cursor.executemany(translate(sql), rows)
        return cursor

    def stream(self, sql: str) -> Any:
        """The rows of ``sql`` as the server sends them, not all held in memory."""
        return self.raw.cursor().stream(sql)

    def cursor(self) -> Any:
        """A raw psycopg cursor (``%s`` placeholders): what ``reduce_spec`` runs its SQL on."""
        return self.raw.cursor()


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ConfigurationError(
            "db: a postgresql:// database needs psycopg and psycopg-pool: "
            "pip install 'rollwise[server,postgresql]'"
        ) from None
    return psycopg, psycopg_pool


def connect(url: str) -> Any:
    """A psycopg connection to ``url`` in autocommit mode (for tests and tools)."""
    psycopg, _ = _psycopg()
    return psycopg.connect(url, autocommit=True)


class PostgresStore(SqlStore):
    """``Store`` on a PostgreSQL database; any number of replicas may share it."""

    dialect: Dialect = "postgresql"
    _SQL_BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    _SQL_LOCK = " FOR UPDATE"
    _SQL_SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    ingest_writers = 4

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        event_max_age: float = 30 * 86_400.0,
        event_max_future: float = 300.0,
    ) -> None:
        psycopg, psycopg_pool = _psycopg()
        self._psycopg = psycopg
        self.url = url
        self.path = redacted(url)
        self._event_span = (event_max_age, event_max_future)
        try:
            conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigurationError(f"db: cannot connect to {self.path}: {exc}") from None
        with conn:
            migrations_postgres.apply(conn)
            for env in DEFAULT_ENVIRONMENTS:
                conn.execute(
                    "INSERT INTO environments (key, revision, created_at, protected)"
                    " VALUES (%s, 0, %s, %s) ON CONFLICT (key) DO NOTHING",
                    (env, now_iso(), int(env in PROTECTED_BY_DEFAULT)),
                )
            self._ensure_partitions(conn)
        # each connection's ``application_name`` in ``pg_stat_activity``: rollwise-<use>-<replica>
        name = secrets.token_hex(6)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "application_name": f"rollwise-write-{name}"},
            check=psycopg_pool.ConnectionPool.check_connection,  # none broken after a restart
            open=True,
            name="rollwise",
        )
        self._stop = threading.Event()
        self.listener_name = f"rollwise-listen-{name}"
        """The ``application_name`` of the listening connection."""
        self.reader_name = f"rollwise-read-{name}"
        """The ``application_name`` of the reading connections, one per living thread."""
        self._leader_name = f"rollwise-lead-{name}"
        self._readers = PerThread(self._connect_reader, lambda conn: conn.raw.close())
        self._leader: Any = None
        self._leader_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.writes = WriteState(self.path)

    # --- connections and transactions ---

    def _reader(self) -> _Connection:
        conn = self._readers.get()
        if conn.raw.closed:  # the server restarted, or the connection was cut
            self._readers.discard()
            conn = self._readers.get()
        return conn

    def _connect_reader(self) -> _Connection:
        raw = self._psycopg.connect(self.url, autocommit=True, application_name=self.reader_name)
        return _Connection(raw)

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        """A pooled connection in one transaction (committed when the block ends).

        A transaction that fails for lack of disk space (SQLSTATE 53100) raises
        ``StorageFull`` (503, ``Retry-After``); ``self.writes`` remembers it for ``/readyz``,
        until ``probe_write`` finds room (a commit that happened to fit in a page already
        there proves nothing: PostgreSQL updates rows in place)."""
        with self._pool.connection() as raw:
            try:
                with raw.transaction():
                    yield _Connection(raw)
            except self._psycopg.errors.DiskFull as exc:
                self.writes.failed(exc)
                raise StorageFull(
                    "the database cannot be written: the disk is full; nothing was stored",
                    retry_after=RETRY_AFTER,
                ) from exc

    def probe_write(self) -> bool:
        """Commit a write that needs a new page (``rollwise_probe`` emptied, then a row of
        7,000 bytes stored uncompressed): whether the database has room to grow."""
        try:
            with self.transaction() as conn:
                conn.execute("TRUNCATE rollwise_probe")
                conn.execute("INSERT INTO rollwise_probe (filler) VALUES (repeat('x', 7000))")
        except StorageFull:
            return False
        self.writes.succeeded()
        return True

    def close(self) -> None:
        self._stop.set()
        with self._leader_lock:
            if self._leader is not None:
                self._leader.close()  # the lock goes with the connection
                self._leader = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.close()
        self._readers.close()

    def _revision_moved(self, conn: Any, env: str, revision: int) -> None:
        conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, f"{env}:{revision}"))

    # --- db copy ---

    def insert_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """``COPY`` the rows in (``db copy``)."""
        names = ", ".join(columns)
        with conn.raw.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def counter_follows(self, conn: Any, table: str, column: str) -> None:
        sequence = (
            f"{table}_seq"
            if column == "seq"
            else conn.execute("SELECT pg_get_serial_sequence(?, ?)", (table, column)).fetchone()[0]
        )
        conn.execute(  # sequence and names: db copy's own
            f"SELECT setval(?, coalesce(max({column}), 1), max({column}) IS NOT NULL) FROM {table}",
            (sequence,),
        )

    # --- the controller's leader ---

    def lead(self) -> bool:
        """Whether this replica leads: it holds the session advisory lock ``LEADER_LOCK`` on a
        connection of its own, taken if free. A replica that dies, or loses that connection,
        loses the lock with it, and the next replica to ask takes it."""
        with self._leader_lock:
            if self._leader is not None:
                try:
                    self._leader.execute("SELECT 1")
                    return True
                except self._psycopg.Error:
                    log.warning("rollwise: the controller's leader connection was lost")
                    self._leader.close()
                    self._leader = None
            conn = self._psycopg.connect(
                self.url, autocommit=True, application_name=self._leader_name
            )
            (taken,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
            if not taken:
                conn.close()
                return False
            self._leader = conn
            return True

    # --- notifications ---

    def watch(self, publish: Callable[[str, int], None]) -> None:
        """Call ``publish(env, revision)`` for every revision committed by any replica, from a
        thread of its own, until ``close()``. After a lost connection it reconnects and
        publishes every environment's revision (what was missed meanwhile)."""
        thread = threading.Thread(
            target=self._listen, args=(publish,), name="rollwise-listen", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _listen(self, publish: Callable[[str, int], None]) -> None:
        missed = False
        while not self._stop.is_set():
            try:
                with self._psycopg.connect(
                    self.url, autocommit=True, application_name=self.listener_name
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if missed:
                        for env in self.environments():
                            publish(env["key"], env["revision"])
                    missed = True
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.1):
                            env, _, revision = notice.payload.rpartition(":")
                            publish(env, int(revision))
            except Exception:  # the database went away: try again, the poll covers meanwhile
                log.warning("rollwise: listening for revisions failed", exc_info=True)
                self._stop.wait(1.0)

    # --- events ---

    def top_seq(self, table: Literal["exposures", "outcomes", "predictions"]) -> int:
        """The sequence's last number (``seq`` has a BRIN index, which keeps no order to take a
        ``max`` from; a number taken by a transaction that then failed is never stored, so
        this may be slightly above the last stored ``seq``)."""
        if table not in COLUMNS:
            raise Invalid(f"unknown event table {table!r}")
        row = (
            self._reader()
            .execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {table}_seq")
            .fetchone()
        )
        return int(row[0])

    def _ensure_partitions(self, conn: Any) -> list[str]:
        max_age, max_future = self._event_span
        now = datetime.now(UTC)
        earliest = now - timedelta(seconds=min(max_age, PARTITION_MONTHS_BACK * 31 * 86_400.0))
        latest = now + timedelta(
            seconds=min(max_future, 86_400.0), days=31 * PARTITION_MONTHS_AHEAD
        )
        return migrations_postgres.ensure_partitions(conn, earliest, latest)

    def maintain(self, retention: float) -> dict[str, list[str]]:
        """Make the event partitions that ingestion may need next, and drop the months that
        ended more than ``retention`` seconds ago; what was created and dropped."""
        with self._pool.connection() as raw:
            created = self._ensure_partitions(raw)
            cutoff = datetime.now(UTC) - timedelta(seconds=min(retention, 3e9))
            dropped = migrations_postgres.drop_partitions_before(raw, cutoff)
        for name in created + dropped:
            log.info(
                "rollwise: event partition %s %s", name, "created" if name in created else "dropped"
            )
        return {"created": created, "dropped": dropped}

    def ingest_many(
        self,
        batches: Sequence[
            tuple[Literal["exposures", "outcomes", "predictions"], Sequence[EventRow]]
        ],
    ) -> list[IngestCounts]:
        """Insert several batches in one transaction; each batch's counts. Each batch is
        copied into a temporary table, then inserted from it: rows whose ``(id, ts)`` is
        stored already, or repeated in the batch, are skipped."""
        if not any(rows for _, rows in batches):
            return [IngestCounts(0, 0) for _ in batches]
        counts = []
        with self.transaction() as conn:
            for table, rows in batches:
                if not rows:
                    counts.append(IngestCounts(0, 0))
                    continue
                columns = ", ".join(COLUMNS[table])
                stage = f"rollwise_stage_{table}"
                conn.raw.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS"
                    f" AS SELECT {columns} FROM {table} WITH NO DATA"
                )
                conn.raw.execute(f"TRUNCATE {stage}")
                with conn.raw.cursor().copy(
                    f"COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(_COPY_TYPES[table])
                    for row in rows:
                        copy.write_row(row)
                accepted = conn.raw.execute(
                    f"INSERT INTO {table} ({columns}) SELECT DISTINCT ON (id, ts) {columns}"
                    f" FROM {stage} ORDER BY id, ts ON CONFLICT DO NOTHING"
                ).rowcount
                counts.append(IngestCounts(accepted, len(rows) - accepted))
        return counts

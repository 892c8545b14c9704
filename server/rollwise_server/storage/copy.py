"""``rollwise db copy``: move an installation from one database to another (SQLite to
PostgreSQL, or back), table by table, and check that every row arrived.

The source is read in one snapshot (a read transaction), so what is copied is consistent even
while a server writes to it; what it writes after the snapshot is not copied (stop the servers,
or copy again, for the final move). The target must be new: nothing but the two environments
that a new store makes. Everything is written in one transaction, so a copy that fails leaves
the target as empty as it was. Afterwards the rows of each table are counted on both sides.
The SQLite store's rollout tallies are not copied: the controller rebuilds them (SQLite) or
does not keep them (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from rollwise_server.errors import Conflict
from rollwise_server.storage.base import Store
from rollwise_server.storage.sql import EXPOSURE_COLUMNS, OUTCOME_COLUMNS, PREDICTION_COLUMNS

__all__ = ["TABLES", "TableCopy", "copy_database"]

TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("environments", ("key", "revision", "created_at", "protected")),
    ("resources", ("env", "kind", "key", "version", "archived", "body", "updated_at",
                   "updated_by")),
    ("resource_versions", ("env", "kind", "key", "version", "action", "actor", "reason", "ts",
                           "archived", "body")),
    ("audit", ("id", "ts", "actor", "action", "env", "resource_type", "resource_key", "version",
               "reason", "details", "owner", "token_id")),
    ("tokens", ("id", "name", "role", "env", "secret_hash", "created_at", "created_by",
                "revoked_at", "owner", "envs", "expires_at")),
    ("rollouts", ("env", "flag", "version", "plan", "state", "updated_at", "lease_owner",
                  "lease_until")),
    ("webhook_outbox", ("id", "message_id", "endpoint", "endpoint_label", "event", "body",
                        "state", "attempts", "created", "created_at", "next_attempt",
                        "last_attempt_at", "last_status", "last_error", "finished_at")),
    ("console_sessions", ("id_hash", "token_id", "csrf", "created", "last_seen")),
    ("monitors", ("env", "flag", "name", "version", "spec", "state", "updated_at")),
    ("exposures", (*EXPOSURE_COLUMNS, "seq")),
    ("outcomes", (*OUTCOME_COLUMNS, "seq")),
    ("predictions", (*PREDICTION_COLUMNS, "seq")),
)  # fmt: skip
"""The tables copied, in an order that satisfies their references, with their columns."""

_COUNTERS = {
    "audit": "id", "webhook_outbox": "id", "exposures": "seq", "outcomes": "seq",
    "predictions": "seq",
}  # fmt: skip
_BATCH = 10_000


@attrs.frozen
class TableCopy:
    """One table: rows in the source's snapshot, and in the target after the copy."""

    table: str
    source: int
    target: int

    @property
    def complete(self) -> bool:
        return self.source == self.target


def _rows(conn: Any, sql: str) -> Iterable[tuple[Any, ...]]:
    """The rows of ``sql``, streamed (PostgreSQL: row by row, not all in memory)."""
    stream = getattr(conn, "stream", None)
    rows: Iterable[tuple[Any, ...]] = stream(sql) if stream is not None else conn.execute(sql)
    return rows


def _batches(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(tuple(row))
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_new(target: Store) -> None:
    conn = target.reader()
    for table, _ in TABLES:
        if table == "environments":
            continue
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        if count:
            raise Conflict(
                f"the target database is not new: its table {table} has {count} rows; "
                "copy into a new database"
            )
    (moved,) = conn.execute("SELECT count(*) FROM environments WHERE revision <> 0").fetchone()
    if moved:
        raise Conflict("the target database is not new: an environment has changes")


def copy_database(
    source: Store, target: Store, progress: Callable[[str, int], None] = lambda t, n: None
) -> list[TableCopy]:
    """Copy every table of ``source`` into the new database ``target`` (see the module);
    ``progress(table, rows)`` after each batch. The counts of each table, compared."""
    _check_new(target)
    counts: dict[str, int] = {}
    with source.snapshot() as reader, target.transaction() as writer:
        writer.execute("DELETE FROM environments")  # the defaults of the new store
        for table, columns in TABLES:
            (counts[table],) = reader.execute(f"SELECT count(*) FROM {table}").fetchone()
            names = ", ".join(columns)
            order = _COUNTERS.get(table, "1")
            sql = f"SELECT {names} FROM {table} ORDER BY {order}"
            done = 0
            for batch in _batches(_rows(reader, sql)):
                target.insert_rows(writer, table, columns, batch)
                done += len(batch)
                progress(table, done)
        for table, column in _COUNTERS.items():
            target.counter_follows(writer, table, column)
    if target.dialect == "postgresql":  # statistics now, not at autovacuum's next pass: until
        # then the planner joins outcomes by nested loops and a reduction takes seconds
        with target.transaction() as writer:
            for table in ("exposures", "outcomes", "predictions"):
                writer.execute(f"ANALYZE {table}")
    copied = []
    conn = target.reader()
    for table, _ in TABLES:
        (stored,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        copied.append(TableCopy(table, int(counts[table]), int(stored)))
    return copied

"""Storage backends behind the ``Store`` protocol; ``open_store(url)`` picks one by URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from rollwise.errors import ConfigurationError
from rollwise_server.storage.base import Store
from rollwise_server.storage.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "database_errors", "open_store"]


def open_store(url: str, **options: Any) -> Store:
    """``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, a bare file path, or
    ``postgresql://user@host:port/database`` (``postgres://`` too; libpq's URL, whose query may
    set ``options=-csearch_path=...`` to use a schema other than ``public``).

    ``options`` go to the PostgreSQL store (``event_max_age``, ``event_max_future``: the span
    of event times it makes partitions for)."""
    if url.startswith(("postgresql://", "postgres://")):
        from rollwise_server.storage.postgres import PostgresStore

        return PostgresStore(url, **options)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(
            f"db: unsupported database URL scheme {scheme!r} (use sqlite:/// or postgresql://)"
        )
    else:
        path = url
    if not path or path == ":memory:":
        raise ConfigurationError("db: SQLite needs a file path (readers and the writer share it)")
    Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(Path(path).expanduser())


def database_errors(*others: type[Exception]) -> tuple[type[Exception], ...]:
    """``others`` and the exceptions the database drivers raise (to report, not to hide, at
    the CLI's edge)."""
    errors: tuple[type[Exception], ...] = (*others, sqlite3.Error)
    try:
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.Error)

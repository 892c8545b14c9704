"""Storage backends behind the ``Store`` protocol; ``open_store(url)`` picks one by URL."""

from __future__ import annotations

from pathlib import Path

from rollwise.errors import ConfigurationError
from rollwise_server.storage.base import Store
from rollwise_server.storage.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "open_store"]


def open_store(url: str) -> Store:
    """``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or a bare file path."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(f"db: unsupported database URL scheme {scheme!r} (use sqlite:///)")
    else:
        path = url
    if not path or path == ":memory:":
        raise ConfigurationError("db: SQLite needs a file path (readers and the writer share it)")
    Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(Path(path).expanduser())

"""One database connection per thread, closed when its thread ends.

The stores read on the calling thread: anyio's worker threads (which end after 10 idle seconds
and are replaced under the next burst) and the server's own. A connection kept for ``close()``
in a plain list outlived its thread, so every new worker thread left one more open connection
behind (SQLite: a file descriptor and up to 2 MiB of page cache; PostgreSQL: a backend): the
server's memory crept up under varying load (benchmarks/RESULTS.md, "Server memory").
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerThread"]

C = TypeVar("C")


class _Holder(Generic[C]):
    """What the thread-local keeps: when the thread ends it goes, and its finalizer closes."""

    __slots__ = ("__weakref__", "conn", "finalizer")

    def __init__(self, conn: C) -> None:
        self.conn = conn
        self.finalizer: weakref.finalize[Any, Any] | None = None


class PerThread(Generic[C]):
    """``get()``: the calling thread's connection, opened by ``connect`` on first use and
    closed by ``close_one`` when the thread ends, ``discard()`` is called, or ``close()``."""

    def __init__(self, connect: Callable[[], C], close_one: Callable[[C], object]) -> None:
        self._connect = connect
        self._close_one = close_one
        self._local = threading.local()
        self._open: dict[int, weakref.finalize[Any, Any]] = {}
        self._lock = threading.Lock()
        self._keys = itertools.count()

    def get(self) -> C:
        holder: _Holder[C] | None = getattr(self._local, "holder", None)
        if holder is None:
            holder = _Holder(self._connect())
            key = next(self._keys)
            holder.finalizer = weakref.finalize(holder, self._release, key, holder.conn)
            with self._lock:
                self._open[key] = holder.finalizer
            self._local.holder = holder
        return holder.conn

    def discard(self) -> None:
        """Close the calling thread's connection (a broken one); the next ``get()`` opens anew."""
        holder: _Holder[C] | None = getattr(self._local, "holder", None)
        self._local.holder = None
        if holder is not None and holder.finalizer is not None:
            holder.finalizer()

    def __len__(self) -> int:
        """How many connections are open."""
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        """Close every open connection, also those of threads still running."""
        with self._lock:
            finalizers = list(self._open.values())
        for finalizer in finalizers:
            finalizer()  # once: a finalizer that ran is dead

    def _release(self, key: int, conn: C) -> None:
        with self._lock:
            self._open.pop(key, None)
        with contextlib.suppress(Exception):  # closing a broken connection may fail; it is gone
            self._close_one(conn)

"""A store's reading connections live as long as the threads that use them.

Found by the soak (benchmarks/bench_soak.py): the stores kept every thread's reading connection
in a list until the store closed, so each new anyio worker thread (they end after 10 idle
seconds) left one more open connection behind: on SQLite a file descriptor and up to 2 MiB of
page cache each, on PostgreSQL a server backend each. On both backends.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollwise_server.storage import open_store
from rollwise_server.storage.base import Store
from rollwise_server.storage.sqlite import SQLiteStore
from rollwise_server.testing import new_database, postgresql_under_test


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(new_database(tmp_path))
    yield opened
    opened.close()


def _open_connections(store: Store) -> int:
    """SQLite: this process's descriptors on the database file; PostgreSQL: the server's
    backends named after the store's readers."""
    if isinstance(store, SQLiteStore):
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor, already closed
                count += os.readlink(f"/proc/self/fd/{fd}") == store.path
        return count
    from rollwise_server.storage.postgres import PostgresStore, connect

    assert isinstance(store, PostgresStore)
    base = postgresql_under_test()
    assert base is not None
    with connect(base) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (store.reader_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _settled(store: Store) -> int:
    """The connections open before any reading thread: on SQLite the writer's and the WAL
    checkpointer's (which its own thread opens, a moment after the store), on PostgreSQL no
    reader."""
    expected = 2 if isinstance(store, SQLiteStore) else 0
    assert _eventually(lambda: _open_connections(store) == expected), _open_connections(store)
    return expected


def _read_on_new_threads(store: Store, count: int) -> None:
    for _ in range(count):
        thread = threading.Thread(target=store.environments)
        thread.start()
        thread.join()


def test_a_thread_that_ends_closes_its_reading_connection(store: Store) -> None:
    before = _settled(store)
    _read_on_new_threads(store, 20)
    # SQLite's unix VFS keeps the descriptor of one closed connection for the next one to
    # reuse while other connections of the process hold locks on the file: one, not 20
    spare = 1 if isinstance(store, SQLiteStore) else 0
    assert _eventually(lambda: _open_connections(store) <= before + spare), _open_connections(store)


def test_a_thread_keeps_one_connection_and_close_closes_the_living_ones(store: Store) -> None:
    before = _settled(store)
    started, finish = threading.Event(), threading.Event()

    def reader() -> None:
        for _ in range(50):
            store.environments()
        started.set()
        finish.wait(10)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert started.wait(10)
        assert _eventually(lambda: _open_connections(store) == before + 1)
        store.close()  # while the thread still lives
        assert _eventually(lambda: _open_connections(store) == 0), _open_connections(store)
    finally:
        finish.set()
        thread.join()

"""Each of a replica's PostgreSQL connections says what it is for in ``pg_stat_activity``
(docs/deploy.md): the operator counting connections per replica and per use can tell them apart."""

from __future__ import annotations

import time
from pathlib import Path

from rollwise_server.storage.postgres import PostgresStore, connect
from rollwise_server.testing import DEFAULT_POSTGRESQL, new_database, postgresql_under_test


def test_every_connection_is_named_after_its_use_and_its_replica(tmp_path: Path) -> None:
    base = postgresql_under_test() or DEFAULT_POSTGRESQL
    store = PostgresStore(new_database(tmp_path, base))
    replica = store.reader_name.removeprefix("rollwise-read-")
    try:
        store.environments()  # a read, on this thread's connection
        assert store.probe_write()  # a write, on a pooled connection
        assert store.lead()
        store.watch(lambda env, revision: None)
        expected = {f"rollwise-{use}-{replica}" for use in ("read", "write", "lead", "listen")}
        deadline = time.monotonic() + 10
        while True:
            with connect(base) as conn:
                names = {
                    name
                    for (name,) in conn.execute(
                        "SELECT application_name FROM pg_stat_activity"
                        " WHERE application_name LIKE %s",
                        (f"%-{replica}",),
                    )
                }
            if names >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # the listening thread connects on its own
        assert names == expected
    finally:
        store.close()

"""One replica runs the rollout controller; when it is killed (``kill -9``) another takes over."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from rollwise_server.testing import (
    DEFAULT_POSTGRESQL,
    ServerProcess,
    new_database,
    postgresql_under_test,
)

INTERVAL = 0.3


def gauge(server: ServerProcess, name: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"no {name} in /metrics"
    return float(match.group(1))


def leading(server: ServerProcess) -> bool:
    return gauge(server, "rollwise_controller_leader") == 1.0


def last_round(server: ServerProcess) -> float:
    return gauge(server, "rollwise_controller_last_round_timestamp_seconds")


def the_leader(servers: list[ServerProcess], timeout: float = 20.0) -> ServerProcess:
    """Wait until exactly one of ``servers`` leads; that one."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = [s for s in servers if leading(s)]
        if len(leaders) == 1:
            return leaders[0]
        assert len(leaders) <= 1, "two replicas lead at once"
        assert time.monotonic() < deadline, "no replica took the lead"
        time.sleep(INTERVAL / 3)


def test_the_lead_passes_to_another_replica_when_the_leader_is_killed(tmp_path: Path) -> None:
    db = new_database(tmp_path, postgresql_under_test() or DEFAULT_POSTGRESQL)
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    servers = [
        ServerProcess(tmp_path / name, db=db, ROLLWISE_CONTROLLER_INTERVAL=str(INTERVAL))
        for name in ("a", "b", "c")
    ]
    try:
        for server in servers:
            server.start()
        first = the_leader(servers)
        time.sleep(5 * INTERVAL)  # the others keep asking, and keep being refused
        assert the_leader(servers) is first
        assert last_round(first) > 0
        assert [last_round(s) for s in servers if s is not first] == [0.0, 0.0]  # no rounds
        killed = time.time()
        first.kill()
        rest = [s for s in servers if s is not first]
        second = the_leader(rest)
        time.sleep(5 * INTERVAL)
        assert the_leader(rest) is second
        assert last_round(second) > killed  # it runs the rounds now
        (other,) = [s for s in rest if s is not second]
        assert last_round(other) == 0.0
    finally:
        for server in servers:
            server.stop()


def test_replicas_starting_together_migrate_once_and_one_leads(tmp_path: Path) -> None:
    """Four stores opened at the same moment on a new schema: each migration runs once (the
    advisory lock), every store works, one leads; a leader that shuts down hands the lead on."""
    from rollwise_server.storage.migrations_postgres import MIGRATIONS
    from rollwise_server.storage.postgres import PostgresStore, connect

    url = new_database(tmp_path, postgresql_under_test() or DEFAULT_POSTGRESQL)
    barrier = threading.Barrier(4)

    def open_store(_: int) -> PostgresStore:
        barrier.wait(10)
        return PostgresStore(url)

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(open_store, range(4)))
    try:
        with connect(url) as conn:
            names = [n for (n,) in conn.execute("SELECT name FROM rollwise_migrations")]
        assert sorted(names) == sorted(name for name, _ in MIGRATIONS)  # each once
        leads = [store.lead() for store in stores]
        assert leads.count(True) == 1
        leader = stores[leads.index(True)]
        leader.close()  # a graceful shutdown (SIGTERM) closes its leader connection
        others = [store for store in stores if store is not leader]
        assert [store.lead() for store in others].count(True) == 1  # at the next ask
    finally:
        for store in stores:
            store.close()

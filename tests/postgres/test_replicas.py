"""Several server replicas on one PostgreSQL database (issue 15): each guarantee of one server
holds across them. Always on PostgreSQL (``testing.DEFAULT_POSTGRESQL``, or the database that
``ROLLWISE_TEST_DATABASE`` names), whatever the backend of the rest of the run."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from rollwise_server.testing import (
    DEFAULT_POSTGRESQL,
    LiveServer,
    connect,
    live_server,
    new_database,
    postgresql_under_test,
)
from tests.server.conftest import EU_SEGMENT, example_flag
from tests.server.test_sdk_endpoints import exposure, read_events, sse_lines

SLOW_POLL = {"revision_poll_seconds": 3600.0, "token_cache_seconds": 3600.0}
"""Replicas that would re-read revisions only once an hour: a change that reaches another
replica's streams at once came by ``NOTIFY``; and that would keep a token lookup an hour: a
revocation seen by another replica was told to it, not forgotten by its cache."""


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    db = new_database(tmp_path, postgresql_under_test() or DEFAULT_POSTGRESQL)
    with (
        live_server(tmp_path / "a", db=db, **SLOW_POLL) as a,
        live_server(tmp_path / "b", db=db, **SLOW_POLL) as b,
    ):
        yield a, b


def test_a_change_through_one_replica_reaches_the_streams_of_another(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = replicas
    token = a.token("sdk", env="production")
    with requests.get(
        f"{b.url}/api/v1/sdk/stream",
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=10,
    ) as response:
        lines = sse_lines(response)
        (first,) = read_events(lines, 1)
        assert first["id"] == "0"
        threading.Timer(
            0.2,
            lambda: a.session().post(f"{a.url}/api/v1/envs/production/segments", json=EU_SEGMENT),
        ).start()
        (second,) = read_events(lines, 1, timeout=10)  # the poll would take an hour
    assert second["id"] == "1"
    assert "eu" in json.loads(second["data"])["document"]["segments"]
    etag = requests.get(
        f"{b.url}/api/v1/sdk/rules", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).headers["ETag"]
    assert (
        etag
        == requests.get(
            f"{a.url}/api/v1/sdk/rules", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).headers["ETag"]
    )


def test_if_match_holds_across_replicas(replicas: tuple[LiveServer, LiveServer]) -> None:
    """Twenty edits of one flag at version 1, half through each replica: exactly one wins."""
    a, b = replicas
    a.session().post(f"{a.url}/api/v1/envs/staging/segments", json=EU_SEGMENT).raise_for_status()
    a.session().post(f"{a.url}/api/v1/envs/staging/flags", json=example_flag()).raise_for_status()

    def edit(index: int) -> int:
        server = (a, b)[index % 2]
        response = server.session().put(
            f"{server.url}/api/v1/envs/staging/flags/fraud-model",
            json={**example_flag(), "description": f"edit {index}"},
            headers={"If-Match": '"1"'},
            timeout=30,
        )
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(edit, range(20)))
    assert sorted(codes) == [200] + [409] * 19


def test_versions_revisions_and_audit_stay_gap_free_across_replicas(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    """Forty writes at once through two replicas: the environment's revision moves by one for
    each, each flag's versions are 1, 2, ... and every write has its audit entry."""
    a, b = replicas
    keys = [f"flag-{i}" for i in range(4)]
    a.session().post(f"{a.url}/api/v1/envs/staging/segments", json=EU_SEGMENT).raise_for_status()
    for key in keys:
        a.session().post(
            f"{a.url}/api/v1/envs/staging/flags", json={**example_flag(), "key": key}
        ).raise_for_status()
    before = a.session().get(f"{a.url}/api/v1/envs/staging").json()["revision"]

    def write(index: int) -> None:
        server = (a, b)[index % 2]
        key = keys[index % len(keys)]
        for _ in range(20):  # If-Match conflicts are expected: read again, retry
            url = f"{server.url}/api/v1/envs/staging/flags/{key}"
            version = server.session().get(url).json()["version"]
            response = server.session().put(
                url,
                json={**example_flag(), "key": key, "description": f"write {index}"},
                headers={"If-Match": f'"{version}"'},
            )
            if response.status_code == 200:
                return
            assert response.status_code == 409, response.text
        raise AssertionError("no write went through in 20 tries")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(40)))
    after = b.session().get(f"{b.url}/api/v1/envs/staging").json()["revision"]
    assert after - before == 40
    rows = connect(a.db)
    for key in keys:
        versions = [
            v
            for (v,) in rows.execute(
                "SELECT version FROM resource_versions WHERE env = 'staging' AND key = ?"
                " ORDER BY version",
                (key,),
            )
        ]
        assert versions == list(range(1, 12))
    (updates,) = rows.execute(
        "SELECT count(*) FROM audit WHERE action = 'flag.update' AND env = 'staging'"
    ).fetchone()
    assert updates == 40


def test_an_event_sent_through_both_replicas_is_stored_once(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = replicas
    token = a.token("sdk", env="production")
    events = [exposure(unit=f"u{i}", id=str(uuid.uuid4())) for i in range(500)]
    results: list[Any] = []

    def send(server: LiveServer) -> None:
        response = requests.post(
            f"{server.url}/api/v1/sdk/exposures",
            json={"events": events},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        results.append(response.json())

    threads = [threading.Thread(target=send, args=(s,)) for s in (a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["accepted"] for r in results) == 500
    assert sum(r["duplicates"] for r in results) == 1500
    assert connect(a.db).execute(
        "SELECT count(*), count(DISTINCT id) FROM exposures"
    ).fetchone() == (
        500,
        500,
    )


def test_a_token_revoked_through_one_replica_is_refused_by_the_other_within_5_s(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = replicas
    token = a.token("viewer", name="to-revoke")
    url = f"{b.url}/api/v1/envs"
    assert b.session(token).get(url).status_code == 200  # now in B's token cache
    (token_id,) = [
        t["id"] for t in a.session().get(f"{a.url}/api/v1/tokens").json()["tokens"]
        if t["name"] == "to-revoke"
    ]  # fmt: skip
    a.session().delete(f"{a.url}/api/v1/tokens/{token_id}").raise_for_status()
    revoked = time.monotonic()
    while b.session(token).get(url).status_code == 200:
        assert time.monotonic() - revoked < 5.0, "replica B still accepts a revoked token"
        time.sleep(0.05)


def test_a_console_session_made_on_one_replica_works_and_ends_on_the_other(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    from tests.server.console_client import ConsoleClient

    a, b = replicas
    console = ConsoleClient(a, a.admin_token)  # signed in through A
    console.server = b  # the load balancer sends the next requests to B
    page = console.get("/ui/audit", allow_redirects=False)
    assert page.status_code == 200
    assert console.post("/ui/sign-out", {}).status_code == 303
    console.server = a
    assert console.get("/ui/audit", allow_redirects=False).status_code in (302, 303)


def test_a_replica_whose_listening_connection_drops_catches_up(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    """B's ``LISTEN`` connection is cut (as a database restart or a network cut would): B
    reconnects and republishes, so a change made meanwhile through A still reaches B's streams
    (the poll, at an hour, cannot be what brings it)."""
    a, b = replicas
    token = a.token("sdk", env="production")
    rows = connect(a.db)
    with requests.get(
        f"{b.url}/api/v1/sdk/stream",
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=10,
    ) as response:
        lines = sse_lines(response)
        (first,) = read_events(lines, 1)
        (cut,) = rows.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name LIKE 'rollwise-listen-%' AND pid <> pg_backend_pid()"
        ).fetchone()
        assert cut >= 2  # both replicas' listeners
        a.session().post(f"{a.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
        (second,) = read_events(lines, 1, timeout=10)
    assert (first["id"], second["id"]) == ("0", "1")

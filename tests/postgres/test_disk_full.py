"""A full disk under PostgreSQL, for real: the server's tables in a tablespace on a small tmpfs
that the test fills up. A write that fails for lack of space (SQLSTATE 53100) is 503
``storage_full`` with ``Retry-After``, ``/readyz`` is 503 until a write commits again, and the
refused batch is stored once there is room."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from rollwise_server.storage.postgres import connect as connect_postgresql
from rollwise_server.testing import (
    DEFAULT_POSTGRESQL,
    LiveServer,
    connect,
    live_server,
    postgresql_under_test,
)
from tests.sdk.test_online import wait_for
from tests.server.test_disk_full import fill_up
from tests.server.test_sdk_endpoints import exposure

SIZE = "16m"


@pytest.fixture
def full_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    """A server whose tables live on a 16 MiB tmpfs (``mount`` needs root, as on CI)."""
    base = postgresql_under_test() or DEFAULT_POSTGRESQL
    mount = Path(tempfile.mkdtemp(prefix="rw-pg-disk-", dir="/tmp"))
    command = ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(mount)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        pytest.skip(f"a small filesystem is needed (mount -t tmpfs): {result.stderr.strip()}")
    name = f"rw_full_{uuid.uuid4().hex[:10]}"
    try:
        shutil.chown(mount, "postgres", "postgres")
        with connect_postgresql(base) as admin:
            admin.execute(f"CREATE TABLESPACE {name} LOCATION '{mount}'")
            admin.execute(f"CREATE SCHEMA {name}")
        options = quote(f"-csearch_path={name} -cdefault_tablespace={name}")
        url = f"{base}{'&' if '?' in base else '?'}options={options}"
        with live_server(tmp_path, db=url) as server:
            yield server, mount
    finally:
        with connect_postgresql(base) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", "-l", str(mount)], check=True)  # noqa: S603, S607
        mount.rmdir()


def test_a_full_tablespace_is_503_storage_full_until_there_is_room(
    full_server: tuple[LiveServer, Path],
) -> None:
    server, mount = full_server
    sdk = server.session(server.token("sdk", env="production"))
    url = f"{server.url}/api/v1/sdk/exposures"
    assert sdk.post(url, json={"events": [exposure()]}).status_code == 200
    filler = fill_up(mount)
    refused = None
    for _ in range(50):  # until a batch needs a new page
        batch = [exposure(id=str(uuid.uuid4()), unit=f"u{i}") for i in range(1000)]
        response = sdk.post(url, json={"events": batch}, timeout=30)
        if response.status_code == 503:
            refused = batch
            break
        assert response.status_code == 200, response.text
    assert refused is not None, "the tablespace never filled up"
    assert response.json()["code"] == "storage_full"
    assert int(response.headers["Retry-After"]) > 0
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert "rollwise_storage_writable 0.0" in requests.get(f"{server.url}/metrics", timeout=10).text
    rows = connect(server.db)
    (stored,) = rows.execute("SELECT count(*) FROM exposures").fetchone()
    assert stored % 1000 == 1  # whole batches only: the refused one left nothing behind

    filler.unlink()
    again = sdk.post(url, json={"events": refused}, timeout=30)  # the SDK sends it again
    assert again.status_code == 200
    assert again.json()["accepted"] == 1000
    assert wait_for(  # the probe (at most one a second) finds room
        lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, 10
    )
    assert rows.execute("SELECT count(*) FROM exposures").fetchone() == (stored + 1000,)

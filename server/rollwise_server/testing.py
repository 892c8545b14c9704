"""Run a real flag server for tests and benchmarks: uvicorn on 127.0.0.1, a free port.

``live_server(tmp_path)`` runs it in a thread of this process (fast, shares the interpreter);
``ServerProcess`` runs ``rollwise serve`` as a child process that can be killed with SIGKILL.
Both bootstrap an admin token directly in the database and expose ``url`` and ``admin_token``.

The database is a SQLite file in the given directory, or, when ``ROLLWISE_TEST_DATABASE`` is a
``postgresql://`` URL, a new schema of that database for each server (``new_database``),
dropped when the process exits. ``connect(db)`` opens either for a test that reads rows.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import requests
import uvicorn

from rollwise_server.app import create_app
from rollwise_server.auth import hash_secret, new_secret
from rollwise_server.settings import Settings
from rollwise_server.storage import open_store

__all__ = [
    "DEFAULT_POSTGRESQL",
    "LiveServer",
    "ServerProcess",
    "bootstrap_token",
    "connect",
    "free_port",
    "live_server",
    "new_database",
    "postgresql_under_test",
]

DATABASE_VARIABLE = "ROLLWISE_TEST_DATABASE"
_schemas: list[str] = []
_by_directory: dict[tuple[str, str], str] = {}


def postgresql_under_test() -> str | None:
    """The PostgreSQL URL the tests run on (``ROLLWISE_TEST_DATABASE``), or ``None``: SQLite."""
    url = os.environ.get(DATABASE_VARIABLE, "")
    return url if url.startswith(("postgresql://", "postgres://")) else None


DEFAULT_POSTGRESQL = "postgresql://postgres@127.0.0.1:5432/test"
"""The PostgreSQL of the test machines (trust authentication, database ``test``)."""


def new_database(directory: Path, postgresql: str | None = None) -> str:
    """The database of the servers run in ``directory``: ``directory/rollwise.db``, or a
    schema of the PostgreSQL database at ``postgresql`` (by default the one
    ``ROLLWISE_TEST_DATABASE`` names, if any), as a URL that selects that schema. Like the
    file, the schema is made by the first call for a directory and found again by the next
    (a server restarted in the same directory opens the same database)."""
    base = postgresql or postgresql_under_test()
    if base is None:
        return str(directory / "rollwise.db")
    key = (str(directory.resolve()), base)
    if key in _by_directory:
        return _by_directory[key]
    from rollwise_server.storage.postgres import connect as connect_postgresql

    schema = f"rw_test_{uuid.uuid4().hex[:16]}"
    with connect_postgresql(base) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    if not _schemas:
        atexit.register(_drop_schemas, base)
    _schemas.append(schema)
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    _by_directory[key] = url
    return url


def _drop_schemas(base: str) -> None:
    from rollwise_server.storage.postgres import connect as connect_postgresql

    with connect_postgresql(base) as conn:
        for schema in _schemas:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    _schemas.clear()


@attrs.frozen
class Result:
    """What a statement gave: its rows (all fetched) and how many rows it changed."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


class Rows:
    """A test database, SQLite or PostgreSQL, whose ``execute`` takes ``?`` placeholders and
    runs each statement on a connection of its own (committed, closed: nothing left open)."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.postgresql = db.startswith(("postgresql://", "postgres://"))

    def execute(self, sql: str, params: Any = ()) -> Result:
        if self.postgresql:
            from rollwise_server.storage.postgres import connect as connect_postgresql
            from rollwise_server.storage.postgres import translate

            with connect_postgresql(self.db) as remote:
                cursor = remote.execute(translate(sql), params)
                rows = cursor.fetchall() if cursor.description else []
                return Result([tuple(r) for r in rows], cursor.rowcount)
        local = sqlite3.connect(self.db, isolation_level=None)
        try:
            found = local.execute(sql, params)
            return Result(found.fetchall(), found.rowcount)
        finally:
            local.close()

    def dump(self) -> str:
        """Every row of every table, as text (to look for what must not be stored)."""
        if not self.postgresql:
            conn = sqlite3.connect(self.db)
            try:
                return "\n".join(conn.iterdump())
            finally:
                conn.close()
        tables = self.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        return "\n".join(
            str(row[0])
            for (table,) in tables
            for row in self.execute(f"SELECT t::text FROM {table} AS t")  # noqa: S608
        )

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def connect(db: str) -> Rows:
    """A connection (autocommit) to a server's database, SQLite or PostgreSQL, whose
    ``execute`` takes ``?`` placeholders: for tests that read or change rows directly."""
    return Rows(db)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bootstrap_token(
    db: str, role: str = "admin", name: str = "admin", env: str | None = None
) -> str:
    """Create a token directly in the database (as ``rollwise tokens create --db`` does)."""
    store = open_store(db)
    try:
        secret = new_secret()
        store.create_token(
            name=name, role=role, env=env, secret_hash=hash_secret(secret), actor="test"
        )
    finally:
        store.close()
    return secret


@attrs.define
class LiveServer:
    url: str
    db: str
    admin_token: str
    settings: Settings

    def session(self, token: str | None = None) -> requests.Session:
        """A requests session that sends ``token`` (the admin's by default)."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token or self.admin_token}"
        return session

    def token(
        self,
        role: str,
        name: str | None = None,
        env: str | None = None,
        *,
        owner: str | None = None,
        envs: list[str] | None = None,
        expires_at: str | None = None,
    ) -> str:
        """Create a token through the API and return its secret (its owner is ``owner``, or
        its name: each test token is another person unless told otherwise)."""
        name = name or f"{role}-{time.monotonic_ns()}"
        body = {"role": role, "name": name, "env": env, "owner": owner or name, "envs": envs,
                "expires_at": expires_at}  # fmt: skip
        response = self.session().post(f"{self.url}/api/v1/tokens", json=body, timeout=10)
        response.raise_for_status()
        return str(response.json()["token"])


CENTURY = 36_500 * 86_400.0


@contextlib.contextmanager
def live_server(
    directory: Path, *, db: str | None = None, **settings: object
) -> Iterator[LiveServer]:
    """A server in a background thread of this process, stopped on exit.

    Events may carry any time (``event_max_age`` and ``event_max_future`` of 100 years unless
    given): tests replay fixed, historical timestamps so that their results never depend on the
    day they run. The window itself is tested with the defaults, given explicitly. ``db``: a
    database to share with another server (a replica); a new one by default."""
    settings = {"event_max_age": CENTURY, "event_max_future": CENTURY, **settings}
    db = db or new_database(directory)
    admin = bootstrap_token(db)
    config = Settings(db=db, **settings)  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="rollwise-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", db, admin, config)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class ServerProcess:
    """``python -m rollwise_server serve`` in a child process, restartable on the same port."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        log_level: str = "warning",
        *,
        db: str | None = None,
        **env: str,
    ) -> None:
        self.db = db or new_database(directory)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = bootstrap_token(self.db)
        wide = {"ROLLWISE_EVENT_MAX_AGE": "36500d", "ROLLWISE_EVENT_MAX_FUTURE": "36500d"}
        self.env = {**wide, **os.environ, **env}  # any event time, as ``live_server``
        self.log = directory / "server.log"
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        command = [sys.executable, "-m", "rollwise_server", "serve", "--port", str(self.port)]
        command += ["--db", self.db, "--log-level", self.log_level]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=self.env)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Run a real flag server for tests and benchmarks: uvicorn on 127.0.0.1, a free port.

``live_server(tmp_path)`` runs it in a thread of this process (fast, shares the interpreter);
``ServerProcess`` runs ``rollwise serve`` as a child process that can be killed with SIGKILL.
Both bootstrap an admin token directly in the database and expose ``url`` and ``admin_token``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import requests
import uvicorn

from rollwise_server.app import create_app
from rollwise_server.auth import hash_secret, new_secret
from rollwise_server.settings import Settings
from rollwise_server.storage import open_store

__all__ = ["LiveServer", "ServerProcess", "bootstrap_token", "free_port", "live_server"]


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
def live_server(directory: Path, **settings: object) -> Iterator[LiveServer]:
    """A server in a background thread of this process, stopped on exit.

    Events may carry any time (``event_max_age`` and ``event_max_future`` of 100 years unless
    given): tests replay fixed, historical timestamps so that their results never depend on the
    day they run. The window itself is tested with the defaults, given explicitly."""
    settings = {"event_max_age": CENTURY, "event_max_future": CENTURY, **settings}
    db = str(directory / "rollwise.db")
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
        self, directory: Path, port: int | None = None, log_level: str = "warning", **env: str
    ) -> None:
        self.db = str(directory / "rollwise.db")
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

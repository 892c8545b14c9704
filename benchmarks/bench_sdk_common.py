"""Helpers shared by the online-SDK benchmarks (``bench_sdk_*.py``); not a benchmark itself.

Each benchmark runs the real flag server as a child process
(``rollwise_server.testing.ServerProcess``: ``python -m rollwise_server serve`` on a free
127.0.0.1 port, a fresh SQLite database in a temporary directory) and talks to it only through
its HTTP API, as an application would. Nothing here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

import rollwise
from rollwise_server.testing import ServerProcess

__all__ = [
    "ENV",
    "TIMEOUT",
    "admin_session",
    "api_flag",
    "db_counts",
    "machine_meta",
    "percentiles",
    "pid_cpu_seconds",
    "rss_kib",
    "running_server",
    "sdk_token",
    "thread_cpu_seconds",
]

ENV = "production"
TIMEOUT = 30


@contextlib.contextmanager
def running_server(**env: str) -> Iterator[tuple[ServerProcess, Path]]:
    """A fresh server process on a fresh database, and a scratch directory; removed on exit."""
    with tempfile.TemporaryDirectory(prefix="rollwise-sdk-bench-") as tmp:
        server = ServerProcess(Path(tmp), **env)
        server.start()
        try:
            yield server, Path(tmp)
        finally:
            server.stop()


def admin_session(server: ServerProcess) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.admin_token}"
    return session


def sdk_token(server: ServerProcess, env: str = ENV) -> str:
    """A new ``sdk`` token for ``env``, created through the admin API."""
    response = admin_session(server).post(
        f"{server.url}/api/v1/tokens",
        json={"role": "sdk", "name": f"bench-sdk-{time.monotonic_ns()}", "env": env},
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return str(response.json()["token"])


def api_flag(key: str, flag: dict[str, Any]) -> dict[str, Any]:
    """A flag of a rules document in the admin API's form: its key, no version."""
    body = {k: v for k, v in flag.items() if k != "version"}
    return {"key": key, **body}


def db_counts(db: str) -> dict[str, int]:
    """Rows in the server's ``exposures`` and ``outcomes`` tables (``id`` is their primary key,
    so a row is one event id), and the distinct (flag, unit) pairs among the exposures."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        exposures, pairs = connection.execute(
            "SELECT count(*), count(DISTINCT flag || char(0) || unit) FROM exposures"
        ).fetchone()
        (outcomes,) = connection.execute("SELECT count(*) FROM outcomes").fetchone()
        return {"exposures": exposures, "exposure_units": pairs, "outcomes": outcomes}
    finally:
        connection.close()


def percentiles(samples: Sequence[float], points: Sequence[float] = (50, 90, 99)) -> dict[str, Any]:
    """Nearest-rank percentiles (``p50``...), ``min``, ``max``, ``mean`` and ``n``."""
    ordered = sorted(samples)
    out: dict[str, Any] = {"n": len(ordered)}
    if not ordered:
        return out
    for point in points:
        rank = max(0, min(len(ordered) - 1, math.ceil(point / 100 * len(ordered)) - 1))
        out[f"p{point:g}"] = ordered[rank]
    out["min"] = ordered[0]
    out["max"] = ordered[-1]
    out["mean"] = sum(ordered) / len(ordered)
    return out


def rss_kib() -> dict[str, int]:
    """This process's resident set now (``VmRSS``) and at its peak (``VmHWM``), in KiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process, from ``/proc``."""
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def pid_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of another process, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_meta() -> dict[str, Any]:
    """What the figures depend on: interpreter, CPUs, load."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "rollwise": rollwise.__version__,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "sdk_uncommitted": _git(
            "status", "--porcelain", "--", ":/sdk/rollwise", ":(top,exclude)sdk/rollwise/analysis"
        ).splitlines(),
    }


def _git(*args: str) -> str:
    """The output of a read-only git command in this repository ("" if git is unavailable)."""
    try:
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()

"""Helpers shared by the flag-server benchmarks (``bench_server_*.py``); not a benchmark itself.

Each benchmark runs the real server as a child process (``rollwise_server.testing.ServerProcess``:
``python -m rollwise_server serve`` on a free 127.0.0.1 port, a fresh SQLite database in a
temporary directory), so the load generator is always another process. Nothing here talks to
any address but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import math
import os
import platform
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from rollwise_server.testing import ServerProcess

__all__ = [
    "CpuMeter",
    "MachineMeter",
    "bench_flag",
    "machine_meta",
    "metric_value",
    "percentiles",
    "raise_nofile",
    "running_server",
    "sdk_token",
    "seed_flags",
    "server_env",
    "wait_for_quiet",
]

ENV = "production"
TIMEOUT = 30


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def running_server(db_dir: str | None = None, **env: str) -> Iterator[ServerProcess]:
    """A fresh server process on a fresh database, stopped (and its files removed) on exit,
    also when this process is sent SIGTERM. ``db_dir``: where the database's temporary
    directory goes (default: the system's temporary directory; ``/dev/shm`` takes the disk out).
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="rollwise-bench-", dir=db_dir) as tmp:
        server = ServerProcess(Path(tmp), **env)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def bulk_load(path: Path, cache_kib: int) -> Iterator[tuple[sqlite3.Connection, dict[str, float]]]:
    """A connection to load generated events into the server's tables fast (no journal, no
    sync, the event tables' indexes dropped), and the timings; on leaving, the indexes are
    re-created from the migration's own definitions (``create_indexes_s``) and WAL restored."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{cache_kib}"):
        conn.execute(f"PRAGMA {pragma}")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('exposures', 'outcomes')"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    timings: dict[str, float] = {}
    try:
        yield conn, timings
        started = time.perf_counter()
        for _, sql in indexes:
            conn.execute(sql)
        timings["create_indexes_s"] = round(time.perf_counter() - started, 1)
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def add_run_arguments(parser: argparse.ArgumentParser, before: str) -> None:
    """The options every server benchmark has: ``--quiet-wait`` (``before``: when it waits,
    e.g. "each mode"), ``--server-env``, ``--json`` and ``--out``."""
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help=f"before {before}, wait up to this many seconds for an idle machine (0: don't)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for the server process, e.g. ROLLWISE_TOKEN_CACHE_SECONDS=60 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")


def server_env(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` arguments as a mapping (settings for the server process)."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--server-env wants NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


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


def bench_flag(key: str, description: str = "") -> dict[str, Any]:
    """A realistic flag in API form: two variants with payloads, a QA rule and a 10% split."""
    return {
        "key": key,
        "enabled": True,
        "salt": key,
        "description": description or f"benchmark flag {key}",
        "variants": {
            "v1": {"payload": {"model": f"{key}-2025-06"}},
            "v2": {"payload": {"model": f"{key}-2025-11"}},
        },
        "off_variant": "v1",
        "default_variant": "v1",
        "cohort_attributes": ["country", "amount"],
        "rules": [
            {
                "id": "qa-team",
                "conditions": [{"attribute": "user_id", "operator": "in", "values": ["u1", "u2"]}],
                "serve": {"variant": "v2"},
            },
            {
                "id": "eu-small",
                "conditions": [
                    {"attribute": "country", "operator": "in", "values": ["DE", "FR", "NL"]},
                    {"attribute": "amount", "operator": "lt", "value": 500},
                ],
                "serve": {
                    "split": [{"variant": "v2", "weight": 1000}, {"variant": "v1", "weight": 9000}],
                    "bucket_by": "user_id",
                },
            },
        ],
    }


def seed_flags(server: ServerProcess, count: int, env: str = ENV) -> int:
    """Create ``count`` flags ``bench-0``... in ``env``; the environment's revision after it."""
    session = admin_session(server)
    for i in range(count):
        response = session.post(
            f"{server.url}/api/v1/envs/{env}/flags", json=bench_flag(f"bench-{i}"), timeout=TIMEOUT
        )
        if response.status_code != 201:
            raise RuntimeError(f"creating flag bench-{i}: {response.status_code} {response.text}")
    return count


def percentiles(samples: Sequence[float], points: Sequence[float] = (50, 90, 99)) -> dict[str, Any]:
    """Nearest-rank percentiles (``p50``...), ``max`` and ``n`` of ``samples``."""
    ordered = sorted(samples)
    out: dict[str, Any] = {"n": len(ordered)}
    if not ordered:
        return out
    for point in points:
        rank = max(0, min(len(ordered) - 1, math.ceil(point / 100 * len(ordered)) - 1))
        out[f"p{point:g}"] = ordered[rank]
    out["max"] = ordered[-1]
    out["min"] = ordered[0]
    return out


def metric_value(server: ServerProcess, name: str, **labels: str) -> float:
    """The value of one sample of the server's ``/metrics`` (0 if absent)."""
    text = requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted``; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class CpuMeter:
    """CPU seconds (user + system) used by a process between ``start()`` and ``stop()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")
        self._cpu0 = 0.0
        self._t0 = 0.0
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0

    def _cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    def start(self) -> CpuMeter:
        self._cpu0, self._t0 = self._cpu(), time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        self.cpu_seconds = self._cpu() - self._cpu0
        self.wall_seconds = time.perf_counter() - self._t0
        return {
            "cpu_seconds": round(self.cpu_seconds, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "cores_busy": round(self.cpu_seconds / max(self.wall_seconds, 1e-9), 2),
        }


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - fields[3] - fields[4], total


class MachineMeter:
    """Cores busy on the whole machine (every process, ours included) between start and stop.

    Other work on this shared 2-core machine (another engineer's test run) slows the server
    and the generator alike; each run records it, so a disturbed run can be recognised.
    """

    def __init__(self) -> None:
        self._busy0 = self._total0 = 0
        self._cpus = os.cpu_count() or 1

    def start(self) -> MachineMeter:
        self._busy0, self._total0 = _machine_jiffies()
        return self

    def stop(self) -> float:
        busy, total = _machine_jiffies()
        return round((busy - self._busy0) / max(1, total - self._total0) * self._cpus, 2)


def wait_for_quiet(threshold: float = 0.3, window: float = 3.0, max_wait: float = 600.0) -> float:
    """Wait (at most ``max_wait`` s) until the machine is less than ``threshold`` cores busy over
    ``window`` seconds; the last measurement (a caller records it: a run may start unquiet)."""
    deadline = time.monotonic() + max_wait
    while True:
        meter = MachineMeter().start()
        time.sleep(window)
        busy = meter.stop()
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_meta() -> dict[str, Any]:
    """What the figures depend on: interpreter, CPUs, load, and the server's HTTP stack."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "starlette": _version("starlette"),
        "sse_starlette": _version("sse-starlette"),
        "sqlite": __import__("sqlite3").sqlite_version,
        "server_code": server_code(),
    }


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(repo), *args],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def server_code() -> dict[str, Any]:
    """Which server code is measured: its path, and the git commit it comes from.

    To measure a fixed commit while the work tree changes (other work in progress can break
    imports or move the figures), export it, note its commit, and put it first on the path:
    ``git archive HEAD sdk server | tar -x -C /tmp/snap && git rev-parse HEAD > /tmp/snap/COMMIT``
    then ``PYTHONPATH=/tmp/snap/sdk:/tmp/snap/server`` (the server child process inherits it).
    """
    import rollwise_server

    path = Path(rollwise_server.__file__).resolve().parent
    repo = Path(__file__).resolve().parents[1]
    info: dict[str, Any] = {"path": str(path)}
    if path.is_relative_to(repo):
        info["commit"] = _git(repo, "rev-parse", "HEAD")
        info["work_tree_changes"] = bool(_git(repo, "status", "--porcelain", "--", "server", "sdk"))
    else:
        marker = path.parents[1] / "COMMIT"
        info["commit"] = marker.read_text().strip() if marker.exists() else None
        info["note"] = "an exported copy (see PYTHONPATH), not the work tree"
        info["pythonpath"] = os.environ.get("PYTHONPATH", "")
    return info

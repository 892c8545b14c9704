"""Benchmark of ``GET /api/v1/sdk/rules`` answered ``304 Not Modified`` (issue 3).

What it measures: an SDK polling its rules with ``If-None-Match: "<revision>"`` and an sdk
token, answered from the server's fast path (in-memory revision, cached token lookup, no
database access). The server is the real one (``python -m rollwise_server serve``, uvicorn with
the defaults of ``rollwise serve``, so uvloop/httptools when installed) as a child process on a
fresh SQLite database holding ``--flags`` flags. The load generator is another process:

- ``wrk`` (preferred; Debian: ``apt-get install -y wrk``), one thread, a Lua script setting the
  ``Authorization`` and ``If-None-Match`` headers, keep-alive connections, ``--latency``;
- else a Python generator: ``--processes`` processes of asyncio coroutines, each a keep-alive
  connection on a raw socket sending the same request in a closed loop.

Both are closed-loop (each connection sends its next request when the answer arrives), so the
latency at a given connection count is about connections / throughput (Little's law), and the
tail does not include requests that a stalled server would have delayed (coordinated omission).
The sweep over connection counts shows where throughput saturates and what that costs in
latency. Target (issue 3): >= 3,000 requests/s with p99 < 20 ms at the same operating point.

Checks: before the run, the ETag is the revision, a matching ``If-None-Match`` is 304 and a
stale one is 200; after each run, the server's own counter of 304 answers on the route grew by
the number of answers the generator counted (within the connections still in flight), and no
other status was answered.

Run: ``.venv/bin/python benchmarks/bench_server_rules.py [--duration 10]
[--connections 1,8,16,32,64,128] [--generator auto|wrk|python] [--json] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from bench_server_common import (
    CpuMeter,
    MachineMeter,
    add_run_arguments,
    machine_meta,
    metric_value,
    percentiles,
    running_server,
    sdk_token,
    seed_flags,
    server_env,
    wait_for_quiet,
)

RULES = "/api/v1/sdk/rules"
TARGET_RPS = 3_000
TARGET_P99_MS = 20.0
WRK_INSTALL = "wrk is not installed: `apt-get update && apt-get install -y wrk` (Debian/Ubuntu)"

ERROR_KEYS = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
WRK_SCRIPT = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["If-None-Match"] = '{etag}'

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "mean_us": %.1f, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def run_wrk(url: str, token: str, etag: str, connections: int, duration: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rollwise-wrk-") as tmp:
        script = Path(tmp) / "rules.lua"
        script.write_text(WRK_SCRIPT.format(token=token, etag=etag))
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", "--latency",
            "-s", str(script), url + RULES,
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(  # noqa: S603 - fixed argv, loopback URL
            command, capture_output=True, text=True, timeout=duration + 60, check=False
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT "))
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    seconds = raw["duration_us"] / 1e6
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "generator": "wrk -t1",
        "connections": connections,
        "answers": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "errors": sum(raw[k] for k in ERROR_KEYS),
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "generator_cores_busy": round(cpu / seconds, 2),
    }


# --- the Python generator (used when wrk is missing, or with --generator python) ---


async def _connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float]
) -> tuple[int, int]:
    """One keep-alive connection in a closed loop until ``deadline``: (304 answers, others)."""
    reader, writer = await asyncio.open_connection(host, port)
    ok = other = 0
    clock = time.perf_counter
    try:
        while clock() < deadline:
            start = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(clock() - start)
            if head[9:12] == b"304":
                ok += 1
            else:
                other += 1
    finally:
        writer.close()
    return ok, other


def _python_worker(
    host: str, port: int, request: bytes, connections: int, start_at: float, duration: float
) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        deadline = time.perf_counter() + duration
        counts = await asyncio.gather(
            *(_connection(host, port, request, deadline, latencies) for _ in range(connections))
        )
        return {
            "ok": sum(c[0] for c in counts),
            "other": sum(c[1] for c in counts),
            "latencies": latencies,
            "cpu": sum(os.times()[:2]),
        }

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def run_python(
    url: str, token: str, etag: str, connections: int, duration: float, processes: int
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {RULES} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"If-None-Match: {etag}\r\n\r\n"
    ).encode()
    processes = max(1, min(processes, connections))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    start_at = time.perf_counter() + 1.0
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.starmap(
            _python_worker, [(host, port, request, n, start_at, duration) for n in shares]
        )
    latencies = [x for r in results for x in r["latencies"]]
    answers = sum(r["ok"] + r["other"] for r in results)
    spread = percentiles(latencies, (50, 90, 99, 99.9))
    return {
        "generator": f"python asyncio x{processes} processes",
        "connections": connections,
        "answers": answers,
        "seconds": duration,
        "rps": round(answers / duration, 1),
        "errors": sum(r["other"] for r in results),
        "mean_ms": round(sum(latencies) / max(1, len(latencies)) * 1000, 3),
        "p50_ms": round(spread["p50"] * 1000, 3),
        "p90_ms": round(spread["p90"] * 1000, 3),
        "p99_ms": round(spread["p99"] * 1000, 3),
        "p999_ms": round(spread["p99.9"] * 1000, 3),
        "max_ms": round(spread["max"] * 1000, 3),
        "generator_cores_busy": round(sum(r["cpu"] for r in results) / duration, 2),
    }


def settled_count(server: Any) -> float:
    """The server's count of 304 answers on the route, once the previous run's last requests
    (still in flight when its generator stopped) have been counted: unchanged for 0.3 s."""
    count = metric_value(server, "rollwise_http_requests_total", route=RULES, status="304")
    for _ in range(50):
        time.sleep(0.3)
        again = metric_value(server, "rollwise_http_requests_total", route=RULES, status="304")
        if again == count:
            break
        count = again
    return count


def check_fast_path(url: str, token: str) -> str:
    """The current ETag, after checking 200 without it, 304 with it, 200 with a stale one."""
    auth = {"Authorization": f"Bearer {token}"}
    full = requests.get(url + RULES, headers=auth, timeout=10)
    etag = full.headers["ETag"]
    if full.status_code != 200 or etag != f'"{full.json()["revision"]}"':
        raise SystemExit(f"unexpected first answer: {full.status_code} ETag {etag}")
    same = requests.get(url + RULES, headers={**auth, "If-None-Match": etag}, timeout=10)
    stale = requests.get(url + RULES, headers={**auth, "If-None-Match": '"0"'}, timeout=10)
    if same.status_code != 304 or stale.status_code != 200:
        raise SystemExit(f"ETag check failed: {same.status_code} / {stale.status_code}")
    return etag


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", default="1,8,16,32,64,128", help="comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=1, help="runs per connection count")
    parser.add_argument("--flags", type=int, default=20, help="flags in the rules document")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--processes", type=int, default=2, help="python generator processes")
    add_run_arguments(parser, "each run")
    args = parser.parse_args()
    if not 0 < args.duration <= 300 or not 0 < args.repeats <= 10:
        parser.error("--duration must be in (0, 300] and --repeats in 1..10")

    generator = args.generator
    if generator != "python" and shutil.which("wrk") is None:
        if generator == "wrk":
            raise SystemExit(WRK_INSTALL)
        print(f"{WRK_INSTALL}; falling back to the Python generator", file=sys.stderr)
        generator = "python"
    elif generator == "auto":
        generator = "wrk"

    meta = machine_meta()
    meta["server_env"] = server_env(args.server_env)
    rows: list[dict[str, Any]] = []
    with running_server(**server_env(args.server_env)) as server:
        token = sdk_token(server)
        seed_flags(server, args.flags)
        etag = check_fast_path(server.url, token)
        meta["rules_revision"] = etag
        assert server.process is not None  # noqa: S101 - started by running_server
        for connections in [int(c) for c in args.connections.split(",")]:
            for _ in range(args.repeats):
                counted = settled_count(server)
                quiet = wait_for_quiet(max_wait=args.quiet_wait) if args.quiet_wait else None
                cpu, machine = CpuMeter(server.process.pid).start(), MachineMeter().start()
                if generator == "wrk":
                    row = run_wrk(server.url, token, etag, connections, args.duration)
                else:
                    row = run_python(
                        server.url, token, etag, connections, args.duration, args.processes
                    )
                row["server"] = cpu.stop()
                row["machine_cores_busy"] = machine.stop()
                row["machine_cores_busy_before"] = quiet
                row["server"]["cores_busy"] = round(cpu.cpu_seconds / row["seconds"], 2)
                served = settled_count(server) - counted
                row["server_304s"] = int(served)
                # CPU time per answer moves less than the rate when other work shares the CPUs
                row["server_cpu_us_per_answer"] = round(
                    cpu.cpu_seconds * 1e6 / max(1, row["answers"]), 1
                )
                row["checked"] = (
                    row["errors"] == 0 and row["answers"] <= served <= row["answers"] + connections
                )
                row["meets_target"] = row["rps"] >= TARGET_RPS and row["p99_ms"] < TARGET_P99_MS
                rows.append(row)
                if not args.json:
                    print(
                        f"{connections:>4} conn  {row['rps']:>8.0f} req/s  "
                        f"p50 {row['p50_ms']:6.2f}  p90 {row['p90_ms']:6.2f}  "
                        f"p99 {row['p99_ms']:6.2f}  max {row['max_ms']:7.2f} ms  "
                        f"server {row['server']['cores_busy']:.2f} cores, "
                        f"generator {row['generator_cores_busy']:.2f}, "
                        f"machine {row['machine_cores_busy']:.2f}, "
                        f"server CPU {row['server_cpu_us_per_answer']} us/answer  "
                        f"{'ok' if row['checked'] else 'CHECK FAILED'}"
                        f"{'  (target met)' if row['meets_target'] else ''}",
                        flush=True,
                    )
        final = check_fast_path(server.url, token)
    meta["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "rules-304",
        "meta": meta,
        "target": {"rps": TARGET_RPS, "p99_ms": TARGET_P99_MS},
        "rows": rows,
        "target_met_at_connections": sorted({r["connections"] for r in rows if r["meets_target"]}),
        "peak_rps": max(r["rps"] for r in rows),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    failed = final != etag or not all(r["checked"] for r in rows)
    if failed:
        print("a check failed: see the rows marked CHECK FAILED", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

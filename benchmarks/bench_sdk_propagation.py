"""Benchmark: how fast an admin's change reaches ``variant()`` in another process (issue 4).

Three processes on one machine, all on 127.0.0.1:

- the flag server (``rollwise_server.testing.ServerProcess``, a fresh SQLite database);
- a child process running an online ``rollwise.Client`` whose main thread calls
  ``client.variant()`` in a tight loop and writes ``<CLOCK_MONOTONIC ns> <variant>`` to its
  stdout each time the answer changes;
- this process, which makes ``--changes`` changes through the admin API (``PUT`` of the flag,
  alternating ``enabled`` true/false: the flag serves ``v2`` when enabled, its ``off_variant``
  ``v1`` when disabled) and, for each, takes ``time.monotonic_ns()`` as soon as the ``PUT``
  has returned 200.

The propagation time of a change is the child's timestamp minus the parent's. Both read
``CLOCK_MONOTONIC``, which on Linux is one system-wide clock (not per process), so the two are
directly comparable on the same machine. A change can be seen *before* the ``PUT``'s response
reaches the parent (the server publishes the new revision before it answers), so a small
negative time is possible and is kept as measured.

Between changes the parent waits a random 0.1-0.3 s (streaming) or a random fraction of the
poll interval (polling), so changes land at random phases of the polling cycle.

Run: ``cd benchmarks && python bench_sdk_propagation.py [--changes 100] [--mode both]
[--poll-interval 1.0] [--json]``. Targets: p99 ≤ 1 s streaming; p99 ≤ poll interval + 1 s
polling.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import rollwise
from bench_sdk_common import (
    ENV,
    TIMEOUT,
    admin_session,
    machine_meta,
    percentiles,
    running_server,
    sdk_token,
)

FLAG = "propagation-probe"
SEED = 20261125
CHANGE_TIMEOUT_S = 15.0

PROBE = {
    "key": FLAG,
    "enabled": True,
    "salt": FLAG,
    "description": "propagation benchmark: v2 when enabled, v1 (off_variant) when disabled",
    "variants": {"v1": {}, "v2": {}},
    "off_variant": "v1",
    "default_variant": "v2",
    "rules": [],
}


# --- the child: an application process with an online client ---


def child(args: argparse.Namespace) -> None:
    """Call ``variant()`` in a tight loop; report every change of the answer on stdout."""
    options: dict[str, Any] = {
        "cache_dir": args.cache_dir,
        "streaming": args.mode == "streaming",
        "poll_interval": args.poll_interval,
    }
    out = sys.stdout
    with rollwise.Client(args.url, args.key, **options) as client:
        if not client.wait_until_ready(30):
            out.write("error not ready\n")
            out.flush()
            return
        wanted = "streaming" if args.mode == "streaming" else "polling"
        deadline = time.monotonic() + 30
        while client.status().connection != wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        variant = client.variant
        context = {"user_id": "probe-user"}
        clock = time.monotonic_ns
        last = variant(FLAG, context)
        out.write(f"ready {last} {client.status().connection}\n")
        out.flush()
        stdin = sys.stdin
        sleep = args.child_sleep
        end = clock() + int(args.max_seconds * 1e9)
        while clock() < end:
            for _ in range(2048):
                now = variant(FLAG, context)
                if now != last:
                    seen = clock()
                    last = now
                    out.write(f"{seen} {now}\n")
                    out.flush()
                if sleep:
                    time.sleep(sleep)
            readable, _, _ = select.select([stdin], [], [], 0)
            if readable and not stdin.readline():  # the parent closed our stdin: stop
                break


# --- the parent: the admin making changes ---


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put("eof")


def run_mode(
    mode: str, server: Any, key: str, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    admin = admin_session(server)
    url = f"{server.url}/api/v1/envs/{ENV}/flags/{FLAG}"
    current = admin.get(url, timeout=TIMEOUT)
    current.raise_for_status()
    version = int(current.json()["version"])
    enabled = bool(current.json()["enabled"])
    command = [
        sys.executable, __file__, "--child", "--url", server.url, "--key", key, "--mode", mode,
        "--poll-interval", str(args.poll_interval), "--cache-dir", str(tmp / f"cache-{mode}"),
        "--child-sleep", str(args.child_sleep), "--max-seconds", str(args.max_seconds),
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    if process.stdout is None or process.stdin is None:
        raise RuntimeError("the child's pipes are missing")
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    rng = random.Random(SEED)
    latencies: list[float] = []
    write_times: list[float] = []
    missed = 0
    try:
        ready = lines.get(timeout=60).split()
        if ready[0] != "ready":
            raise RuntimeError(f"the child failed: {ready}")
        connection = ready[2]
        for _ in range(args.changes):
            if mode == "streaming":
                time.sleep(rng.uniform(0.1, 0.3))
            else:
                time.sleep(rng.uniform(0.0, args.poll_interval))
            enabled = not enabled
            expected = "v2" if enabled else "v1"
            body = {**PROBE, "enabled": enabled}
            started = time.monotonic_ns()
            response = admin.put(
                url, json=body, headers={"If-Match": f'"{version}"'}, timeout=TIMEOUT
            )
            written = time.monotonic_ns()
            response.raise_for_status()
            version = int(response.json()["version"])
            write_times.append((written - started) / 1e6)
            deadline = time.monotonic() + CHANGE_TIMEOUT_S
            while True:
                remaining = deadline - time.monotonic()
                try:
                    line = lines.get(timeout=max(0.001, remaining))
                except queue.Empty:
                    missed += 1
                    break
                seen_ns, seen = line.split()
                if seen == expected:
                    latencies.append((int(seen_ns) - written) / 1e6)
                    break
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    result: dict[str, Any] = {
        "mode": mode,
        "connection": connection,
        "poll_interval_s": args.poll_interval if mode == "polling" else None,
        "changes": args.changes,
        "missed": missed,
        "child_sleep_s": args.child_sleep,
        "propagation_ms": _rounded(percentiles(latencies)),
        "admin_put_ms": _rounded(percentiles(write_times)),
        "samples_ms": [round(x, 2) for x in latencies],
    }
    target = 1000.0 if mode == "streaming" else (args.poll_interval + 1.0) * 1000
    result["target_p99_ms"] = target
    result["met"] = missed == 0 and result["propagation_ms"].get("p99", float("inf")) <= target
    return result


def _rounded(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "n" else round(v, 2) for k, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--mode", choices=("streaming", "polling", "both"), default="both")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument(
        "--child-sleep",
        type=float,
        default=0.0,
        help="seconds the child sleeps after each variant() call (0: a tight loop)",
    )
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="child's time limit")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    meta = machine_meta()
    modes = ("streaming", "polling") if args.mode == "both" else (args.mode,)
    rows = []
    with running_server() as (server, _), tempfile.TemporaryDirectory() as scratch:
        admin = admin_session(server)
        admin.post(
            f"{server.url}/api/v1/envs/{ENV}/flags", json=PROBE, timeout=TIMEOUT
        ).raise_for_status()
        key = sdk_token(server)
        for mode in modes:
            rows.append(run_mode(mode, server, key, Path(scratch), args))
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(
        f"python {meta['python']} on {meta['machine']} x{meta['cpus']}, "
        f"load {meta['loadavg_at_start']}"
    )
    print(f"{'mode':10} {'n':>4} {'miss':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'min ms':>8} {'PUT p50':>8} {'target':>8} met")  # fmt: skip
    for row in rows:
        p, w = row["propagation_ms"], row["admin_put_ms"]
        print(
            f"{row['mode']:10} {p['n']:>4} {row['missed']:>4} {p.get('p50', '-'):>8} "
            f"{p.get('p90', '-'):>8} {p.get('p99', '-'):>8} {p.get('max', '-'):>8} "
            f"{p.get('min', '-'):>8} {w.get('p50', '-'):>8} {row['target_p99_ms']:>8} {row['met']}"
        )


if __name__ == "__main__":
    main()

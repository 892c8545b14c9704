"""Benchmark: from an admin's change to the application's change listener (issue 17, item 2).

A flag server process (``ServerProcess``, a fresh SQLite database) and, in this process, an
online ``rollwise.Client`` (streaming) with one ``client.on_change`` listener that notes
``time.monotonic_ns()`` when it is called. The parent makes ``--changes`` changes through the
admin API (``PUT`` of the flag, its description changed), a random 0.1-0.3 s apart, and notes
``time.monotonic_ns()`` as soon as each ``PUT`` returned. The latency of a change is the
listener's time minus the write's (a change can reach the listener before the ``PUT``'s answer
reaches the parent: a small negative time is kept as measured).

Run: ``cd benchmarks && ../.venv/bin/python bench_change_listener.py [--changes 100] [--json]``.
Target: p99 ≤ 1 s (the propagation figure).
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import time

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

FLAG = "listener-probe"
PROBE = {
    "key": FLAG, "enabled": True, "salt": FLAG, "description": "0",
    "variants": {"v1": {}, "v2": {}}, "off_variant": "v1", "default_variant": "v2", "rules": [],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    heard: queue.Queue[tuple[int, int]] = queue.Queue()
    with running_server() as (server, tmp):
        admin = admin_session(server)
        base = f"{server.url}/api/v1/envs/{ENV}/flags"
        admin.post(base, json=PROBE, timeout=TIMEOUT).raise_for_status()
        client = rollwise.Client(server.url, sdk_token(server), cache_dir=tmp / "cache")
        try:
            if not client.wait_until_ready(30):
                raise RuntimeError("the client did not get its rules")
            client.on_change(lambda c: heard.put((c.new_version or 0, time.monotonic_ns())),
                             flags=[FLAG])  # fmt: skip
            rng = random.Random(20261205)
            version = 1
            latencies = []
            for i in range(args.changes):
                time.sleep(rng.uniform(0.1, 0.3))
                body = {**PROBE, "description": str(i + 1)}
                match = {"If-Match": f'"{version}"'}
                answer = admin.put(f"{base}/{FLAG}", json=body, headers=match, timeout=TIMEOUT)
                written = time.monotonic_ns()
                answer.raise_for_status()
                version = int(answer.json()["version"])
                while True:
                    seen_version, at = heard.get(timeout=15)
                    if seen_version == version:
                        break
                latencies.append((at - written) / 1e6)
            stats = client.stats()
        finally:
            client.close()
    result = {
        "benchmark": "change_listener", "changes": args.changes,
        "latency_ms": {k: round(v, 2) if isinstance(v, float) else v
                       for k, v in percentiles(latencies).items()},
        "listener_calls": stats["change_listener_calls"],
        "listener_errors": stats["change_listener_errors"], "machine": machine_meta(),
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=1))
        return
    lat = result["latency_ms"]
    print(
        f"{args.changes} changes: listener latency p50 {lat['p50']} ms, p90 {lat['p90']} ms, "
        f"p99 {lat['p99']} ms, max {lat['max']} ms; calls {result['listener_calls']}"
    )


if __name__ == "__main__":
    main()

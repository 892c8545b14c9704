"""Benchmark: OFREP evaluations against a server process (issue 17, item 5).

A flag server process (``ServerProcess``, a fresh SQLite database) with ``--flags`` (50) flags
like the example's (a targeting rule and a 50/50 split on user_id). From this process,
``--rate`` (200) requests a second for ``--seconds`` (10) s, paced on a schedule (open loop: a
slow answer does not slow the schedule), sent by 8 threads with one keep-alive session each, of
random users: first ``POST /ofrep/v1/evaluate/flags/{key}`` (one flag), then ``POST
/ofrep/v1/evaluate/flags`` (all of them). Latency is from the scheduled send to the full answer;
splits make exposures, stored by the server as an SDK's.

Run: ``cd benchmarks && ../.venv/bin/python bench_ofrep.py [--rate 200] [--seconds 10]``.
Targets: single p99 < 10 ms, bulk (50 flags) p99 < 20 ms at 200 requests a second.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import threading
import time
from typing import Any

import requests

from bench_sdk_common import ENV, TIMEOUT, admin_session, percentiles, running_server, sdk_token


def _flag(i: int) -> dict[str, Any]:
    return {
        "key": f"model-{i}", "variants": {"v1": {}, "v2": {}}, "off_variant": "v1",
        "default_variant": "v1", "cohort_attributes": ["country"],
        "rules": [
            {"id": "qa", "conditions": [{"attribute": "user_id", "operator": "in",
                                          "values": ["u1", "u2"]}], "serve": {"variant": "v2"}},
            {"id": "half", "conditions": [], "serve": {"split": [
                {"variant": "v2", "weight": 5000}, {"variant": "v1", "weight": 5000}]}},
        ],
    }  # fmt: skip


def run(url: str, key: str, path: str, rate: float, seconds: float, flags: int) -> list[float]:
    jobs: queue.Queue[float | None] = queue.Queue()
    latencies: list[float] = []
    lock = threading.Lock()
    rng = random.Random(5)

    def worker() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        while (due := jobs.get()) is not None:
            while time.perf_counter() < due:
                time.sleep(max(due - time.perf_counter(), 0))
            target = path.format(i=rng.randrange(flags))
            body = {"context": {"targetingKey": f"user-{rng.randrange(10**6)}", "country": "DE"}}
            answer = session.post(f"{url}{target}", json=body, timeout=TIMEOUT)
            answer.raise_for_status()
            with lock:
                latencies.append((time.perf_counter() - due) * 1000)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 0.2
    for n in range(int(rate * seconds)):
        jobs.put(start + n / rate)
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--flags", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with running_server() as (server, _):
        admin = admin_session(server)
        for i in range(args.flags):
            admin.post(f"{server.url}/api/v1/envs/{ENV}/flags", json=_flag(i),
                       timeout=TIMEOUT).raise_for_status()  # fmt: skip
        key = sdk_token(server)
        run(server.url, key, "/ofrep/v1/evaluate/flags/model-{i}", 50, 1, args.flags)  # warm
        out = {}
        for name, path in (("single", "/ofrep/v1/evaluate/flags/model-{i}"),
                           ("bulk", "/ofrep/v1/evaluate/flags")):  # fmt: skip
            latencies = run(server.url, key, path, args.rate, args.seconds, args.flags)
            out[name] = {k: round(v, 2) if isinstance(v, float) else v
                         for k, v in percentiles(latencies).items()}  # fmt: skip
    if args.json:
        print(json.dumps({"rate": args.rate, "seconds": args.seconds, "flags": args.flags,
                          **out}, indent=1))  # fmt: skip
        return
    for name, stats in out.items():
        print(f"{name}: {stats['n']} requests at {args.rate:g}/s: p50 {stats['p50']} ms, "
              f"p99 {stats['p99']} ms, max {stats['max']} ms")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: ``variant()`` of the ONLINE client, and its memory over 1,000,000 units (issue 4).

The flag server runs as a child process (a fresh SQLite database); the reference flag of issue 2
(``bench_variant.REFERENCE``, same 100,000 contexts, seed 20261125) is created through the admin
API, and an online ``rollwise.Client(url, sdk_key)`` follows it over the SSE stream with
exposure logging on: split assignments are de-duplicated, queued, and sent by the background
sender thread to the server *while* the timing runs (its work competes for the GIL, as it would
in an application).

Part 1, latency: the figures of ``bench_variant.py`` (each call timed alone with
``perf_counter_ns`` minus the timer's median cost; first pass = every split unit new, repeat =
the same units again, de-duplicated; batched = a plain loop's mean), for the online client and,
in the same run for comparison, the offline client with capture off and with the in-memory
queue.

Part 2, memory: a fresh online client evaluates 1,000,000 distinct units, every one through the
10% split (country DE, amount 100: each call records a new exposure), as fast as one thread can
(or at ``--mem-rate`` evaluations per second). At 0, 250k, 500k, 750k and 1M units it reports
the process's RSS (``/proc/self/status`` VmRSS), the de-duplication cache's size (bounded by
``dedup_size``, default 100,000) and the exposure queue's length; then it flushes and reports
RSS again and how many exposures the server stored.

Run: ``cd benchmarks && python bench_sdk_variant_online.py [--repeats 5] [--units 1000000]
[--mem-rate 0] [--json]``. Target: median ≤ 1.0 µs online with exposures on; RSS bounded.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

import rollwise
from bench_sdk_common import (
    ENV,
    TIMEOUT,
    admin_session,
    api_flag,
    db_counts,
    machine_meta,
    rss_kib,
    running_server,
    sdk_token,
)
from bench_variant import (
    REFERENCE,
    Call,
    batched,
    contexts,
    per_call,
    rollwise_plain,
    rollwise_queue,
    timer_overhead,
)

FLAG = "fraud-model"
CHECKPOINTS = (0, 250_000, 500_000, 750_000, 1_000_000)


class Online:
    """Makes online clients of one server, each ready and streaming; closes them all."""

    def __init__(self, url: str, key: str, cache: Path) -> None:
        self.url, self.key, self.cache = url, key, cache
        self.clients: list[rollwise.Client] = []

    def make(self, **options: Any) -> rollwise.Client:
        client = rollwise.Client(self.url, self.key, cache_dir=self.cache, **options)
        if not client.wait_until_ready(30):
            raise RuntimeError("the online client did not become ready")
        deadline = time.monotonic() + 30
        while client.status().connection != "streaming" and time.monotonic() < deadline:
            time.sleep(0.01)
        if client.variant(FLAG, {"user_id": "u1"}) != "v2":
            raise RuntimeError("the online client does not serve the reference flag")
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


def summary(name: str, first: list[int], again: list[list[int]], loops: list[float]) -> dict:
    return {
        "name": name,
        "first_pass_median_ns": first[len(first) // 2],
        "first_pass_p99_ns": first[int(len(first) * 0.99)],
        "repeat_median_ns": statistics.median(s[len(s) // 2] for s in again),
        "repeat_p99_ns": statistics.median(s[int(len(s) * 0.99)] for s in again),
        "batched_mean_ns": round(statistics.median(loops), 1),
    }


def measure_offline(name: str, make: Any, ctxs: list, overhead: int, repeats: int) -> dict:
    variant: Call = make()
    first = per_call(variant, ctxs, overhead)
    again = [per_call(variant, ctxs, overhead) for _ in range(repeats)]
    loops = [batched(make(), ctxs) for _ in range(repeats)]
    return summary(name, first, again, loops)


def measure_online(online: Online, ctxs: list, overhead: int, repeats: int) -> dict[str, Any]:
    client = online.make()
    first = per_call(client.variant, ctxs, overhead)
    again = [per_call(client.variant, ctxs, overhead) for _ in range(repeats)]
    loops = []
    for _ in range(repeats):
        fresh = online.make()
        loops.append(batched(fresh.variant, ctxs))
    row = summary("rollwise online variant(), exposures on, sender running", first, again, loops)
    flushed = client.flush(60)
    stats = client.stats()
    row["client_stats"] = {
        "flushed": flushed,
        "evaluations": stats["evaluations"],
        "exposures_recorded": stats["exposures_recorded"],
        "exposures_duplicated": stats["exposures_duplicated"],
        "exposures_sent": stats["exposures_sent"],
        "connection": client.status().connection,
    }
    return row


def memory(online: Online, units: int, rate: float) -> dict[str, Any]:
    """1,000,000 distinct units through the split: RSS and the sizes of the bounded structures."""
    client = online.make()
    log = client._exposures  # private: the de-duplication cache and the queue are measured
    online_part = client._online
    if online_part is None:
        raise RuntimeError("not an online client")
    variant = client.variant
    checkpoints = sorted({*(c for c in CHECKPOINTS if c <= units), units})
    rows = []

    def snapshot(done: int, started: float) -> None:
        rss = rss_kib()
        rows.append(
            {
                "units": done,
                "seconds": round(time.perf_counter() - started, 2),
                "rss_mib": round(rss["VmRSS"] / 1024, 1),
                "peak_rss_mib": round(rss["VmHWM"] / 1024, 1),
                "dedup_cache": len(log._seen),
                "exposure_queue": len(log),
                "outcome_queue": len(online_part.outcomes),
                "exposures_recorded": log.recorded,
                "exposures_dropped": log.dropped,
                "exposures_sent": online_part.sender.stats.sent["exposures"],
            }
        )

    gc.collect()
    started = time.perf_counter()
    snapshot(0, started)
    done = 0
    for target in checkpoints[1:]:
        while done < target:
            end = min(target, done + 10_000)
            for i in range(done, end):
                variant(FLAG, {"user_id": f"mem-{i}", "country": "DE", "amount": 100.0})
            done = end
            if rate > 0:
                ahead = done / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        snapshot(done, started)
    evaluate_seconds = time.perf_counter() - started
    flushed = client.flush(600)
    flush_seconds = time.perf_counter() - started - evaluate_seconds
    gc.collect()
    snapshot(done, started)
    rows[-1]["after_flush"] = True
    return {
        "units": units,
        "rate_limit_per_s": rate or None,
        "dedup_size": online_part.config.dedup_size,
        "evaluate_seconds": round(evaluate_seconds, 2),
        "flushed": flushed,
        "flush_seconds": round(flush_seconds, 2),
        "checkpoints": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--users", type=int, default=100_000, help="latency part: 0 skips it")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--units", type=int, default=1_000_000, help="memory part: 0 skips it")
    parser.add_argument(
        "--mem-rate", type=float, default=0.0, help="memory part: evaluations/s (0: flat out)"
    )
    args = parser.parse_args()
    meta = machine_meta()
    ctxs = contexts()[: args.users]
    overhead = timer_overhead()
    meta["timer_overhead_ns"] = overhead
    meta["users"] = len(ctxs)
    result: dict[str, Any] = {"meta": meta}
    with running_server() as (server, tmp):
        flag = api_flag(FLAG, REFERENCE["flags"][FLAG])  # type: ignore[index]
        admin_session(server).post(
            f"{server.url}/api/v1/envs/{ENV}/flags", json=flag, timeout=TIMEOUT
        ).raise_for_status()
        online = Online(server.url, sdk_token(server), tmp / "cache")
        try:
            n = args.repeats
            rows = []
            if ctxs:
                rows = [
                    measure_online(online, ctxs, overhead, n),
                    measure_offline(
                        "rollwise offline, capture off", rollwise_plain, ctxs, overhead, n
                    ),
                    measure_offline(
                        "rollwise offline, in-memory queue", rollwise_queue, ctxs, overhead, n
                    ),
                ]
            result["rows"] = rows
            online.close()
            online.clients.clear()
            ctxs.clear()
            if args.units:
                baseline = db_counts(server.db)["exposures"]
                mem = memory(online, args.units, args.mem_rate)
                mem["server_exposures_stored"] = db_counts(server.db)["exposures"] - baseline
                result["memory"] = mem
        finally:
            online.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"python {meta['python']} on {meta['machine']} x{meta['cpus']}, load "
        f"{meta['loadavg_at_start']}, {meta['users']} users, timer overhead {overhead} ns"
    )
    columns = ("1st med", "1st p99", "rep med", "rep p99", "batched")
    print(f"{'configuration':58} " + " ".join(f"{c:>8}" for c in columns))
    for row in result["rows"]:
        print(
            f"{row['name']:58} {row['first_pass_median_ns']:>8} {row['first_pass_p99_ns']:>8} "
            f"{row['repeat_median_ns']:>8} {row['repeat_p99_ns']:>8} {row['batched_mean_ns']:>8}"
        )
    if result["rows"]:
        print(json.dumps(result["rows"][0]["client_stats"]))
    if "memory" in result:
        mem = result["memory"]
        print(
            f"memory: {mem['units']} units in {mem['evaluate_seconds']} s, flush "
            f"{mem['flush_seconds']} s (ok: {mem['flushed']}), server stored "
            f"{mem['server_exposures_stored']}"
        )
        for row in mem["checkpoints"]:
            print("  " + json.dumps(row))


if __name__ == "__main__":
    main()

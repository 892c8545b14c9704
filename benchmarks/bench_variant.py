"""Benchmark of ``Client.variant()`` on the reference flag of issue 2.

Reference flag: variants v1/v2; rule 1 ``user_id`` in 3 ids -> v2; rule 2 ``country`` in
{DE, FR, NL} and ``amount`` < 500 -> 10% v2 / 90% v1 by ``user_id``; default v1. 100,000
distinct users over 10 countries, amounts uniform in 0-2000, seed 20261125.

Two figures per configuration:
- per call: each call timed alone with ``perf_counter_ns``; the median cost of timing an empty
  call is subtracted (so single calls near the clock's resolution are noisy, p99 honest);
- batched: 100,000 calls in a loop, total time / calls, repeated; the median of the repeats.

Run: ``python benchmarks/bench_variant.py [--json]``. Peers are measured too when installed
(``pip install -e '.[bench]'``): growthbook and eppo-server-sdk, same flag, same contexts.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import mmh3

import rollwise

SEED = 20261125
USERS = 100_000
COUNTRIES = ["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "BR", "IN"]

REFERENCE = {
    "schema_version": 1,
    "environment": "bench",
    "revision": 1,
    "segments": {},
    "flags": {
        "fraud-model": {
            "version": 1,
            "salt": "fraud-model",
            "variants": {"v1": {}, "v2": {}},
            "off_variant": "v1",
            "default_variant": "v1",
            "cohort_attributes": ["country", "amount"],
            "rules": [
                {
                    "id": "qa",
                    "conditions": [
                        {"attribute": "user_id", "operator": "in", "values": ["u1", "u2", "u3"]}
                    ],
                    "serve": {"variant": "v2"},
                },
                {
                    "id": "eu-small",
                    "conditions": [
                        {"attribute": "country", "operator": "in", "values": ["DE", "FR", "NL"]},
                        {"attribute": "amount", "operator": "lt", "value": 500},
                    ],
                    "serve": {
                        "split": [{"variant": "v2", "weight": 10}, {"variant": "v1", "weight": 90}],
                        "bucket_by": "user_id",
                    },
                },
            ],
        }
    },
}


def contexts() -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    return [
        {
            "user_id": f"user-{i}",
            "country": rng.choice(COUNTRIES),
            "amount": rng.uniform(0.0, 2000.0),
        }
        for i in range(USERS)
    ]


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(200_000):
        start = clock()
        samples.append(clock() - start)
    return int(statistics.median(samples))


Call = Callable[[str, dict[str, Any]], Any]


def per_call(variant: Call, ctxs: list[dict[str, Any]], overhead: int) -> list[int]:
    """Each call timed alone, the timer's own cost subtracted; sorted nanoseconds."""
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    gc.disable()
    try:
        for ctx in ctxs:
            start = clock()
            variant("fraud-model", ctx)
            append(clock() - start)
    finally:
        gc.enable()
    return sorted(max(0, s - overhead) for s in samples)


def batched(variant: Call, ctxs: list[dict[str, Any]]) -> float:
    """Mean nanoseconds per call over a plain loop, minus the cost of the empty loop."""
    clock = time.perf_counter_ns
    gc.disable()
    try:
        start = clock()
        for ctx in ctxs:
            variant("fraud-model", ctx)
        total = clock() - start
        start = clock()
        for _ctx in ctxs:
            pass
        empty = clock() - start
    finally:
        gc.enable()
    return (total - empty) / len(ctxs)


def measure(
    name: str, make: Callable[[], Call], ctxs: list[dict[str, Any]], overhead: int, repeats: int
) -> dict[str, Any]:
    """First pass (every split unit new), then repeated passes over the same units."""
    variant = make()
    first = per_call(variant, ctxs, overhead)
    again = [per_call(variant, ctxs, overhead) for _ in range(repeats)]
    loops = [batched(make(), ctxs) for _ in range(repeats)]
    return {
        "name": name,
        "first_pass_median_ns": first[len(first) // 2],
        "first_pass_p99_ns": first[int(len(first) * 0.99)],
        "repeat_median_ns": statistics.median(s[len(s) // 2] for s in again),
        "repeat_p99_ns": statistics.median(s[int(len(s) * 0.99)] for s in again),
        "batched_mean_ns": round(statistics.median(loops), 1),
    }


def rollwise_plain() -> Call:
    return rollwise.Client.offline(REFERENCE).variant


def rollwise_listener() -> Call:
    sink: list[rollwise.Exposure] = []
    return rollwise.Client.offline(REFERENCE, on_exposure=sink.append).variant


def rollwise_queue() -> Call:
    from rollwise.exposures import ExposureLog

    client = rollwise.Client.offline(REFERENCE)
    client._exposures = ExposureLog(queue=True)  # the online client's in-memory queue
    client._install(client.rules)  # type: ignore[arg-type]
    return client.variant


def mmh3_alone() -> Call:
    hash_ = mmh3.hash

    def hash_only(flag: str, ctx: dict[str, Any]) -> int:
        return hash_("fraud-model:" + ctx["user_id"], 0, False)

    return hash_only


def mmh3_loop(ctxs: list[dict[str, Any]], repeats: int) -> float:
    """``mmh3.hash`` alone, inline in a loop (no wrapper call), ns per hash."""
    hash_ = mmh3.hash
    keys = ["fraud-model:" + ctx["user_id"] for ctx in ctxs]
    clock = time.perf_counter_ns
    out = []
    for _ in range(repeats):
        start = clock()
        for key in keys:
            hash_(key, 0, False)
        total = clock() - start
        start = clock()
        for _key in keys:
            pass
        out.append((total - (clock() - start)) / len(keys))
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ctxs = contexts()[: args.users]
    overhead = timer_overhead()
    n = args.repeats
    rows = [
        measure("rollwise variant(), exposure capture off", rollwise_plain, ctxs, overhead, n),
        measure(
            "rollwise variant(), exposures to in-memory queue", rollwise_queue, ctxs, overhead, n
        ),
        measure(
            "rollwise variant(), exposures to a listener", rollwise_listener, ctxs, overhead, n
        ),
        measure("mmh3.hash in a wrapper function", mmh3_alone, ctxs, overhead, n),
    ]
    try:
        from bench_peers import peer_candidates
    except ImportError:
        peer_candidates = None
    if peer_candidates is not None:
        for name, make in peer_candidates(REFERENCE):
            rows.append(measure(name, make, ctxs, overhead, n))
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "rollwise": rollwise.__version__,
        "timer_overhead_ns": overhead,
        "users": len(ctxs),
        "mmh3_hash_inline_ns": round(mmh3_loop(ctxs, n), 1),
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(
        f"python {meta['python']} on {meta['machine']}, {len(ctxs)} users, "
        f"timer overhead {overhead} ns, mmh3.hash inline {meta['mmh3_hash_inline_ns']} ns"
    )
    columns = ("1st med", "1st p99", "rep med", "rep p99", "batched")
    header = f"{'configuration':58} " + " ".join(f"{c:>8}" for c in columns)
    print(header)
    for row in rows:
        print(
            f"{row['name']:58} {row['first_pass_median_ns']:>8} {row['first_pass_p99_ns']:>8} "
            f"{row['repeat_median_ns']:>8} {row['repeat_p99_ns']:>8} {row['batched_mean_ns']:>8}"
        )


if __name__ == "__main__":
    main()

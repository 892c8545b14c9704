"""Benchmark of the typed accessors against ``variant()`` on the reference flag (issue 17).

The reference flag of ``bench_variant.py`` and typed twins of it: the same rules and splits,
its variants ``v1``/``v2`` given values of each type (boolean ``false``/``true``, integer
``50``/``500``, float ``0.5``/``0.35``, json objects). Each accessor is called as an application
calls it (``client.bool_value(flag, context, default)``), on the same 100,000 contexts, exposure
capture off, timed as ``bench_variant.py`` times ``variant()``: each call alone with
``perf_counter_ns`` (the timer's median cost subtracted), and batched. ``variant()`` is measured
in the same run, so the ratio of medians is the figure (the target: within 10%).

Run: ``python benchmarks/bench_typed.py [--repeats 5] [--json]``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import rollwise
from bench_variant import REFERENCE, contexts, timer_overhead

TYPES: dict[str, tuple[str, Any, Any, Any]] = {
    # flag type: (flag key, v1's value, v2's value, the caller's default)
    "boolean": ("fraud-check", False, True, False),
    "integer": ("queue-size", 50, 500, 0),
    "float": ("threshold", 0.5, 0.35, 0.0),
    "json": ("config", {"model": "a", "timeout_ms": 40}, {"model": "b", "timeout_ms": 60}, None),
}


def document() -> dict[str, Any]:
    """The reference document with a typed twin of its flag per type."""
    doc = copy.deepcopy(REFERENCE)
    doc["schema_version"] = 2
    base = doc["flags"]["fraud-model"]
    for kind, (key, first, second, _) in TYPES.items():
        twin = copy.deepcopy(base)
        twin["salt"] = "fraud-model"  # the same buckets as the reference flag
        twin["type"] = kind
        twin["variants"] = {"v1": {"value": first}, "v2": {"value": second}}
        doc["flags"][key] = twin
    return doc


Call = Callable[..., Any]


def per_call(
    fn: Call, key: str, extra: tuple[Any, ...], ctxs: list[dict[str, Any]], overhead: int
) -> list[int]:
    """Each call ``fn(key, ctx, *extra)`` timed alone, the timer's cost subtracted; sorted ns.
    ``variant()`` gets no extra argument (its default is keyword-only), an accessor its
    default: both through the same ``*extra`` call, so the comparison is fair."""
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    gc.disable()
    try:
        for ctx in ctxs:
            start = clock()
            fn(key, ctx, *extra)
            append(clock() - start)
    finally:
        gc.enable()
    return sorted(max(0, s - overhead) for s in samples)


def batched(fn: Call, key: str, extra: tuple[Any, ...], ctxs: list[dict[str, Any]]) -> float:
    clock = time.perf_counter_ns
    gc.disable()
    try:
        start = clock()
        for ctx in ctxs:
            fn(key, ctx, *extra)
        total = clock() - start
        start = clock()
        for _ctx in ctxs:
            pass
        empty = clock() - start
    finally:
        gc.enable()
    return (total - empty) / len(ctxs)


def measure(
    name: str, fn: Call, key: str, extra: tuple[Any, ...], ctxs: list[dict[str, Any]],
    overhead: int, repeats: int,
) -> dict[str, Any]:  # fmt: skip
    per_call(fn, key, extra, ctxs, overhead)  # the first pass compiles the flag
    runs = [per_call(fn, key, extra, ctxs, overhead) for _ in range(repeats)]
    loops = [batched(fn, key, extra, ctxs) for _ in range(repeats)]
    return {
        "name": name,
        "median_ns": statistics.median(s[len(s) // 2] for s in runs),
        "p99_ns": statistics.median(s[int(len(s) * 0.99)] for s in runs),
        "batched_mean_ns": round(statistics.median(loops), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ctxs = contexts()[: args.users]
    overhead = timer_overhead()
    client = rollwise.Client.offline(document())
    accessors = {"boolean": client.bool_value, "integer": client.int_value,
                 "float": client.float_value, "json": client.json_value}  # fmt: skip
    rules = client.rules
    if rules is None:
        raise SystemExit("no rules")
    for kind, (key, _, _, default) in TYPES.items():  # each twin serves as the reference does
        for ctx in ctxs[:2000]:
            served = client.evaluate("fraud-model", ctx).variant
            value = accessors[kind](key, ctx, default)
            if value != rules.flags[key].variants[str(served)].value:
                raise SystemExit(f"{kind} twin disagrees with the reference flag on {ctx}")
    n = args.repeats
    rows = [measure("variant()", client.variant, "fraud-model", (), ctxs, overhead, n)]
    rows.append(measure("string_value()", client.string_value, "fraud-model", ("v1",), ctxs,
                        overhead, n))  # fmt: skip
    for kind, (key, _, _, default) in TYPES.items():
        name = f"{accessors[kind].__name__}()"
        rows.append(measure(name, accessors[kind], key, (default,), ctxs, overhead, n))
    base = rows[0]["median_ns"]
    for row in rows:
        row["vs_variant"] = round(row["median_ns"] / base, 3) if base else None
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "rollwise": rollwise.__version__,
        "timer_overhead_ns": overhead,
        "users": len(ctxs),
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"python {meta['python']} on {meta['machine']}, {len(ctxs)} users, "
          f"timer overhead {overhead} ns")  # fmt: skip
    print(f"{'accessor':28} {'median':>8} {'p99':>8} {'batched':>8} {'vs variant':>10}")
    for row in rows:
        print(f"{row['name']:28} {row['median_ns']:>8} {row['p99_ns']:>8} "
              f"{row['batched_mean_ns']:>8} {row['vs_variant']:>10}")  # fmt: skip


if __name__ == "__main__":
    main()

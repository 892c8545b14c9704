"""Benchmark of a ``matches`` condition (issue 12): RE2 in linear time, per call.

What it measures: ``Client.variant()`` on a flag whose one rule is ``matches`` on ``email``,
against a flag whose rule is ``in`` on the same attribute (the cost of the regex is the
difference), for short values (19 characters, matching and not) and for a hostile pattern,
``^(a+)+$``, on values of 24, 28, 40 and 4,096 characters (``a`` repeated, then ``b``: Python's
backtracking ``re`` took 1.0 s at 24 and 14.8 s at 28 characters). Each figure is the median
over ``--repeats`` loops of ``--calls`` calls (total time / calls).

Targets (issue 12): a ``matches`` condition within ~1.5 us on short inputs; any value up to
4,096 characters well under a millisecond.

Run: ``cd benchmarks && ../.venv/bin/python bench_matches.py [--calls 100000] [--repeats 5]
[--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import rollwise


def document(condition: dict[str, Any]) -> dict[str, Any]:
    flag = {
        "version": 1, "enabled": True, "salt": "m", "variants": {"off": {}, "on": {}},
        "off_variant": "off", "default_variant": "off",
        "rules": [{"id": "r", "conditions": [condition], "serve": {"variant": "on"}}],
    }  # fmt: skip
    return {"schema_version": 1, "environment": "b", "revision": 1, "segments": {},
            "flags": {"m": flag}}  # fmt: skip


def per_call(client: rollwise.Client, context: dict[str, Any], calls: int, repeats: int) -> float:
    """Microseconds per ``variant()`` call: the median over ``repeats`` loops."""
    variant = client.variant
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(calls):
            variant("m", context)
        runs.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    email = {"attribute": "email"}
    plain = rollwise.Client.offline(
        document({**email, "operator": "in", "values": ["someone@example.com"]})
    )
    regex = rollwise.Client.offline(
        document({**email, "operator": "matches", "value": r"@example\.(com|org)$"})
    )
    hostile = rollwise.Client.offline(
        document({**email, "operator": "matches", "value": r"^(a+)+$"})
    )
    short_hit, short_miss = {"email": "someone@example.com"}, {"email": "someone@example.net"}
    results: dict[str, Any] = {
        "in, 19 characters": per_call(plain, short_hit, args.calls, args.repeats),
        "matches, 19 characters, match": per_call(regex, short_hit, args.calls, args.repeats),
        "matches, 19 characters, no match": per_call(regex, short_miss, args.calls, args.repeats),
    }
    results["matches cost over in (short)"] = (
        results["matches, 19 characters, match"] - results["in, 19 characters"]
    )
    for length in (24, 28, 40, 4096):
        context = {"email": "a" * (length - 1) + "b"}
        calls = max(args.calls // (1 + length // 64), 1000)
        results[f"^(a+)+$ on {length} characters"] = per_call(hostile, context, calls, args.repeats)
        if hostile.variant("m", context) != "off":  # no match, and no hang
            raise RuntimeError("check failed: the hostile pattern matched")
    if args.json:
        print(json.dumps({"benchmark": "matches", "us_per_call": results}, indent=2))
    else:
        for name, value in results.items():
            print(f"{name:40} {value:9.3f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

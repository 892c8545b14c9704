"""Benchmark of ``AsyncClient.variant()`` against ``Client.variant()`` (issue 17, item 3).

The reference flag, users and timing of ``bench_variant.py``. Both clients are online ones
built with the reference document as ``bootstrap`` (exposures go to the sender's in-memory
queue) and no reachable server (``http://127.0.0.1:9``), so that the rules never change; the
``AsyncClient`` is started, its tasks live on the loop that runs the measurement, as in a
request handler. Evaluation is the same code in both; the figures should be the same.

Run: ``cd benchmarks && ../.venv/bin/python bench_aio.py [--users N] [--repeats N] [--json]``.
Target: median ≤ 0.4 µs per call, as the sync client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

import rollwise
from bench_variant import REFERENCE, USERS, contexts, measure, timer_overhead
from rollwise.aio import AsyncClient

OPTIONS: dict[str, Any] = {"bootstrap": REFERENCE, "cache_dir": None, "connect_timeout": 0.2}


async def rows(ctxs: list[dict[str, Any]], repeats: int) -> list[dict[str, Any]]:
    overhead = timer_overhead()
    out = []
    async with AsyncClient("http://127.0.0.1:9", "rw_bench", **OPTIONS) as client:
        out.append(
            measure("AsyncClient.variant()", lambda: client.variant, ctxs, overhead, repeats)
        )
    with rollwise.Client("http://127.0.0.1:9", "rw_bench", **OPTIONS) as sync:
        out.append(measure("Client.variant()", lambda: sync.variant, ctxs, overhead, repeats))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.getLogger("rollwise").setLevel(logging.ERROR)  # no server: close() drops the queue
    results = asyncio.run(rows(contexts()[: args.users], args.repeats))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    columns = ("1st med", "1st p99", "rep med", "rep p99", "batched")
    print(f"{'configuration':24} " + " ".join(f"{c:>8}" for c in columns))
    for row in results:
        print(
            f"{row['name']:24} {row['first_pass_median_ns']:>8} {row['first_pass_p99_ns']:>8} "
            f"{row['repeat_median_ns']:>8} {row['repeat_p99_ns']:>8} {row['batched_mean_ns']:>8}"
        )


if __name__ == "__main__":
    main()

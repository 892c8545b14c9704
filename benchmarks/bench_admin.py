"""Admin API latency, request by request, for the endpoints whose shapes are models (issue 13).

One client (``requests``, keep-alive) against a fresh server process on 127.0.0.1 times
``--rounds`` of each: list environments, create a token, replace a metric, put a rollout plan
(two guardrails with cohorts), read the audit log (100 entries), read a flag's history (20
versions), a refused token (three bad fields: the problems walk) and a refused plan. Each
answer's status is checked. Figures: p50 and p99 in milliseconds.

    ../.venv/bin/python bench_admin.py [--rounds 300]

Run it at two commits to compare (``PYTHONPATH=<checkout>/sdk:<checkout>/server``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import requests

from bench_server_common import bench_flag, percentiles, running_server

ENV = "production"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with running_server() as server:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {server.admin_token}"
        api = f"{server.url}/api/v1"
        env = f"{api}/envs/{ENV}"
        session.post(f"{env}/flags", json=bench_flag("fraud-model"), timeout=30).raise_for_status()
        for metric in ("fraud_caught", "latency_ms"):
            body = {"key": metric, "kind": "mean", "direction": "lower_is_better"}
            session.post(f"{env}/metrics", json=body, timeout=30).raise_for_status()
        guardrails = [
            {"metric": "fraud_caught", "cohorts": ["country"], "tolerance": 0.01},
            {"metric": "latency_ms", "cohorts": ["amount"], "bands": {"amount": [0, 100, 500]}},
        ]
        plan = {"control": "v1", "candidate": "v2", "rule": "eu-small", "guardrails": guardrails,
                "stages": [{"share": s, "min_duration": "1h"} for s in (0.01, 0.1, 0.5, 1.0)],
                "reason": "benchmark"}  # fmt: skip
        flag = bench_flag("fraud-model")
        for i in range(20):
            flag["description"] = f"edit {i}"
            session.put(f"{env}/flags/fraud-model", json={**flag, "version": i + 1}, timeout=30)
        counter = iter(range(10**9))
        versions = iter(range(1, 10**9))  # the metric's version, one up at each replace
        calls: dict[str, tuple[Callable[[], requests.Response], int]] = {
            "GET /envs": (lambda: session.get(f"{api}/envs", timeout=30), 200),
            "POST /tokens": (
                lambda: session.post(
                    f"{api}/tokens",
                    json={"name": f"t{next(counter)}", "role": "viewer", "owner": "bench"},
                    timeout=30,
                ),
                201,
            ),
            "PUT metric": (
                lambda: session.put(
                    f"{env}/metrics/latency_ms",
                    json={
                        "kind": "mean",
                        "direction": "lower_is_better",
                        "description": f"edit {next(counter)}",
                    },
                    headers={"If-Match": f'"{next(versions)}"'},
                    timeout=30,
                ),
                200,
            ),
            "PUT rollout": (
                lambda: session.put(f"{env}/flags/fraud-model/rollout", json=plan, timeout=30),
                200,
            ),
            "GET audit": (lambda: session.get(f"{api}/audit", timeout=30), 200),
            "GET history": (
                lambda: session.get(f"{env}/flags/fraud-model/history", timeout=30),
                200,
            ),
            "POST /tokens (422)": (
                lambda: session.post(
                    f"{api}/tokens", json={"name": "", "role": "root", "colour": 1}, timeout=30
                ),
                422,
            ),
            "PUT rollout (422)": (
                lambda: session.put(
                    f"{env}/flags/fraud-model/rollout",
                    json={**plan, "alpha": 2, "stages": [{"share": 0}]},
                    timeout=30,
                ),
                422,
            ),
        }
        results: dict[str, Any] = {}
        for name, (call, status) in calls.items():
            samples = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                answer = call()
                samples.append((time.perf_counter() - start) * 1000)
                if answer.status_code != status:
                    raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
            results[name] = percentiles(samples)
    for name, figures in results.items():
        print(f"{name:>20}: p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:6.2f} ms")


if __name__ == "__main__":
    main()

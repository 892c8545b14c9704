"""Benchmark: from the breach showing in the stored data to every connected SDK serving the control.

Issue 6 target: at most the controller interval + 2 s.

Processes, all on 127.0.0.1: the flag server (``rollwise_server.testing.ServerProcess``, a
fresh SQLite database, ``ROLLWISE_CONTROLLER_INTERVAL`` = ``--interval``, its controller loop
running as in production), and this process holding ``--clients`` (5) online
``rollwise.Client`` instances (streaming, each with its own connection and cache directory).

Each trial uses a new flag (one rule splitting 50/50 between ``v1``, the control, and ``v2``,
the candidate) with a rollout plan: one stage at share 0.5 that cannot end by itself (1 h
minimum), a binary guardrail ``converted`` (harm = decrease, tolerance 0), ``outcome_delay``
0 s (so outcomes just stored count at the next look), alpha 0.05. The rollout is started
through the admin API; the bench waits until every client serves ``v2`` to a probe unit of
the candidate arm. It then posts, with an SDK key, a batch of 1000 exposures (500 units per
arm, flag version of the stage) to ``POST /api/v1/sdk/exposures`` and their 1000 outcomes
(control 60% converted, candidate 10%) to ``POST /api/v1/sdk/events``. ``t0`` is taken when
the second POST has returned 200: from then on the stored data shows the breach. The bench
then calls ``variant()`` on every client in a loop (about every 1 ms) until each serves ``v1``
to the probe unit; a trial's time is the slowest client's (``time.monotonic``, one process).

The trials start at random phases of the controller's cycle (random 0-interval wait before
the ingestion), so the figure includes the wait for the next round (uniform over the
interval), the round itself, the flag change and the push to the SDKs' streams. After each
trial the rollout's state is checked: rolled back, by the controller, on the guardrail.

Reported per interval: p50 / p90 / p99 / max / mean over ``--trials`` trials (nearest rank;
with 10-20 trials p99 is the max), and the time to the server's rollback record
(``ended_at``, server clock, same machine) for reference. Exit 1 if a max exceeds the target.

Run: ``cd benchmarks && ../.venv/bin/python bench_rollout_rollback.py [--intervals 1 10]
[--trials 12] [--clients 5] [--out results/rollout-rollback-DATE.json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

import rollwise
from bench_rollout_common import CANDIDATE, CONTROL, ENV, catalogue_entry, flag_body, plan_body
from bench_sdk_common import (
    TIMEOUT,
    admin_session,
    machine_meta,
    percentiles,
    running_server,
    sdk_token,
)
from rollwise_server.rollouts.evidence import iso

METRIC = "converted"
ARM_UNITS = 500
PLAN = plan_body(
    [{"share": 0.5, "min_duration": "1h", "min_units": 1_000_000}],
    [{"metric": METRIC, "kind": "binary", "harm": "decrease"}],
    outcome_delay="0s",
)


def probe_unit(client: rollwise.Client, flag: str) -> str:
    for i in range(10_000):
        unit = f"probe-{i}"
        if client.variant(flag, {"user_id": unit}) == CANDIDATE:
            return unit
    raise RuntimeError("no unit in the candidate arm")


def wait_all(
    clients: list[rollwise.Client], flag: str, unit: str, want: str | set[str], timeout: float
) -> list[float]:
    """``time.monotonic()`` at which each client first served ``want`` (one of) to ``unit``."""
    wanted = {want} if isinstance(want, str) else want
    seen: list[float | None] = [None] * len(clients)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, client in enumerate(clients):
            if seen[i] is None and client.variant(flag, {"user_id": unit}) in wanted:
                seen[i] = time.monotonic()
        if all(s is not None for s in seen):
            return [float(s) for s in seen]  # type: ignore[arg-type]
        time.sleep(0.001)
    raise TimeoutError(f"not every client served {want} within {timeout} s: {seen}")


def breach_batch(flag: str, version: int, trial: int) -> tuple[list[dict[str, Any]], ...]:
    rng = random.Random(trial)
    now = time.time()
    exposures, outcomes = [], []
    for arm, rate in ((CONTROL, 0.6), (CANDIDATE, 0.1)):
        for i in range(ARM_UNITS):
            unit = f"t{trial}-{arm}-{i}"
            ts = now - 0.3 + i / ARM_UNITS * 0.1  # after the rollout's start
            exposures.append(
                {
                    "id": str(uuid.uuid4()),
                    "ts": iso(ts),
                    "flag": flag,
                    "flag_version": version,
                    "variant": arm,
                    "rule": "split",
                    "unit_type": "user_id",
                    "unit": unit,
                    "attrs": {},
                }
            )
            outcomes.append(
                {
                    "id": str(uuid.uuid4()),
                    "ts": iso(ts + 0.1),
                    "metric": METRIC,
                    "unit_type": "user_id",
                    "unit": unit,
                    "value": 1.0 if rng.random() < rate else 0.0,
                }
            )
    return exposures, outcomes


def trial(
    server: Any,
    admin: requests.Session,
    ingest: requests.Session,
    clients: list[rollwise.Client],
    interval: float,
    n: int,
) -> dict[str, Any]:
    flag = f"rollback-{int(interval * 1000)}-{n}"
    base = f"{server.url}/api/v1/envs/{ENV}/flags"
    admin.post(base, json={"key": flag, **flag_body(flag)}, timeout=TIMEOUT).raise_for_status()
    url = f"{base}/{flag}/rollout"
    for guardrail in PLAN["guardrails"]:  # the catalogue the plan is checked against
        metric = {"key": guardrail["metric"], **catalogue_entry(guardrail)}
        admin.post(f"{server.url}/api/v1/envs/{ENV}/metrics", json=metric, timeout=TIMEOUT)
    admin.put(url, json=PLAN, timeout=TIMEOUT).raise_for_status()
    state = admin.post(f"{url}/start", timeout=TIMEOUT)
    state.raise_for_status()
    version = int(admin.get(url, timeout=TIMEOUT).json()["state"]["stage_flag_version"])
    # every client has the stage's rules before a probe: a client still on the version before
    # the start serves the control to every probe, and those exposures would dilute the test
    revision = int(requests.get(f"{server.url}/api/v1/sdk/rules", headers=ingest.headers,
                                timeout=TIMEOUT).headers["ETag"].strip('W/"'))  # fmt: skip
    deadline = time.monotonic() + 10
    while any((c.status().revision or 0) < revision for c in clients):
        if time.monotonic() > deadline:
            raise TimeoutError("the clients did not get the rollout's first stage")
        time.sleep(0.001)
    unit = probe_unit(clients[0], flag)
    wait_all(clients, flag, unit, CANDIDATE, 10)
    time.sleep(0.5 + random.uniform(0, interval))  # a random phase of the controller's cycle
    exposures, outcomes = breach_batch(flag, version, n)
    sdk = f"{server.url}/api/v1/sdk"
    response = ingest.post(f"{sdk}/exposures", json={"events": exposures}, timeout=TIMEOUT)
    response.raise_for_status()
    if not (response.json()["accepted"] == len(exposures)):
        raise RuntimeError(response.json())
    response = ingest.post(f"{sdk}/events", json={"events": outcomes}, timeout=TIMEOUT)
    response.raise_for_status()
    t0 = time.monotonic()
    t0_wall = time.time()
    if not (response.json()["accepted"] == len(outcomes)):
        raise RuntimeError(response.json())
    try:
        seen = wait_all(clients, flag, unit, CONTROL, 10 * interval + 30)
    except TimeoutError:
        print(json.dumps(admin.get(url, timeout=TIMEOUT).json(), indent=1)[:3000], file=sys.stderr)
        raise
    rollout = admin.get(url, timeout=TIMEOUT).json()["state"]
    if not (rollout["status"] == "rolled_back"):
        raise RuntimeError(rollout)
    if "guardrail" not in rollout["end_reason"]:
        raise RuntimeError(rollout["end_reason"])
    return {
        "flag": flag,
        "seconds": max(seen) - t0,
        "per_client": [round(s - t0, 4) for s in seen],
        "rollback_record_after_s": round(float(rollout["ended_at"]) - t0_wall, 4),
        "reason": rollout["end_reason"],
    }


def run_interval(interval: float, trials: int, n_clients: int) -> dict[str, Any]:
    env = {"ROLLWISE_CONTROLLER_INTERVAL": str(interval)}
    with running_server(**env) as (server, tmp):
        admin = admin_session(server)
        key = sdk_token(server)
        ingest = requests.Session()
        ingest.headers["Authorization"] = f"Bearer {key}"
        clients = [
            rollwise.Client(
                server.url, sdk_token(server), cache_dir=tmp / f"c{i}", flush_interval=0.2
            )
            for i in range(n_clients)
        ]
        try:
            for client in clients:
                if not (client.wait_until_ready(10)):
                    raise RuntimeError("check failed: client.wait_until_ready(10)")
            results = []
            for n in range(trials):
                result = trial(server, admin, ingest, clients, interval, n)
                results.append(result)
                print(
                    f"  interval {interval:g} s trial {n + 1}/{trials}: {result['seconds']:.3f} s",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            for client in clients:
                client.close()
    times = [r["seconds"] for r in results]
    summary = percentiles(times)
    target = interval + 2.0
    return {
        "interval_s": interval,
        "clients": n_clients,
        "target_s": target,
        "seconds": summary,
        "rollback_record_after_s": percentiles([r["rollback_record_after_s"] for r in results]),
        "meets_target": summary["max"] <= target,
        "trials": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {
        "benchmark": "rollout-rollback",
        "meta": machine_meta(),
        "params": {
            "trials": args.trials,
            "clients": args.clients,
            "arm_units": ARM_UNITS,
            "plan": PLAN,
        },
        "results": [],
    }
    ok = True
    for interval in args.intervals:
        result = run_interval(interval, args.trials, args.clients)
        out["results"].append(result)
        s = result["seconds"]
        print(
            f"interval {interval:g} s, {args.clients} SDKs, {s['n']} trials: breach stored -> "
            f"all SDKs serve control p50 {s['p50']:.3f} s, p99 {s['p99']:.3f} s, max "
            f"{s['max']:.3f} s (target <= {result['target_s']:g} s: "
            f"{'met' if result['meets_target'] else 'MISSED'})"
        )
        ok &= result["meets_target"]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

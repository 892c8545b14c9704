"""Benchmark: false rollbacks of simulated A/A rollouts through the whole staged plan (issue 6).

What it measures: ``--runs`` (200) rollouts in which the candidate is identical to the control,
each driven through the real controller (``Controller.round()``: the evidence gathered by SQL
with ``reduce_sql``, the always-valid tests, ``decide``, the transitions with their flag
versions) on a fresh SQLite store made by the server's migrations. Target (issue 6): at most 5%
of the runs end rolled back.

Each run: a flag, the plan below (4 stages 5% / 25% / 50% / 100%, each ``min_duration`` 10m and
``min_units`` per arm (250 / 1250 / 3000 / 5000 for a ``--batch`` of 1000, scaled with
it), counted since the rollout started; a binary guardrail ``converted``, harm
= decrease, tolerance 0, with a ``country`` fairness dimension over 3 countries; SRM check on;
alpha 0.05; the default tuning and outcome delay), started at a fixed time. A fake clock then
advances 10 minutes per look; before each look ``--batch`` new units are exposed, each to the
candidate with the current stage's share (independent Bernoulli draws, as a hash split does),
with the flag version of the current stage (so the SRM check sees them), a country drawn
uniformly from 3, and one outcome each (1 with probability ``--rate`` in both arms) 30 s after
its exposure, all inside the look's window and before ``now - outcome_delay``. The rows go
into the server's tables with ``store.ingest`` (no HTTP; the SDK's wire path is measured
elsewhere). A run ends when the controller completes or rolls back the rollout (or after
``--max-looks``). Runs are spread over ``--workers`` processes; each run has its own seed.

Reported: runs rolled back / completed / unfinished, the false-rollback rate with its exact
(Clopper-Pearson) and Wilson 95% intervals, the reasons of the rollbacks, looks and units per
run, wall time. Exit 1 if the rate exceeds 5%.

``--scenario better`` and ``--scenario cell-harm`` (issue 11) run the same loop with a fraud
guardrail instead: ``fraud_missed`` (lower is better) by amount band (edges 100, 500, 1000,
5000; amounts log-normal, median ~665), by country (DE, FR, NL declared, 30/30/40%) and by
their crossing (6 x 4 = 24 cells with ``missing`` and ``(other)``), control
miss rates 2/5/10/20/30% by band. ``better``: the candidate misses 10, 20, 30 or 40% less
(relative, by run) everywhere, and a rollback is false (target <= 5%). ``cell-harm``: the
candidate misses 30% less everywhere but twice as much in amount [1000, 5000) x DE (about 10%
of units); target: >= 95% of runs rolled back naming the cell.

Run: ``cd benchmarks && ../.venv/bin/python bench_rollout_aa.py [--runs 200] [--workers 2]
[--batch 1000] [--rate 0.2] [--scenario aa|better|cell-harm]
[--out results/rollout-aa-DATE.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench_rollout_common import (
    CANDIDATE,
    CONTROL,
    ENV,
    binomial_ci,
    clopper_pearson,
    plan_body,
    setup_rollout,
)
from bench_sdk_common import machine_meta
from rollwise_server.rollouts.controller import Controller
from rollwise_server.rollouts.evidence import iso
from rollwise_server.storage import open_store
from rollwise_server.webhooks import Webhooks

TARGET = 0.05
TMP_DIR = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 (the store in RAM)
FLAG = "aa-model"
METRIC = "converted"
START = 1_793_520_000.0  # 2026-11-01T00:00:00Z
STEP = 600.0
COUNTRIES = ("DE", "FR", "NL")
STAGES = [
    {"share": 0.05, "min_duration": "10m", "min_units": 250},
    {"share": 0.25, "min_duration": "10m", "min_units": 1250},
    {"share": 0.50, "min_duration": "10m", "min_units": 3000},
    {"share": 1.00, "min_duration": "10m", "min_units": 5000},
]


def stages(batch: int) -> list[dict[str, Any]]:
    """``STAGES`` with ``min_units`` scaled to ``batch`` new units per look (given for 1000)."""
    return [{**s, "min_units": int(s["min_units"]) * batch // 1000} for s in STAGES]


GUARDRAILS = [{"metric": METRIC, "kind": "binary", "harm": "decrease", "cohorts": ["country"]}]

# --- the fraud scenarios of issue 11: a miss rate by amount band, cohorts by band and country ---
MISSED = "fraud_missed"
EDGES = [100, 500, 1000, 5000]
MISS_RATES = [0.02, 0.05, 0.1, 0.2, 0.3]  # the control's miss rate in each amount band
WEIGHTS = [0.3, 0.3, 0.4]  # DE, FR, NL
CELL = (3, 0)  # amount [1000, 5000) in DE: about 10% of the units
FAIRNESS = [
    {"metric": MISSED, "kind": "binary", "harm": "increase", "cohorts": ["amount", "country"],
     "bands": {"amount": EDGES}, "values": {"country": list(COUNTRIES)},
     "crossings": [["amount", "country"]]},
]  # fmt: skip
SCENARIOS = {
    "aa": "the candidate is the control (both convert at --rate): a rollback is false",
    "better": "the candidate misses 10-40% less fraud (relative, by run) in every band and "
    "country: a rollback is false",
    "cell-harm": "the candidate misses twice as much fraud in one cell (amount [1000, 5000) in "
    "DE, ~10% of units) and 30% less elsewhere: it must roll back",
}


def _fraud_outcomes(
    rng: np.random.Generator, scenario: str, run: int, candidate: np.ndarray, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Country index, amount and missed (0/1) of ``batch`` units."""
    country = rng.choice(len(COUNTRIES), size=batch, p=WEIGHTS)
    amount = rng.lognormal(6.5, 1.2, batch)
    band = np.searchsorted(np.asarray(EDGES, dtype=float), amount, side="right")
    rate = np.asarray(MISS_RATES)[band]
    better = 0.1 + 0.1 * (run % 4) if scenario == "better" else 0.3
    treated = np.where(candidate, rate * (1 - better), rate)
    if scenario == "cell-harm":
        cell = (band == CELL[0]) & (country == CELL[1])
        treated = np.where(candidate & cell, rate * 2.0, treated)
    return country, amount, rng.random(batch) < treated


def guardrails(scenario: str) -> list[dict[str, Any]]:
    return GUARDRAILS if scenario == "aa" else FAIRNESS


def one_run(args: tuple[int, int, float, int, int, str]) -> dict[str, Any]:
    run, batch, rate, max_looks, seed, scenario = args
    rng = np.random.default_rng([seed, run])
    began = time.perf_counter()
    metric = METRIC if scenario == "aa" else MISSED
    with tempfile.TemporaryDirectory(prefix="rollwise-aa-", dir=TMP_DIR) as tmp:
        store = open_store(str(Path(tmp) / "aa.db"))
        try:
            plan = plan_body(stages(batch), guardrails(scenario))
            setup_rollout(store, FLAG, plan, now=START)
            clock = [START]
            controller = Controller(
                store, Webhooks([], ""), lambda e, r: None, 1.0, clock=lambda: clock[0]
            )
            units = 0
            looks = 0
            record = store.get_rollout(ENV, FLAG)
            if not (record is not None):
                raise RuntimeError("check failed: record is not None")
            while record.state.get("status") == "running" and looks < max_looks:
                state = record.state
                share = float(STAGES[int(state["stage"]) - 1]["share"])  # stages count from 1
                version = int(state["stage_flag_version"])
                candidate = rng.random(batch) < share
                if scenario == "aa":
                    success = rng.random(batch) < rate
                    country = rng.integers(0, len(COUNTRIES), batch)
                    amount = np.zeros(batch)
                else:
                    country, amount, success = _fraud_outcomes(rng, scenario, run, candidate, batch)
                offsets = np.sort(rng.uniform(1.0, STEP - 120.0, batch))
                received = iso(clock[0] + STEP)
                exposures, outcomes = [], []
                for i in range(batch):
                    unit = f"u{units + i}"
                    ts = clock[0] + float(offsets[i])
                    variant = CANDIDATE if candidate[i] else CONTROL
                    attrs = json.dumps(
                        {"country": COUNTRIES[int(country[i])], "amount": float(amount[i])}
                    )
                    exposures.append(
                        (
                            f"e{units + i}",
                            ENV,
                            iso(ts),
                            FLAG,
                            version,
                            variant,
                            "split",
                            "user_id",
                            unit,
                            attrs,
                            received,
                        )
                    )
                    outcomes.append(
                        (
                            f"o{units + i}",
                            ENV,
                            iso(ts + 30.0),
                            metric,
                            "user_id",
                            unit,
                            1.0 if success[i] else 0.0,
                            "{}",
                            received,
                        )
                    )
                store.ingest("exposures", exposures)
                store.ingest("outcomes", outcomes)
                units += batch
                clock[0] += STEP
                asyncio.run(controller.round())
                looks += 1
                record = store.get_rollout(ENV, FLAG)
                if not (record is not None):
                    raise RuntimeError("check failed: record is not None")
            state = record.state
            return {
                "run": run,
                "status": state.get("status"),
                "stage": int(state.get("stage", 1)),
                "reason": state.get("end_reason"),
                "looks": looks,
                "units": units,
                "seconds": time.perf_counter() - began,
            }
        finally:
            store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="new units per look")
    parser.add_argument("--rate", type=float, default=0.2, help="outcome rate, both arms")
    parser.add_argument("--max-looks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="aa")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args()
    meta = machine_meta()
    began = time.perf_counter()
    jobs = [
        (run, args.batch, args.rate, args.max_looks, args.seed, args.scenario)
        for run in range(args.runs)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        runs = []
        for result in pool.imap_unordered(one_run, jobs):
            runs.append(result)
            if len(runs) % 20 == 0:
                print(f"  {len(runs)}/{args.runs} runs", file=sys.stderr, flush=True)
    wall = time.perf_counter() - began
    runs.sort(key=lambda r: r["run"])
    statuses = Counter(r["status"] for r in runs)
    rolled_back = statuses.get("rolled_back", 0)
    rate = rolled_back / len(runs)
    must_roll_back = args.scenario == "cell-harm"
    cell = ("amount=[1000, 5000)", "country=DE")
    named = sum(
        1
        for r in runs
        if r["status"] == "rolled_back" and all(part in (r["reason"] or "") for part in cell)
    )
    meets = named / len(runs) >= 0.95 if must_roll_back else rate <= TARGET
    exact = clopper_pearson(rolled_back, len(runs))
    wilson = binomial_ci(rolled_back, len(runs))
    reasons = Counter(
        (r["reason"] or "").split(":")[0] for r in runs if r["status"] == "rolled_back"
    )
    result = {
        "benchmark": "rollout-aa",
        "meta": meta,
        "params": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "stages": stages(args.batch),
            "guardrails": guardrails(args.scenario),
            "scenario": SCENARIOS[args.scenario],
            "alpha": 0.05,
            "look_every_s": STEP,
        },
        "runs": len(runs),
        "statuses": dict(statuses),
        "false_rollback_rate": rate,
        "ci95_clopper_pearson": exact,
        "ci95_wilson": wilson,
        "target": ">= 95% rolled back naming the cell" if must_roll_back else TARGET,
        "rolled_back_naming_the_cell": named,
        "meets_target": meets,
        "rollback_reasons": dict(reasons),
        "rollback_stages": dict(Counter(r["stage"] for r in runs if r["status"] == "rolled_back")),
        "looks_per_run": {
            "min": min(r["looks"] for r in runs),
            "mean": sum(r["looks"] for r in runs) / len(runs),
            "max": max(r["looks"] for r in runs),
        },
        "units_per_run_mean": sum(r["units"] for r in runs) / len(runs),
        "wall_seconds": round(wall, 1),
        "per_run": runs,
    }
    print(
        f"{args.scenario}: {len(runs)} runs, {dict(statuses)}; rollbacks {rolled_back}/"
        f"{len(runs)} = {rate:.1%} (95% CI exact [{exact[0]:.1%}, {exact[1]:.1%}], Wilson "
        f"[{wilson[0]:.1%}, {wilson[1]:.1%}]); naming the cell {named}; "
        f"target {result['target']}; wall {wall:.0f} s"
    )
    print(f"  rollback reasons: {dict(reasons)}")
    print(f"  looks per run: {result['looks_per_run']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())

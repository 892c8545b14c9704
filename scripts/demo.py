"""The rollwise demo: a fraud model rolled out stage by stage, and rolled back on a fairness harm.

Run with ``make demo``. It starts the flag server on SQLite in a temporary directory, creates a
``fraud-model`` flag with a staged rollout plan and guardrails, and sends simulated card
transactions through the real SDK (exposures and outcomes go to the server). The rollout
controller evaluates the always-valid statistics every second.

- Scenario 0: a shadow stage. The candidate runs beside the served model on the same
  transactions (``client.shadow``), serving no one; it is wrong more often, and the paired
  comparison ends the rollout before any customer is served it.
- Scenario 1: the candidate model catches more fraud overall but much less in the Netherlands.
  The controller advances the first stages, then rolls back on the fairness guardrail.
- Scenario 2: a good candidate goes all the way to 100%.

It prints the timeline and the final cohort report. ``--keep`` leaves the server running.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

import rollwise
from rollwise.analysis.fairness import cohort_effects
from rollwise.analysis.reduce import reduce_sql
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, live_server

COUNTRIES = {"DE": 0.3, "FR": 0.3, "NL": 0.2, "ES": 0.2}
BASE_RATE = 0.50  # the share of fraudulent transactions the control model catches

SEGMENT = {
    "key": "eu",
    "conditions": [{"attribute": "country", "operator": "in", "values": list(COUNTRIES)}],
}
FLAG = {
    "key": "fraud-model",
    "description": "Which fraud model scores card transactions",
    "variants": {
        "v1": {"payload": {"model": "fraud-2025-06"}},
        "v2": {"payload": {"model": "fraud-2025-11"}},
    },
    "off_variant": "v1",
    "default_variant": "v1",
    "cohort_attributes": ["country", "amount"],
    "shadow": {"variant": "v2", "share": 0.5},  # half the users also run v2, off the request path
    "rules": [
        {
            "id": "eu-rollout",
            "conditions": [{"segment": "eu"}],
            "serve": {
                "split": [{"variant": "v2", "weight": 0}, {"variant": "v1", "weight": 10000}]
            },
        }
    ],
}
METRIC = {
    "key": "fraud_caught",
    "kind": "binary",
    "direction": "higher_is_better",
    "description": "the model flagged a transaction that was fraud",
    "owner": "risk-team",
}
TRUTH = {
    "key": "is_fraud",
    "kind": "binary",
    "direction": "higher_is_better",
    "description": "the transaction was fraud (confirmed by chargeback or review)",
    "owner": "risk-team",
}
SHADOW_PLAN = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-rollout",
    "stages": [
        {
            "min_duration": "2s",
            "min_units": 400,
            "shadow": {
                "agreement": 0.6,
                "latency_p99_ms": 50,
                "scores": [
                    {"metric": "is_fraud", "rule": "match", "positive": "fraud",
                     "tolerance": -0.02, "cohorts": ["country"]}
                ],
            },
        },
        {"share": 0.05, "min_duration": "2s", "min_units": 150},
        {"share": 1.00, "min_duration": "2s", "min_units": 1000},
    ],
    "alpha": 0.05,
    "outcome_delay": "1s",
}  # fmt: skip
PLAN = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-rollout",
    "stages": [
        {"share": 0.05, "min_duration": "2s", "min_units": 150},
        {"share": 0.25, "min_duration": "2s", "min_units": 600},
        {"share": 0.50, "min_duration": "2s", "min_units": 1500},
        {"share": 1.00, "min_duration": "2s", "min_units": 2500},
    ],
    "guardrails": [
        {"metric": "fraud_caught", "kind": "binary", "harm": "decrease", "cohorts": ["country"]}
    ],
    "alpha": 0.05,
    "tuning": 20000,
    "outcome_delay": "3s",
}


def catch_rate(variant: str, country: str, scenario: int) -> float:
    if variant == "v1":
        return BASE_RATE
    if scenario == 1 and country == "NL":
        return 0.30  # much worse for one country
    return 0.62  # better everywhere else


def setup(server: LiveServer) -> tuple[requests.Session, str]:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=FLAG).raise_for_status()
    admin.post(f"{base}/metrics", json=METRIC).raise_for_status()  # guardrails name it
    admin.post(f"{base}/metrics", json=TRUTH).raise_for_status()  # the shadow stage scores on it
    return admin, f"{base}/flags/fraud-model/rollout"


def print_decisions(
    admin: requests.Session, server: LiveServer, started: float, seen_audit: set[int]
) -> None:
    """The rollout's new audit entries: each decision, its actor, reason and evidence."""
    query = {"resource_type": "rollout", "resource_key": "fraud-model", "limit": 50}
    entries = admin.get(f"{server.url}/api/v1/audit", params=query).json()["entries"]
    for entry in reversed(entries):
        if entry["id"] in seen_audit or not entry["action"].startswith("rollout."):
            continue
        seen_audit.add(entry["id"])
        if entry["action"] == "rollout.plan":
            continue
        elapsed = time.monotonic() - started
        share = entry["details"].get("share")
        share_text = f" -> candidate at {share:.0%}" if share is not None else ""
        who = f"{entry['action']:<18} by {entry['actor']:<12}"
        print(f"  [{elapsed:5.1f}s] {who}{share_text}  {entry['reason'] or ''}")
        evidence = entry["details"].get("evidence") or {}
        shadow = evidence.get("shadow")
        if shadow:
            agreement, p99 = shadow["agreement"] or 0.0, shadow["latency_p99_ms"] or 0.0
            print(f"           {shadow['paired_units']} paired units, agreement "
                  f"{agreement:.1%}, candidate p99 {p99:.2f} ms")  # fmt: skip
        for finding in [*(shadow or {}).get("findings", []), *evidence.get("findings", [])][:3]:
            what = f"{finding['metric']} {finding['scope']:<16}"
            if finding["verdict"] == "insufficient data":
                print(f"           {what} insufficient data yet")
                continue
            interval = f"[{finding['ci_low']:+.3f}, {finding['ci_high']:+.3f}]"
            effect = f"effect {finding['effect']:+.3f}"
            reading = f"always-valid CI {interval}  {finding['verdict']}"
            print(f"           {what} {effect}  {reading}")


def shadow_scenario(
    server: LiveServer, directory: Path, budget: float, seen_audit: set[int]
) -> dict[str, Any]:
    """Scenario 0: the candidate is scored beside the control on the same transactions and
    rejected before exposure: it is right 72% of the time where the served model is right 85%."""
    admin, url = setup(server)
    admin.put(url, json={**SHADOW_PLAN, "reason": "shadow fraud-2025-11 first"}).raise_for_status()
    print("\n=== Scenario 0: a shadow stage rejects a worse candidate before exposure ===")
    admin.post(f"{url}/start", json={"reason": "scenario 0"}).raise_for_status()
    started = time.monotonic()
    key = server.token("sdk", env="production", name="checkout-service-0")
    client = rollwise.Client(server.url, key, cache_dir=directory / "cache-0", flush_interval=0.2)
    client.wait_until_ready(10)
    rng = random.Random(0)
    countries, weights = list(COUNTRIES), list(COUNTRIES.values())
    right = {"v1": 0.85, "v2": 0.72}
    unit = 0
    state: dict[str, Any] = {}
    while time.monotonic() - started < budget:
        for _ in range(200):
            unit += 1
            country = rng.choices(countries, weights)[0]
            user = f"s0-user-{unit}"
            fraud = rng.random() < 0.3
            answers = {
                v: ("fraud" if fraud == (rng.random() < p) else "ok") for v, p in right.items()
            }
            context = {"user_id": user, "country": country, "amount": rng.randint(5, 900)}
            with client.shadow("fraud-model", context) as run:
                live, candidate = answers[run.variant], answers.get(run.shadow_variant or "")
                run.live(lambda answer=live: answer)  # what the served model says
                run.candidate(lambda answer=candidate: answer)  # beside it, serving no one
            client.track("is_fraud", user, fraud)
        time.sleep(0.05)
        state = admin.get(url).json()["state"]
        print_decisions(admin, server, started, seen_audit)
        stage = state.get("stage", 1)
        print(f"  ... {unit:>7,} transactions, stage {stage}, {state.get('status')}  ", end="\r",
              flush=True)  # fmt: skip
        if state.get("status") != "running" or stage != 1:
            break
    print(" " * 80, end="\r")
    client.flush(30)
    client.close()
    store = open_store(server.db)
    try:
        exposed = (
            store.reader()
            .execute(
                "SELECT count(DISTINCT unit) FROM exposures"
                " WHERE flag = 'fraud-model' AND variant = 'v2'"
            )
            .fetchone()[0]
        )
    finally:
        store.close()
    print(f"  customers served v2 during the shadow stage: {exposed}")
    return state


def run_scenario(
    scenario: int, server: LiveServer, directory: Path, budget: float, seen_audit: set[int]
) -> dict[str, Any]:
    admin = server.session()  # the flag of scenario 0; a fresh plan for each scenario
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model/rollout"
    reason = {1: "ship fraud-2025-11", 2: "the fixed model"}[scenario]
    admin.put(url, json={**PLAN, "reason": reason}).raise_for_status()
    title = {1: "better overall, worse for NL", 2: "a good candidate"}[scenario]
    print(f"\n=== Scenario {scenario}: {title} ===")
    admin.post(f"{url}/start", json={"reason": f"scenario {scenario}"}).raise_for_status()
    started = time.monotonic()
    key = server.token("sdk", env="production", name=f"checkout-service-{scenario}")
    client = rollwise.Client(
        server.url, key, cache_dir=directory / f"cache-{scenario}", flush_interval=0.2
    )
    client.wait_until_ready(10)
    rng = random.Random(scenario)
    countries, weights = list(COUNTRIES), list(COUNTRIES.values())
    unit = 0
    state: dict[str, Any] = {}
    while time.monotonic() - started < budget:
        for _ in range(400):
            unit += 1
            country = rng.choices(countries, weights)[0]
            user = f"s{scenario}-user-{unit}"
            variant = client.variant(
                "fraud-model", {"user_id": user, "country": country, "amount": rng.randint(5, 900)}
            )
            client.track(
                "fraud_caught", user, rng.random() < catch_rate(variant or "v1", country, scenario)
            )
        time.sleep(0.05)
        state = admin.get(url).json()["state"]
        print_decisions(admin, server, started, seen_audit)
        stage = state.get("stage", 1)
        progress = f"{unit:>7,} transactions, stage {stage}/{len(PLAN['stages'])}"
        print(f"  ... {progress}, {state.get('status')}  ", end="\r", flush=True)
        if state.get("status") in ("rolled_back", "completed"):
            break
    print(" " * 80, end="\r")
    client.flush(30)
    client.close()
    return state


def cohort_report(server: LiveServer) -> None:
    store = open_store(server.db)
    try:
        result = reduce_sql(
            store.reader(),
            "fraud-model",
            "fraud_caught",
            env="production",
            kind="binary",
            cohort="country",
        )
        cells = {
            c: (result.stats("v1", c), result.stats("v2", c))
            for c in result.cohorts
            if c is not None
        }
        effects = cohort_effects(cells, alpha=0.05, harm_direction="decrease", tuning=20000)
    finally:
        store.close()
    print("\nFinal cohort report (fraud caught, candidate v2 vs control v1;")
    print("always-valid intervals at alpha/K per cohort):")
    header = f"{'country':8}{'n v1':>8}{'n v2':>8}{'v1':>8}{'v2':>8}{'effect':>9}"
    print(f"  {header}   {'interval':<20} verdict")
    for country, comparison in sorted(effects.effects.items()):
        low, high = comparison.ci_low, comparison.ci_high
        verdict = "harm" if high < 0 else ("improvement" if low > 0 else "no difference shown")
        counts = f"{country:8}{comparison.n_control:>8,}{comparison.n_candidate:>8,}"
        means = f"{comparison.control_mean:>8.3f}{comparison.candidate_mean:>8.3f}"
        interval = f"[{low:+.3f}, {high:+.3f}]"
        print(f"  {counts}{means}{comparison.effect:>+9.3f}   {interval:<20} {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="leave the server running at the end")
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per scenario at most")
    args = parser.parse_args()
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="rollwise-demo-") as tmp,
        live_server(Path(tmp), controller_interval=1.0) as server,
    ):
        print(f"rollwise {rollwise.__version__} demo: server at {server.url} (SQLite in {tmp})")
        seen: set[int] = set()
        shadowed = shadow_scenario(server, Path(tmp), args.budget, seen)
        first = run_scenario(1, server, Path(tmp), args.budget, seen)
        cohort_report(server)
        second = run_scenario(2, server, Path(tmp), args.budget, seen)
        ok = (shadowed.get("status") == "rolled_back" and first.get("status") == "rolled_back"
              and second.get("status") == "completed")  # fmt: skip
        print(f"\nScenario 0 ended {shadowed.get('status')}: {shadowed.get('end_reason')}")
        print(f"Scenario 1 ended {first.get('status')}: {first.get('end_reason')}")
        print(f"Scenario 2 ended {second.get('status')}")
        print(f"Demo finished in {time.monotonic() - began:.0f} s.")
        if args.keep:
            print(f"\nThe server keeps running at {server.url}; admin token: {server.admin_token}")
            print(f"Console: {server.url}/ui  (sign in with the admin token)")
            print(f"Try: ROLLWISE_URL={server.url} ROLLWISE_TOKEN={server.admin_token} \\")
            print("       rollwise rollouts status fraud-model --env production   (Ctrl-C to stop)")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The incremental tally equals the full reduction at every look, on random event streams."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from rollwise.analysis.reduce import ReductionResult, reduce_spec
from rollwise.ids import event_id
from rollwise_server.rollouts.evidence import iso
from rollwise_server.rollouts.plan import parse_plan
from rollwise_server.rollouts.tally import Snapshot, look, slot_specs
from rollwise_server.storage import open_store
from tests.rollouts.test_plan import FLAG

START = 1_795_000_000.0
PLAN: dict[str, Any] = {
    "control": "v1", "candidate": "v2", "rule": "eu-small", "stages": [{"share": 0.5}],
    "guardrails": [
        {"metric": "caught", "kind": "binary", "cohorts": ["country", "amount"],
         "bands": {"amount": [0, 100]}},
        {"metric": "latency", "kind": "mean", "harm": "increase"},
        {"metric": "errors", "kind": "ratio", "denominator": "requests", "harm": "increase"},
        {"metric": "clicks", "kind": "count", "cohorts": ["country"]},
    ],
    "attribution_window": "1h", "outcome_delay": "5m",
}  # fmt: skip


def _close(a: ReductionResult, b: ReductionResult) -> bool:
    if a.multiple_variants != b.multiple_variants or len(a.cells) != len(b.cells):
        return False
    for x, y in zip(a.cells, b.cells, strict=True):
        if (x.variant, x.cohort, x.units, x.stats.n) != (y.variant, y.cohort, y.units, y.stats.n):
            return False
        for field in ("total", "total_sq", "den_total", "den_total_sq", "cross"):
            left, right = getattr(x.stats, field), getattr(y.stats, field)
            if left != pytest.approx(right, rel=1e-9, abs=1e-6):
                return False
    return True


class Traffic:
    """Random exposures and outcomes, some late (older than the last look's horizon), some
    before the rollout, some units in both variants, ids of a few events sent twice."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - simulated traffic

    def batch(self, now: float) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rng, exposures, outcomes = self.rng, [], []
        for _ in range(rng.randrange(20, 80)):
            number = rng.randrange(120)
            unit = f"u{number}"
            ts = now - rng.choice([0, 30, 200, 400, 900, 4000]) - rng.random()
            variant = "v2" if (number % 2 or rng.random() < 0.05) else "v1"
            attrs = {"country": rng.choice(["DE", "FR", None]), "amount": rng.uniform(-10, 300)}
            if rng.random() < 0.1:
                del attrs["amount"]
            row = (event_id(ts), "production", iso(ts), "fraud-model", 3, variant, "eu-small",
                   "user_id", unit, json.dumps(attrs), iso(now))  # fmt: skip
            exposures.append(row)
        for _ in range(rng.randrange(20, 120)):
            unit = f"u{rng.randrange(120)}"
            ts = now - rng.choice([0, 30, 600, 3000, 8000]) - rng.random()
            metric = rng.choice(["caught", "latency", "errors", "requests", "clicks", "other"])
            value = rng.choice([0.0, 1.0, rng.uniform(0, 50)])
            outcomes.append((event_id(ts), "production", iso(ts), metric, "user_id", unit,
                             value, "{}", iso(now)))  # fmt: skip
        if exposures and rng.random() < 0.3:
            exposures.append(exposures[0])  # a redelivery: ignored by id
        return exposures, outcomes


@pytest.mark.parametrize("seed", range(6))
def test_the_tally_equals_the_full_reduction_at_every_look(tmp_path: Path, seed: int) -> None:
    plan, problems = parse_plan(PLAN, FLAG)
    assert plan is not None, problems
    store = open_store(str(tmp_path / "t.db"))
    traffic = Traffic(seed)
    since = iso(START)
    try:
        store.ingest("exposures", traffic.batch(START - 100)[0])  # before the rollout
        now = START
        for round_ in range(10):
            if round_ == 6:  # the tally is lost: the next look catches up in bulk
                with store.transaction() as writer:
                    writer.execute("DELETE FROM rollout_tallies")
            now += traffic.rng.choice([10, 60, 400])
            exposures, outcomes = traffic.batch(now)
            store.ingest("exposures", exposures)
            store.ingest("outcomes", outcomes)
            until = iso(now - plan.outcome_delay)
            shown = look(store, plan, "production", "fraud-model", since, until, 1)
            for slot, spec in slot_specs(plan, "production", "fraud-model", since, until):
                full = reduce_spec(store.reader(), spec)
                assert _close(shown.results[slot], full), (slot, shown.results[slot], full)
        assert all(result.units > 20 for result in shown.results.values())  # not vacuous
        assert shown.results[(0, None)].multiple_variants > 0
        assert shown.version_units[3] == {
            variant: n
            for variant, n in store.reader().execute(
                "SELECT variant, count(DISTINCT unit) FROM exposures WHERE flag_version = 3"
                " GROUP BY variant"
            )
        }
    finally:
        store.close()


def test_a_changed_plan_starts_the_tally_again(tmp_path: Path) -> None:
    plan, _ = parse_plan(PLAN, FLAG)
    other, _ = parse_plan({**PLAN, "guardrails": PLAN["guardrails"][:1]}, FLAG)
    assert plan is not None
    assert other is not None
    store = open_store(str(tmp_path / "t.db"))
    traffic = Traffic(99)
    since, now = iso(START), START + 3600
    try:
        for _ in range(3):
            exposures, outcomes = traffic.batch(now)
            store.ingest("exposures", exposures)
            store.ingest("outcomes", outcomes)
            now += 60
            look(store, plan, "production", "fraud-model", since, iso(now - 300), 1)
        shown = look(store, other, "production", "fraud-model", since, iso(now - 300), 1)
        spec = slot_specs(other, "production", "fraud-model", since, iso(now - 300))[0][1]
        assert _close(shown.results[(0, None)], reduce_spec(store.reader(), spec))
    finally:
        store.close()


def test_rollouts_of_one_round_share_a_snapshot(tmp_path: Path) -> None:
    """Two rollouts over the same units and metrics, looked at in one round with one snapshot
    (the new outcomes matched to both rollouts' units once), each equal to its full reduction."""
    plan, _ = parse_plan(PLAN, FLAG)
    assert plan is not None
    store = open_store(str(tmp_path / "t.db"))
    traffic = Traffic(7)
    since, now = iso(START), START
    flags = ("fraud-model", "credit-model")
    try:
        for _ in range(8):
            now += 60
            exposures, outcomes = traffic.batch(now)
            for flag in flags:
                store.ingest("exposures", [(event_id(1.0 * i), *row[1:3], flag, *row[4:])
                                           for i, row in enumerate(exposures)])  # fmt: skip
            store.ingest("outcomes", outcomes)
            snapshot = Snapshot(store)
            until = iso(now - plan.outcome_delay)
            for flag in flags:
                shown = look(store, plan, "production", flag, since, until, 1, snapshot)
                for slot, spec in slot_specs(plan, "production", flag, since, until):
                    full = reduce_spec(store.reader(), spec)
                    assert _close(shown.results[slot], full), (flag, slot)
        assert shown.results[(0, None)].units > 20
    finally:
        store.close()

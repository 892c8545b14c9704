"""The incremental tally equals the full reduction at every look, on random event streams."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from rollwise.analysis.reduce import ReductionResult, reduce_spec
from rollwise.analysis.suffstats import SufficientStats
from rollwise.ids import event_id
from rollwise_server.rollouts.evidence import iso
from rollwise_server.rollouts.plan import parse_plan
from rollwise_server.rollouts.tally import Snapshot, look, slot_specs
from rollwise_server.storage import open_store
from tests.rollouts.test_plan import FLAG

pytestmark = pytest.mark.sqlite_only(
    reason="the incremental tally (on PostgreSQL each look reduces in the database)"
)

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
        for field in ("total", "m2", "den_total", "den_m2", "comoment"):
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


@pytest.mark.slow
def test_the_tally_keeps_the_variance_of_a_large_mean_over_many_rounds(tmp_path: Path) -> None:
    """200,000 units' scores of mean 1e8 and sd 1 arrive over 8 rounds; a tenth of each
    round's units get a second score a round later (their old per-unit mean leaves the tally,
    the new one joins it). At the end each arm's variance is NumPy's two-pass one within 1e-6;
    the raw sums Σx² - (Σx)²/n of the same values are far off."""
    np = pytest.importorskip("numpy")
    plan_json = {
        **PLAN, "guardrails": [{"metric": "score", "kind": "mean", "harm": "increase"}],
    }  # fmt: skip
    plan, problems = parse_plan(plan_json, FLAG)
    assert plan is not None, problems
    rng = np.random.default_rng(12)
    rounds, per_round = 8, 25_000
    scores: dict[int, list[float]] = {}
    store = open_store(str(tmp_path / "t.db"))
    try:
        now = START
        for round_ in range(rounds):
            now += 600
            exposed, received = now - 400, iso(now)
            units = range(round_ * per_round, (round_ + 1) * per_round)
            exposures = [
                (f"e{u}", "production", iso(exposed), "fraud-model", 3, ("v1", "v2")[u % 2],
                 "eu-small", "user_id", f"u{u}", "{}", received)
                for u in units
            ]  # fmt: skip
            outcomes = []
            values = 1e8 + rng.standard_normal(per_round)
            for u, value in zip(units, values, strict=True):
                scores[u] = [float(value)]
                outcomes.append((f"o{u}", "production", iso(exposed + 5), "score", "user_id",
                                 f"u{u}", float(value), "{}", received))  # fmt: skip
            if round_:  # second scores for a tenth of the last round's units
                for u in range((round_ - 1) * per_round, round_ * per_round, 10):
                    value = float(1e8 + rng.standard_normal())
                    scores[u].append(value)
                    outcomes.append((f"p{u}", "production", iso(exposed + 6), "score",
                                     "user_id", f"u{u}", value, "{}", received))  # fmt: skip
            store.ingest("exposures", exposures)
            store.ingest("outcomes", outcomes)
            shown = look(store, plan, "production", "fraud-model", iso(START),
                         iso(now - plan.outcome_delay), 1)  # fmt: skip
        overall = shown.results[(0, None)].overall()
        per_unit = {u: math.fsum(v) / len(v) for u, v in scores.items()}
        for index, variant in enumerate(("v1", "v2")):
            xs = np.array([value for u, value in per_unit.items() if u % 2 == index])
            stats = overall[variant]
            assert stats.n == len(xs) == rounds * per_round // 2
            assert stats.variance == pytest.approx(float(np.var(xs, ddof=1)), rel=1e-6)
            naive = SufficientStats.from_sums(
                n=len(xs), total=float(xs.sum()), total_sq=float((xs * xs).sum()), kind="mean"
            )
            assert abs(naive.variance / float(np.var(xs, ddof=1)) - 1) > 0.1
    finally:
        store.close()


def test_a_tally_stored_as_raw_sums_starts_again(tmp_path: Path) -> None:
    """A tally written before the statistics were centred (its fingerprint has no form; its
    sums hold Σx², not M2) is never read as moments: the next look counts afresh."""
    plan, _ = parse_plan(PLAN, FLAG)
    assert plan is not None
    store = open_store(str(tmp_path / "t.db"))
    traffic = Traffic(5)
    since, now = iso(START), START + 3600
    try:
        for _ in range(2):
            exposures, outcomes = traffic.batch(now)
            store.ingest("exposures", exposures)
            store.ingest("outcomes", outcomes)
            now += 60
            look(store, plan, "production", "fraud-model", since, iso(now - 300), 1)
        (raw,) = store.reader().execute("SELECT body FROM rollout_tallies").fetchone()
        body = json.loads(raw)
        guardrails = [g.to_json() for g in plan.guardrails]
        body["fingerprint"] = json.dumps(
            ["production", "fraud-model", since, plan.attribution_window, guardrails],
            sort_keys=True,
        )
        for slot in body["sums"].values():
            for entry in slot.values():
                entry[5] += 1e6  # what an M2 read from a Σx² would look like
        with store.transaction() as writer:
            writer.execute("UPDATE rollout_tallies SET body = ?", (json.dumps(body),))
        until = iso(now - 300)
        shown = look(store, plan, "production", "fraud-model", since, until, 1)
        for slot, spec in slot_specs(plan, "production", "fraud-model", since, until):
            assert _close(shown.results[slot], reduce_spec(store.reader(), spec)), slot
    finally:
        store.close()

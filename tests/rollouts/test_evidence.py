"""The evidence a look gathers: a scope needs ``min_units_for_harm`` units per arm to show harm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollwise.ids import event_id
from rollwise_server.rollouts.evidence import gather, iso
from rollwise_server.rollouts.plan import parse_plan
from rollwise_server.storage import open_store
from tests.rollouts.test_plan import FLAG

START = 1_795_000_000.0


def _store_small_cohort(path: Path) -> None:
    """1,000 units per arm at a 20% conversion rate, and one small cohort (NL: 20 candidate
    units) without a single conversion under the candidate: zero variance in that cell."""
    store = open_store(str(path))
    exposures, outcomes = [], []
    for i in range(2_060):
        variant = "v1" if i < 1_000 else "v2"
        country = "NL" if i >= 2_040 else ("DE" if i % 2 else "FR")
        ts = START + 1 + i / 1000
        unit = f"u{i}"
        attrs = f'{{"country":"{country}"}}'
        exposures.append((event_id(ts), "production", iso(ts), "fraud-model", 3, variant,
                          "eu-small", "user_id", unit, attrs, iso(ts)))  # fmt: skip
        converted = country != "NL" and i % 5 == 0
        outcomes.append((event_id(ts + 1), "production", iso(ts + 1), "fraud_caught", "user_id",
                         unit, float(converted), "{}", iso(ts + 1)))  # fmt: skip
    for i in range(40):  # NL under the control: 40 units, 30 of them converted
        ts = START + 5 + i / 1000
        unit = f"nl{i}"
        exposures.append((event_id(ts), "production", iso(ts), "fraud-model", 3, "v1",
                          "eu-small", "user_id", unit, '{"country":"NL"}', iso(ts)))  # fmt: skip
        outcomes.append((event_id(ts + 1), "production", iso(ts + 1), "fraud_caught", "user_id",
                         unit, float(i < 30), "{}", iso(ts + 1)))  # fmt: skip
    store.ingest("exposures", exposures)
    store.ingest("outcomes", outcomes)
    store.close()


@pytest.mark.parametrize(("least", "verdict"), [(2, "harm"), (100, "insufficient data")])
def test_a_small_cohort_cannot_show_harm_below_the_minimum(
    tmp_path: Path, least: int, verdict: str
) -> None:
    _store_small_cohort(tmp_path / "e.db")
    data: dict[str, Any] = {
        "control": "v1", "candidate": "v2", "rule": "eu-small", "stages": [{"share": 0.5}],
        "guardrails": [{"metric": "fraud_caught", "cohorts": ["country"]}], "srm": False,
        "outcome_delay": 0, "min_units_for_harm": least,
    }  # fmt: skip
    plan, problems = parse_plan(data, FLAG)
    assert plan is not None, problems
    store = open_store(str(tmp_path / "e.db"))
    try:
        evidence, _ = gather(
            store, "production", "fraud-model", plan, {"started_at": START}, START + 3600
        )
    finally:
        store.close()
    findings = {f.scope: f for f in evidence.findings}
    assert findings["country=NL"].n_candidate == 20
    assert findings["country=NL"].verdict == verdict
    assert findings["overall"].verdict != "harm"  # 1,000 per arm, the same rate outside NL
    assert findings["country=DE"].verdict != "harm"

"""Rollout plans: validation with JSON paths, durations, and the rollout store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rollwise.durations import parse_duration
from rollwise.rules import RulesDocument
from rollwise_server.errors import Conflict
from rollwise_server.openapi import openapi_document
from rollwise_server.rollouts.plan import parse_plan
from rollwise_server.rollouts.tally import slot_specs
from rollwise_server.storage import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
FLAG = RulesDocument.from_file(EXAMPLE).flags["fraud-model"]

PLAN: dict[str, Any] = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-small",
    "stages": [
        {"share": 0.01, "min_duration": "10m", "min_units": 500},
        {"share": 0.25, "min_duration": 600, "min_units": 2000, "approval": True},
        {"share": 1.0},
    ],
    "guardrails": [
        {"metric": "fraud_caught", "kind": "binary", "harm": "decrease", "cohorts": ["country"]},
        {"metric": "latency_ms", "kind": "mean", "harm": "increase", "tolerance": 0.05,
         "relative": True, "cohorts": ["amount"], "bands": {"amount": [0, 100, 500]}},
    ],
    "deadline": "2026-12-31T00:00:00Z",
}  # fmt: skip


def test_a_valid_plan_round_trips() -> None:
    plan, problems = parse_plan(PLAN, FLAG)
    assert problems == []
    assert plan is not None
    assert [s.share for s in plan.stages] == [0.01, 0.25, 1.0]
    assert plan.stages[0].min_duration == 600.0
    assert plan.stages[1].approval is True
    assert plan.guardrails[1].bands == {"amount": (0.0, 100.0, 500.0)}
    again, problems = parse_plan(plan.to_json(), FLAG)
    assert (again, problems) == (plan, [])


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"control": "v9"}, "control"),
        ({"candidate": "v1"}, "candidate"),
        ({"rule": "qa-team"}, "rule"),
        ({"rule": "nope"}, "rule"),
        ({"stages": []}, "stages"),
        ({"stages": [{"share": 0.5}, {"share": 0.2}]}, "stages[1].share"),
        ({"stages": [{"share": 0}]}, "stages[0].share"),
        ({"stages": [{"share": 0.1, "min_duration": "soon"}]}, "stages[0].min_duration"),
        ({"guardrails": [{"metric": "m", "harm": "sideways"}]}, "guardrails[0].harm"),
        ({"min_units_for_harm": 1}, "min_units_for_harm"),
        ({"min_units_for_harm": 10.5}, "min_units_for_harm"),
        ({"guardrails": [{"metric": "m", "kind": "ratio"}]}, "guardrails[0].denominator"),
        (
            {"guardrails": [{"metric": "m", "bands": {"amount": [5, 1]}}]},
            "guardrails[0].bands.amount",
        ),
        (
            {
                "guardrails": [
                    {"metric": "m", "cohorts": ["amount"], "bands": {"amount": [0, 100, 100]}}
                ]
            },
            "guardrails[0].bands.amount",
        ),
        (
            {"guardrails": [{"metric": "m", "bands": {"amount": [0, 100]}}]},
            "guardrails[0].bands.amount",
        ),
        (
            {"guardrails": [{"metric": "m", "harm": "decrease", "tolerance": 0.1}]},
            "guardrails[0].tolerance",
        ),
        (
            {"guardrails": [{"metric": "m", "harm": "increase", "tolerance": -0.1}]},
            "guardrails[0].tolerance",
        ),
        ({"guardrails": [{"metric": "m", "colour": "red"}]}, "guardrails[0].colour"),
        ({"alpha": 0.9}, "alpha"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"on_breach": "panic"}, "on_breach"),
        ({"typo": 1}, "typo"),
    ],
)
def test_problems_name_their_path(change: dict[str, Any], path: str) -> None:
    plan, problems = parse_plan({**PLAN, **change}, FLAG)
    assert plan is None
    assert path in {p.path for p in problems}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0), (30, 30.0), ("250ms", 0.25),
     ("2w", 1209600.0), ("1h30m", 5400.0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "min_duration") == seconds


def test_a_plan_reads_the_duration_grammar_of_results_and_the_cli() -> None:
    """``"2w"`` (refused before: plans had a grammar of their own) and compound durations."""
    stages = [{"share": 0.5, "min_duration": "1h30m"}, {"share": 1.0, "min_duration": "1d12h"}]
    plan, problems = parse_plan(
        {**PLAN, "stages": stages, "attribution_window": "2w", "outcome_delay": "90s"}, FLAG
    )
    assert problems == []
    assert plan is not None
    assert (plan.attribution_window, plan.outcome_delay) == (14 * 86400.0, 90.0)
    assert [s.min_duration for s in plan.stages] == [5400.0, 129600.0]
    document = openapi_document()  # the API's schema of a plan says the same
    root = {"$ref": "#/components/schemas/RolloutPlan", "components": document["components"]}
    jsonschema.Draft202012Validator(root).validate(
        {**PLAN, "stages": stages, "attribution_window": "2w", "outcome_delay": "90s"}
    )


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"attribution_window": "2 weeks"}, "attribution_window",
         "'2 weeks' is not a duration: write a number with a unit such as 90s, 30m, 1h30m"),
        ({"attribution_window": "0s"}, "attribution_window", "a positive duration is needed"),
        ({"attribution_window": "5300w"}, "attribution_window", "longer than 100 years"),
        ({"outcome_delay": "30m1h"}, "outcome_delay", "units out of order"),
        ({"outcome_delay": -5}, "outcome_delay", "-5 is negative"),
        ({"stages": [{"share": 1.0, "min_duration": "10M"}]}, "stages[0].min_duration",
         "lowercase"),
    ],
)  # fmt: skip
def test_a_bad_duration_is_named_with_what_a_duration_looks_like(
    change: dict[str, Any], path: str, message: str
) -> None:
    plan, problems = parse_plan({**PLAN, **change}, FLAG)
    assert plan is None
    assert [p.path for p in problems] == [path]
    assert message in problems[0].message


def test_rollout_store_versions_and_lease(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "r.db"))
    record = store.put_rollout(
        "production", "fraud-model", PLAN, {"status": "draft"}, expected_version=None,
        actor="alice", action="rollout.plan", reason="first",
    )  # fmt: skip
    assert record.version == 1
    with pytest.raises(Conflict):
        store.put_rollout(
            "production", "fraud-model", PLAN, {"status": "running"}, expected_version=7,
            actor="bob", action="rollout.start", reason=None,
        )  # fmt: skip
    store.put_rollout(
        "production", "fraud-model", PLAN, {"status": "running"}, expected_version=1,
        actor="bob", action="rollout.start", reason=None,
    )  # fmt: skip
    assert [r.flag for r in store.active_rollouts()] == ["fraud-model"]
    assert store.lease_rollout("production", "fraud-model", "replica-a", 30)
    assert not store.lease_rollout("production", "fraud-model", "replica-b", 30)
    store.release_rollout("production", "fraud-model", "replica-a")
    assert store.lease_rollout("production", "fraud-model", "replica-b", 30)
    store.close()


_NUMBERS = st.one_of(
    st.integers(-1000, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 100, 100.0, -0.0]),
)
_GUARDRAILS = st.fixed_dictionaries(
    {"metric": st.sampled_from(["fraud_caught", "latency_ms", "m", ""])},
    optional={
        "kind": st.sampled_from(["binary", "mean", "count", "ratio", "median"]),
        "denominator": st.sampled_from(["requests", "", None]),
        "cohorts": st.lists(st.sampled_from(["country", "amount", 'a"b', ""]), max_size=3),
        "bands": st.dictionaries(
            st.sampled_from(["amount", "country", "x"]),
            st.one_of(st.lists(_NUMBERS, max_size=70), st.just("0,100")),
            max_size=2,
        ),
        "tolerance": _NUMBERS,
        "harm": st.sampled_from(["increase", "decrease"]),
    },
)


@settings(max_examples=300, deadline=None, derandomize=True)  # the same cases in CI
@given(
    guardrails=st.lists(_GUARDRAILS, max_size=3),
    window=st.sampled_from(["14d", 1, "1000000d", 0.0001]),
)
def test_every_plan_the_validator_accepts_runs_in_the_statistics(
    guardrails: list[dict[str, Any]], window: Any
) -> None:
    """What ``parse_plan`` accepts, the controller's reductions accept too (a bad plan once
    stopped every controller round)."""
    body = {**PLAN, "guardrails": guardrails, "attribution_window": window}
    plan, problems = parse_plan(body, FLAG)
    event("accepted" if plan is not None else "refused")
    if plan is None:
        assert problems
        return
    for _, spec in slot_specs(
        plan, "production", FLAG.key, "2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z"
    ):
        assert spec.kind in ("binary", "mean", "count", "ratio")
    again, problems = parse_plan(plan.to_json(), FLAG)  # the stored form reads back
    assert (again, problems) == (plan, [])


def test_a_plan_is_bounded_in_stages_and_guardrails() -> None:
    stages = [{"share": (i + 1) / 30} for i in range(21)]
    _, problems = parse_plan({**PLAN, "stages": stages}, FLAG)
    assert [p.path for p in problems] == ["stages"]
    assert "more than 20" in problems[0].message
    guardrails = PLAN["guardrails"] * 11
    _, problems = parse_plan({**PLAN, "guardrails": guardrails}, FLAG)
    assert [p.path for p in problems] == ["guardrails"]

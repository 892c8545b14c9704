"""The shadow stage: the candidate beside the served model, on the same units, before exposure.

Plans are checked (the first stage only, a flag that shadows the candidate, catalogue metrics,
signed tolerances); the policy is a pure function tested on its own; and end to end a real
server, the real SDK's ``client.shadow`` and real outcomes show a better candidate passing to
its first live stage and a candidate that harms one country ending the rollout with no
customer ever served it.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest

import rollwise
from rollwise.rules import Shadow
from rollwise_server.rollouts.controller import Controller
from rollwise_server.rollouts.decide import Evidence, GuardrailFinding, ShadowEvidence, decide
from rollwise_server.rollouts.pairing import percentile, score_findings, score_of
from rollwise_server.rollouts.plan import ScoreCheck, parse_plan
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, postgresql_under_test
from rollwise_server.webhooks import Webhooks
from tests.rollouts.test_plan import FLAG
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag
from tests.server.console_client import ConsoleClient
from tests.server.test_cli import run

SHADOWED = attrs.evolve(FLAG, shadow=Shadow("v2", 1.0))
CATALOGUE_METRICS = {"is_fraud": {"kind": "binary", "direction": "higher_is_better"}}

SHADOW_PLAN: dict[str, Any] = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-small",
    "stages": [
        {
            "min_units": 600,
            "shadow": {
                "agreement": 0.5,
                "latency_p99_ms": 500,
                "scores": [
                    {"metric": "is_fraud", "rule": "match", "positive": "fraud",
                     "tolerance": -0.02, "cohorts": ["country"]},
                ],
            },
        },
        {"share": 0.1, "min_units": 100},
        {"share": 1.0},
    ],
    "outcome_delay": 0,  # the test flushes every outcome before each controller round
}  # fmt: skip


def _catalogue() -> dict[str, Any]:
    from rollwise_server.catalogue import parse_metric

    out = {}
    for key, body in CATALOGUE_METRICS.items():
        metric, problems = parse_metric(key, body)
        assert problems == []
        assert metric is not None
        out[key] = metric
    return out


def _problems(plan: dict[str, Any], flag: Any = SHADOWED) -> dict[str, str]:
    parsed, problems = parse_plan(plan, flag, _catalogue())
    assert parsed is None
    return {p.path: p.message for p in problems}


def _with_stages(*stages: dict[str, Any]) -> dict[str, Any]:
    return {**SHADOW_PLAN, "stages": list(stages)}


SHADOW_STAGE = SHADOW_PLAN["stages"][0]


def test_a_shadow_plan_round_trips() -> None:
    plan, problems = parse_plan(SHADOW_PLAN, SHADOWED, _catalogue())
    assert problems == []
    assert plan is not None
    first = plan.stages[0]
    assert first.share == 0.0
    assert first.shadow is not None
    check = first.shadow.scores[0]
    assert (check.rule, check.harm, check.tolerance, check.positive) == (
        "match", "decrease", 0.02, "fraud",
    )  # fmt: skip
    again, problems = parse_plan(plan.to_json(), SHADOWED, _catalogue())
    assert problems == []
    assert again == plan


@pytest.mark.parametrize(
    ("plan", "flag", "path", "words"),
    [
        (_with_stages({"share": 0.1}, SHADOW_STAGE), SHADOWED, "stages[1].shadow",
         "only the first stage"),
        (_with_stages({**SHADOW_STAGE, "share": 0.1}, {"share": 0.5}), SHADOWED,
         "stages[0].share", "to no one"),
        (_with_stages(SHADOW_STAGE), SHADOWED, "stages", "a live stage after it"),
        (SHADOW_PLAN, FLAG, "stages[0].shadow", "names no shadow"),
        (SHADOW_PLAN, attrs.evolve(FLAG, shadow=Shadow("v1", 0.5)), "stages[0].shadow",
         "shadows 'v1'"),
        (_with_stages({"shadow": {"scores": [{"metric": "is_fruad", "rule": "match"}]}},
                      {"share": 1.0}), SHADOWED, "stages[0].shadow.scores[0].metric",
         "unknown metric 'is_fruad'"),
        (_with_stages({"shadow": {"scores": [{"metric": "is_fraud", "rule": "match",
                                              "tolerance": 0.02}]}}, {"share": 1.0}),
         SHADOWED, "stages[0].shadow.scores[0].tolerance", "must be <= 0"),
        (_with_stages({"shadow": {"scores": [{"metric": "is_fraud", "rule": "brier",
                                              "tolerance": -0.02}]}}, {"share": 1.0}),
         SHADOWED, "stages[0].shadow.scores[0].tolerance", "must be >= 0"),
        (_with_stages({"shadow": {"scores": [{"metric": "is_fraud", "rule": "match",
                                              "cohorts": ["colour"]}]}}, {"share": 1.0}),
         SHADOWED, "stages[0].shadow.scores[0].cohorts[0]", "not a cohort attribute"),
        (_with_stages({"shadow": {"scores": [{"metric": "is_fraud", "rule": "absolute_error",
                                              "positive": "fraud"}]}}, {"share": 1.0}),
         SHADOWED, "stages[0].shadow.scores[0].positive", "read labels"),
        (_with_stages({"shadow": {"agreement": 1.5}}, {"share": 1.0}), SHADOWED,
         "stages[0].shadow.agreement", "[0.0, 1.0]"),
        (_with_stages({"shadow": {}, "aproval": True}, {"share": 1.0}), SHADOWED,
         "stages[0].aproval", ""),
        (_with_stages({"min_units": 5}, {"share": 1.0}), SHADOWED, "stages[0].share",
         "required"),
    ],
)  # fmt: skip
def test_a_bad_shadow_stage_names_its_field(
    plan: dict[str, Any], flag: Any, path: str, words: str
) -> None:
    problems = _problems(plan, flag)
    assert path in problems, problems
    assert words in problems[path]


def test_a_mean_truth_takes_only_the_error_rules() -> None:
    catalogue = {**_catalogue()}
    from rollwise_server.catalogue import parse_metric

    catalogue["eta_min"], _ = parse_metric(
        "eta_min", {"kind": "mean", "direction": "lower_is_better"}
    )
    plan = _with_stages(
        {"shadow": {"scores": [{"metric": "eta_min", "rule": "match"}]}}, {"share": 1.0}
    )
    _, problems = parse_plan(plan, SHADOWED, catalogue)
    assert [(p.path, p.message) for p in problems] == [
        ("stages[0].shadow.scores[0].rule", "match reads a binary truth; metric 'eta_min' is mean")
    ]
    plan["stages"][0]["shadow"]["scores"][0]["rule"] = "absolute_error"
    parsed, problems = parse_plan(plan, SHADOWED, catalogue)
    assert problems == []
    assert parsed is not None
    assert parsed.stages[0].shadow is not None
    assert parsed.stages[0].shadow.scores[0].kind == "mean"


def test_scores_of_each_rule() -> None:
    match = ScoreCheck("is_fraud", "match", positive="fraud")
    assert score_of(match, "fraud", None, 1.0) == 1.0
    assert score_of(match, "ok", None, 1.0) == 0.0
    assert score_of(match, "ok", None, 0.0) == 1.0
    assert score_of(match, None, 0.7, 1.0) == 1.0  # a probability from one half up is 1
    assert score_of(match, None, None, 1.0) is None
    assert score_of(ScoreCheck("is_fraud", "match"), "true", None, 1.0) == 1.0
    brier = ScoreCheck("is_fraud", "brier")
    assert score_of(brier, None, 0.8, 1.0) == pytest.approx(0.04)
    assert score_of(ScoreCheck("eta", "absolute_error", "mean"), None, 12.0, 15.0) == 3.0
    assert score_of(ScoreCheck("eta", "squared_error", "mean"), None, 12.0, 15.0) == 9.0
    assert score_of(ScoreCheck("eta", "squared_error", "mean"), "12", None, 15.0) is None
    assert percentile([], 0.99) is None
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert percentile([5.0], 0.99) == 5.0


def _finding(scope: str, verdict: str) -> GuardrailFinding:
    return GuardrailFinding("is_fraud (match)", scope, 0.0, -0.1, 0.1, 0.5, verdict, 900, 900,
                            reason=f"{verdict}: …")  # fmt: skip


def test_the_shadow_policy() -> None:
    plan, _ = parse_plan(SHADOW_PLAN, SHADOWED, _catalogue())
    assert plan is not None
    state = {"status": "running", "stage": 1, "stage_started_at": 0.0}
    good = ShadowEvidence(
        runs=1000, paired_units=900, agreement=0.9, latency_p99_ms=20.0,
        findings=(_finding("overall", "non-inferior"), _finding("country=NL", "no harm shown yet")),
    )  # fmt: skip

    def reading(shadow: ShadowEvidence | None) -> tuple[str, str]:
        evidence = Evidence(units_control=900, units_candidate=0, now=100.0, shadow=shadow)
        decision = decide(plan, state, evidence)
        return decision.action, decision.reason

    assert reading(good) == ("advance", "shadow stage 1 met its exit criteria")
    assert reading(None)[0] == "none"
    few = attrs.evolve(good, paired_units=10)
    assert reading(few) == ("none", "shadow stage 1 needs 600 paired units, has 10")
    harmed = attrs.evolve(good, findings=(*good.findings, _finding("country=DE", "harm")))
    action, reason = reading(harmed)
    assert action == "rollback"
    assert "country=DE" in reason
    assert reading(attrs.evolve(harmed, paired_units=10))[0] == "rollback"
    action, reason = reading(attrs.evolve(good, agreement=0.3))
    assert (action, reason) == ("rollback", "shadow stage failed: agreement 30.00%, below 50.00%")
    assert reading(attrs.evolve(good, agreement=0.3, paired_units=10))[0] == "none"  # not yet
    action, reason = reading(attrs.evolve(good, latency_p99_ms=900.0))
    assert action == "rollback"
    assert "latency p99 900.0 ms, over 500 ms" in reason
    action, reason = reading(attrs.evolve(good, errors=15, timeouts=5))
    assert action == "rollback"
    assert "2.00% of its runs (15 errors, 5 timeouts)" in reason
    broken = attrs.evolve(good, paired_units=0, errors=1000, findings=())  # pairs with nothing
    assert reading(broken) == (
        "rollback", "shadow stage failed: the candidate failed 100.00% of its runs (1000 "
        "errors, 0 timeouts), more than 1.00%",
    )  # fmt: skip
    assert reading(attrs.evolve(broken, runs=10, errors=10))[0] == "none"  # too few runs yet
    unsure = attrs.evolve(good, findings=(_finding("overall", "no harm shown yet"),))
    action, reason = reading(unsure)
    assert action == "none"
    assert "waits for is_fraud (match) to be shown non-inferior" in reason
    gated = attrs.evolve(
        plan, stages=(attrs.evolve(plan.stages[0], approval=True), *plan.stages[1:])
    )
    evidence = Evidence(units_control=900, units_candidate=0, now=100.0, shadow=good)
    assert decide(gated, state, evidence).action == "await_approval"


# --- end to end -------------------------------------------------------------------------------


def _started(server: LiveServer, plan: dict[str, Any]) -> tuple[Any, str, str]:
    """The example flag shadowing v2 for every unit, the catalogue, ``plan`` put and started:
    the admin's session, the environment's URL and the rollout's."""
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    flag = {**example_flag(), "shadow": {"variant": "v2", "share": 1.0}}
    admin.post(f"{base}/flags", json=flag).raise_for_status()
    define_metrics(server)
    for key, body in CATALOGUE_METRICS.items():
        admin.post(f"{base}/metrics", json={"key": key, **body}).raise_for_status()
    url = f"{base}/flags/fraud-model/rollout"
    admin.put(url, json=plan).raise_for_status()
    admin.post(f"{url}/start").raise_for_status()
    return admin, base, url


def _traffic(
    server: LiveServer, tmp_path: Path, accuracy: dict[str, tuple[float, float]], looks: int = 8
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """Shadow traffic through the real SDK: each unit's truth (``is_fraud``), the served v1
    right with the first probability of its country, the shadowed v2 with the second; the
    test runs the controller's rounds. Returns the rollout, its statuses and the flag."""
    admin, base, url = _started(server, SHADOW_PLAN)
    store = open_store(server.db)
    controller = Controller(store, Webhooks(store), lambda e, r: None, 1.0)
    client = rollwise.Client(
        server.url, server.token("sdk", env="production"), cache_dir=tmp_path / "c",
        flush_interval=0.05,
    )  # fmt: skip
    assert client.wait_until_ready(10)
    rng = random.Random(11)  # noqa: S311 - simulated traffic
    statuses = []
    unit = 0
    try:
        for _ in range(looks):
            for _ in range(450):
                unit += 1
                country = rng.choice(["DE", "FR", "NL"])
                user = f"user-{unit}"
                truth = rng.random() < 0.3
                right = accuracy[country]

                def model(p: float, truth: bool = truth) -> str:
                    correct = rng.random() < p
                    return "fraud" if truth == correct else "ok"

                live_answer, shadow_answer = model(right[0]), model(right[1])
                context = {"user_id": user, "country": country, "amount": 50}
                with client.shadow("fraud-model", context) as run:
                    run.live(lambda answer=live_answer: answer)
                    run.candidate(lambda answer=shadow_answer: answer)
                client.track("is_fraud", user, truth)
            assert client.flush(30)
            asyncio.run(controller.round())
            status = admin.get(url).json()["state"]["status"]
            statuses.append(status)
            if status != "running" or admin.get(url).json()["state"]["stage"] != 1:
                break
            assert client.wait_until_ready(1)
    finally:
        client.close()
        store.close()
    flag_now = admin.get(f"{base}/flags/fraud-model").json()
    return admin.get(url).json(), statuses, flag_now


def _candidate_exposures(server: LiveServer) -> int:
    """Exposures of v2 stored (a direct read: the API's own counts are what is under test)."""
    if postgresql_under_test():
        store = open_store(server.db)
        try:
            row = (
                store.reader()
                .execute(
                    "SELECT count(*) FROM exposures WHERE flag = 'fraud-model' AND variant = 'v2'"
                )
                .fetchone()
            )
        finally:
            store.close()
        return int(row[0])
    with sqlite3.connect(server.db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM exposures WHERE flag = 'fraud-model' AND variant = 'v2'"
        ).fetchone()
    return int(row[0])


def test_a_better_candidate_passes_to_its_first_live_stage(
    server: LiveServer, tmp_path: Path
) -> None:
    rollout, statuses, flag = _traffic(
        server, tmp_path, {"DE": (0.8, 0.92), "FR": (0.8, 0.92), "NL": (0.8, 0.92)}
    )
    state = rollout["state"]
    assert (state["status"], state["stage"]) == ("running", 2), (statuses, state["evidence"])
    split = {a["variant"]: a["weight"] for a in flag["rules"][1]["serve"]["split"]}
    assert split == {"v2": 1000, "v1": 9000}
    shadow = state["evidence"]["shadow"]
    assert shadow["paired_units"] >= 600
    assert shadow["errors"] == shadow["timeouts"] == 0
    assert 0.6 < shadow["agreement"] < 0.85  # both right (0.74) or both wrong (0.02)
    overall = next(f for f in shadow["findings"] if f["scope"] == "overall")
    assert overall["verdict"] in ("non-inferior", "improvement")
    assert overall["ci_low"] < 0.12 < overall["ci_high"]  # the true gain: 0.92 - 0.8
    assert _candidate_exposures(server) == 0  # nobody was served v2 in the shadow stage


def test_a_candidate_harming_one_country_ends_the_rollout_unexposed(
    server: LiveServer, tmp_path: Path
) -> None:
    rollout, statuses, flag = _traffic(
        server, tmp_path, {"DE": (0.8, 0.95), "FR": (0.8, 0.95), "NL": (0.8, 0.45)}
    )
    state = rollout["state"]
    assert state["status"] == "rolled_back", (statuses, state.get("evidence"))
    assert state["end_reason"].startswith("shadow stage failed: score is_fraud (match)")
    assert "(country=NL) shows harm" in state["end_reason"]
    split = {a["variant"]: a["weight"] for a in flag["rules"][1]["serve"]["split"]}
    assert split == {"v2": 0, "v1": 10000}
    assert _candidate_exposures(server) == 0
    nl = next(f for f in state["evidence"]["shadow"]["findings"] if f["scope"] == "country=NL")
    assert nl["verdict"] == "harm"
    assert nl["ci_high"] < -0.02
    assert nl["ci_low"] < -0.35 < nl["ci_high"]  # the true loss in NL: 0.45 - 0.8
    # what an admin reads: the console's rollout page and ``rollwise rollouts status``
    page = ConsoleClient(server, server.admin_token).get(
        "/ui/envs/production/flags/fraud-model/rollout"
    )
    assert page.status_code == 200
    assert "Stage 1: shadow (serves no one)" in page.text
    assert "Shadow stage: the candidate beside the control on the same units" in page.text
    assert "is_fraud (match)" in page.text
    assert "country=NL" in page.text
    status = run(server, "rollouts", "status", "fraud-model")
    assert status.exit_code == 0, status.output
    assert "shadow stage failed: score is_fraud (match) (country=NL)" in status.output
    assert re.search(r"\n1\s+shadow\s", status.output), status.output
    assert re.search(r"shadow\s+\d+ paired of \d+ runs, agreement", status.output)


def test_a_slow_candidate_fails_its_latency_budget(server: LiveServer) -> None:
    """Predictions posted as an SDK sends them: a candidate at 900 ms p99 over a 500 ms
    budget, once the stage has its paired units."""
    plan = {**SHADOW_PLAN, "stages": [{**SHADOW_STAGE, "min_units": 200}, {"share": 1.0}]}
    admin, base, url = _started(server, plan)
    sdk = server.session(server.token("sdk", env="production"))
    version = admin.get(f"{base}/flags/fraud-model").json()["version"]
    now = time.time()
    events = []
    for i in range(300):
        run = str(uuid.uuid4())
        for role, variant, ms in (("live", "v1", 8.0), ("shadow", "v2", 900.0 if i % 10 else 50.0)):
            events.append({
                "id": str(uuid.uuid4()), "ts": _iso(now), "flag": "fraud-model",
                "flag_version": version, "variant": variant, "role": role, "run": run,
                "unit_type": "user_id", "unit": f"user-{i}", "label": "ok", "score": None,
                "latency_ms": ms, "status": "ok", "attrs": {"country": "DE"},
            })  # fmt: skip
    response = sdk.post(f"{server.url}/api/v1/sdk/predictions", json={"events": events})
    assert response.status_code in (200, 202), response.text
    store = open_store(server.db)
    try:
        asyncio.run(Controller(store, Webhooks(store), lambda e, r: None, 1.0).round())
    finally:
        store.close()
    state = admin.get(url).json()["state"]
    assert state["status"] == "rolled_back", state
    assert state["end_reason"] == (
        "shadow stage failed: the candidate's latency p99 900.0 ms, over 500 ms"
    )
    assert state["evidence"]["shadow"]["live_latency_p99_ms"] == 8.0


def _iso(ts: float) -> str:
    from rollwise_server.rollouts.evidence import iso

    return iso(ts)


def test_a_constant_difference_is_judged_not_waved_through() -> None:
    """No variance in the differences: every unit differs by the same amount, known exactly."""
    check = ScoreCheck("is_fraud", "match", tolerance=0.02)
    worse = score_findings(check, [({}, 1.0, 0.0)] * 500, 0.05, 5000.0, 100)
    assert (worse[0].verdict, worse[0].effect) == ("harm", -1.0)
    alike = score_findings(check, [({}, 1.0, 1.0)] * 500, 0.05, 5000.0, 100)
    assert alike[0].verdict == "non-inferior"
    better = score_findings(check, [({}, 0.0, 1.0)] * 500, 0.05, 5000.0, 100)
    assert better[0].verdict == "improvement"
    errors = ScoreCheck("eta", "absolute_error", "mean", tolerance=0.1)
    slightly = score_findings(errors, [({}, 0.5, 0.55)] * 500, 0.05, 5000.0, 100)
    assert slightly[0].verdict == "non-inferior"  # worse by 0.05, within 0.1
    few = score_findings(check, [({}, 1.0, 0.0)] * 50, 0.05, 5000.0, 100)
    assert few[0].verdict == "insufficient data"


def test_boolean_cohorts_are_named_as_json_names_them() -> None:
    check = ScoreCheck("is_fraud", "match", cohorts=("premium",), values={"premium": ("true",)})
    pairs = [({"premium": True}, 1.0, 0.0)] * 300 + [({"premium": False}, 1.0, 1.0)] * 300
    scopes = {f.scope for f in score_findings(check, pairs, 0.05, 5000.0, 100)}
    assert "premium=true" in scopes

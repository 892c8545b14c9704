"""``rollwise rollouts …``, ``rollwise results`` and ``rollwise flags enable`` against a live
server: a rollout driven from the terminal, its evidence read back, and no environment guessed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rollwise_server.cli import main
from rollwise_server.testing import LiveServer
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag
from tests.server.test_cli import NO_PROFILE, api, failed, ok, run, write_json
from tests.server.test_sdk_endpoints import exposure, sdk_session

PLAN = {
    "control": "v1", "candidate": "v2", "rule": "eu-small",
    "stages": [{"share": 0.1, "min_units": 100}, {"share": 0.5, "approval": True}, {"share": 1}],
    "guardrails": [{"metric": "fraud_caught", "cohorts": ["country"]}],
}  # fmt: skip


@pytest.fixture
def flagged(server: LiveServer) -> LiveServer:
    """A server with the eu segment and the fraud-model flag (version 1) in production."""
    api(server, "POST", "envs/production/segments", json=EU_SEGMENT)
    api(server, "POST", "envs/production/flags", json=example_flag())
    return server


def test_a_rollout_driven_from_the_terminal(flagged: LiveServer, tmp_path: Path) -> None:
    define_metrics(flagged)
    plan = write_json(tmp_path / "plan.json", PLAN)
    saved = ok(run(flagged, "rollouts", "plan", "fraud-model", "-f", plan, "--reason", "ship"))
    assert "plan of fraud-model in production saved: version 1, draft, 3 stages" in saved.stdout
    started = ok(run(flagged, "rollouts", "start", "fraud-model", "--reason", "go"))
    assert "rollout of fraud-model in production: running, stage 1 of 3 (10%)" in started.stdout
    flag = api(flagged, "GET", "envs/production/flags/fraud-model")
    split = next(r for r in flag["rules"] if r["id"] == "eu-small")["serve"]["split"]
    weights = {arm["variant"]: arm["weight"] for arm in split}
    assert weights["v2"] / sum(weights.values()) == 0.1  # the stage's share is on the flag
    status = ok(run(flagged, "rollouts", "status", "fraud-model")).stdout
    assert "running" in status
    assert "1 of 3 (10%)" in status
    assert "fraud_caught" in status  # the guardrails
    stage_rows = [line.split() for line in status.splitlines() if line[:1].isdigit()]
    assert stage_rows[0][:2] == ["1", "10%"]
    assert stage_rows[0][-2:] == ["<-", "now"]  # the current stage is marked
    assert all("now" not in row for row in stage_rows[1:])
    listed = ok(run(flagged, "rollouts", "list")).stdout
    assert "fraud-model" in listed
    assert "running" in listed
    paused = ok(run(flagged, "rollouts", "pause", "fraud-model", "--json"))
    assert json.loads(paused.stdout)["state"]["status"] == "paused"
    ok(run(flagged, "rollouts", "resume", "fraud-model"))
    refused = failed(run(flagged, "rollouts", "rollback", "fraud-model"))  # production: protected
    assert "reason" in refused
    done = ok(run(flagged, "rollouts", "rollback", "fraud-model", "--reason", "drill"))
    assert "rolled_back" in done.stdout
    audit = api(flagged, "GET", "audit", params={"flag": "fraud-model"})
    actions = [e["action"] for e in audit["entries"]]
    assert {"rollout.plan", "rollout.start", "rollout.pause", "rollout.rollback"} <= set(actions)


def test_a_plan_with_problems_names_each(flagged: LiveServer, tmp_path: Path) -> None:
    define_metrics(flagged)
    bad = {**PLAN, "stages": [{"share": 0.5}, {"share": 0.2}], "alpha": 2}
    stderr = failed(run(flagged, "rollouts", "plan", "fraud-model", "-f",
                        write_json(tmp_path / "bad.json", bad)))  # fmt: skip
    assert "(HTTP 422)" in stderr
    assert "stages[1].share: must grow from stage to stage" in stderr
    assert "alpha:" in stderr
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    result = run(flagged, "rollouts", "plan", "fraud-model", "-f", str(not_json))
    assert result.exit_code == 2
    assert "not JSON" in result.output


def test_results_as_a_table_and_as_json(flagged: LiveServer) -> None:
    define_metrics(flagged)
    sdk = sdk_session(flagged)
    units = [f"u{i}" for i in range(40)]
    exposures = [exposure(unit=u, variant="v1" if i % 2 else "v2", attrs={"country": "DE"})
                 for i, u in enumerate(units)]  # fmt: skip
    outcomes = [
        {"id": str(uuid.uuid4()), "ts": "2026-11-25T10:05:00.000Z", "metric": "fraud_caught",
         "unit_type": "user_id", "unit": u, "value": 1.0 if i % 4 == 0 else 0.0}
        for i, u in enumerate(units)
    ]  # fmt: skip
    url = f"{flagged.url}/api/v1/sdk"
    assert sdk.post(f"{url}/exposures", json={"events": exposures}).json()["accepted"] == 40
    assert sdk.post(f"{url}/events", json={"events": outcomes}).json()["accepted"] == 40
    text = ok(run(flagged, "results", "fraud-model", "--metric", "fraud_caught")).stdout
    lines = text.splitlines()
    assert lines[0] == "fraud_caught (binary) for fraud-model in production, window 2w"
    assert lines[1].split() == ["VARIANT", "UNITS", "N", "MEAN"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["v2"] == ["20", "20", "0.5"]  # units 0, 4, 8, ... are v2 and converted
    assert rows["v1"] == ["20", "20", "0"]
    data = json.loads(ok(run(flagged, "results", "fraud-model", "--metric", "fraud_caught",
                             "--cohort", "country", "--json")).stdout)  # fmt: skip
    assert {(c["variant"], c["cohort"], c["units"]) for c in data["cells"]} == {
        ("v1", "DE", 20),
        ("v2", "DE", 20),
    }
    by_cohort = ok(run(flagged, "results", "fraud-model", "--metric", "fraud_caught",
                       "--cohort", "country")).stdout  # fmt: skip
    assert by_cohort.splitlines()[1].split() == ["VARIANT", "COHORT", "UNITS", "N", "MEAN"]
    compared = ok(run(flagged, "results", "fraud-model", "--metric", "fraud_caught", "--cohort",
                      "country", "--control", "v1", "--candidate", "v2")).stdout  # fmt: skip
    tail = compared.split("v2 vs v1: effect and 95% always-valid interval\n", 1)[1]
    rows = {line.split()[0]: line.split()[1:] for line in tail.splitlines()[1:]}
    assert rows.keys() == {"overall", "DE"}
    effect, low, high = float(rows["overall"][0]), rows["overall"][1], rows["overall"][2]
    assert effect == 0.5  # v2 converts half its units, v1 none
    assert float(low.strip("[,")) < 0.5 < float(high.strip("]"))
    lonely = run(flagged, "results", "fraud-model", "--metric", "fraud_caught", "--control", "v1")
    assert lonely.exit_code == 2
    assert "both --control and --candidate" in lonely.output


def test_enable_after_a_kill(flagged: LiveServer) -> None:
    ok(run(flagged, "flags", "kill", "fraud-model", "--reason", "drill"))
    assert api(flagged, "GET", "envs/production/flags/fraud-model")["enabled"] is False
    enabled = ok(run(flagged, "flags", "enable", "fraud-model", "--reason", "drill over"))
    assert "enabled flag fraud-model in production: version 3 serves its rules again" in (
        enabled.stdout
    )
    flag = api(flagged, "GET", "envs/production/flags/fraud-model")
    assert (flag["enabled"], flag["version"]) == (True, 3)
    history = api(flagged, "GET", "envs/production/flags/fraud-model/history")
    assert history["versions"][-1]["reason"] == "drill over"


def test_the_environment_is_never_guessed(flagged: LiveServer) -> None:
    """``--env`` used to default to production: a command meant for staging changed
    production. Now every command that acts in an environment needs it named."""
    env: dict[str, Any] = {"ROLLWISE_URL": flagged.url, "ROLLWISE_TOKEN": flagged.admin_token,
                           "ROLLWISE_ENV": None, "ROLLWISE_PROFILE": NO_PROFILE}  # fmt: skip
    for args in (["flags", "kill", "fraud-model", "--reason", "x"], ["flags", "list"],
                 ["rollouts", "status", "fraud-model"], ["results", "fraud-model", "--metric",
                 "m"]):  # fmt: skip
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "Missing option '--env'" in result.output
        assert "ROLLWISE_ENV" in result.output
    assert api(flagged, "GET", "envs/production/flags/fraud-model")["enabled"] is True
    staged = CliRunner().invoke(main, ["flags", "list", "--json"], env={**env,
                                "ROLLWISE_ENV": "staging"})  # fmt: skip
    assert json.loads(staged.stdout)["flags"] == []


def test_set_weights_in_percentages(flagged: LiveServer) -> None:
    done = ok(run(flagged, "flags", "set-weights", "fraud-model", "v1=95", "v2=5",
                  "--rule", "eu-small", "--reason", "widen"))  # fmt: skip
    assert "rule eu-small: split by user_id: v1 95%, v2 5%; now version 2" in done.stdout
    flag = api(flagged, "GET", "envs/production/flags/fraud-model")
    split = next(r for r in flag["rules"] if r["id"] == "eu-small")["serve"]["split"]
    assert split == [{"variant": "v1", "weight": 9500}, {"variant": "v2", "weight": 500}]
    for args, words in (
        (["v1=90", "v2=5"], "add up to 95, not 100"),
        (["v1=ninety", "v2=10"], "VARIANT=PERCENT"),
        (["v1=99.999", "v2=0.001"], "at most two decimals"),
    ):
        result = run(flagged, "flags", "set-weights", "fraud-model", *args, "--rule", "eu-small")
        assert result.exit_code == 2, result.output
        assert words in result.output
    unknown = run(flagged, "flags", "set-weights", "fraud-model", "v1=100", "--rule", "nope")
    assert unknown.exit_code == 2
    assert "no rule 'nope' (its rules: qa-team, eu-small)" in unknown.output
    assert api(flagged, "GET", "envs/production/flags/fraud-model")["version"] == 2


def test_set_weights_cannot_take_a_split_from_a_running_rollout(
    flagged: LiveServer, tmp_path: Path
) -> None:
    define_metrics(flagged)
    ok(run(flagged, "rollouts", "plan", "fraud-model", "-f", write_json(tmp_path / "p.json", PLAN)))
    ok(run(flagged, "rollouts", "start", "fraud-model"))
    stderr = failed(run(flagged, "flags", "set-weights", "fraud-model", "v1=50", "v2=50",
                        "--rule", "eu-small"))  # fmt: skip
    assert "(HTTP 409)" in stderr


def test_login_writes_a_private_profile_that_commands_use(
    flagged: LiveServer, tmp_path: Path
) -> None:
    profile = tmp_path / "config" / "profile.json"
    bare: dict[str, Any] = {"ROLLWISE_URL": None, "ROLLWISE_TOKEN": None, "ROLLWISE_ENV": None,
                            "ROLLWISE_PROFILE": str(profile)}  # fmt: skip
    refused = CliRunner().invoke(main, ["login", "--url", flagged.url, "--token", "rw_wrong"],
                                 env=bare)  # fmt: skip
    assert refused.exit_code == 1
    assert not profile.exists()  # a token the server refuses is not remembered
    done = CliRunner().invoke(main, ["login", "--url", flagged.url, "--env", "production"],
                              env=bare, input=f"{flagged.admin_token}\n")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert flagged.admin_token not in done.stdout  # asked for without echo
    assert profile.stat().st_mode & 0o777 == 0o600
    listed = CliRunner().invoke(main, ["flags", "list", "--json"], env=bare)
    assert [f["key"] for f in json.loads(listed.stdout)["flags"]] == ["fraud-model"]
    staging = CliRunner().invoke(main, ["flags", "list", "--json"],
                                 env={**bare, "ROLLWISE_ENV": "staging"})  # fmt: skip
    assert json.loads(staging.stdout)["flags"] == []  # the variable wins over the profile
    profile.chmod(0o644)
    leaky = CliRunner().invoke(main, ["flags", "list"], env=bare)
    assert leaky.exit_code == 2
    assert "can be read by other users: chmod 600" in leaky.output
    profile.chmod(0o600)
    gone = CliRunner().invoke(main, ["logout"], env=bare)
    assert gone.exit_code == 0
    assert not profile.exists()
    unknown = CliRunner().invoke(main, ["login", "--url", flagged.url, "--env", "nowhere",
                                        "--token", flagged.admin_token], env=bare)  # fmt: skip
    assert unknown.exit_code == 2
    assert "no environment 'nowhere'" in unknown.output


def test_create_then_disable_and_enable(server: LiveServer) -> None:
    made = ok(run(server, "flags", "create", "ranker", "--variants", "v1,v2", "--env", "staging"))
    assert made.stdout == "created flag ranker in staging: version 1, serves v1\n"
    flag = api(server, "GET", "envs/staging/flags/ranker")
    assert (flag["variants"], flag["default_variant"], flag["off_variant"]) == (
        {"v1": {}, "v2": {}},
        "v1",
        "v1",
    )
    again = failed(run(server, "flags", "create", "ranker", "--variants", "v1", "--env", "staging"))
    assert "(HTTP 409)" in again
    off = ok(run(server, "flags", "disable", "ranker", "--env", "staging"))
    assert "disabled flag ranker in staging: version 2 serves the off variant v1" in off.stdout
    ok(run(server, "flags", "enable", "ranker", "--env", "staging"))
    assert api(server, "GET", "envs/staging/flags/ranker")["enabled"] is True
    ok(run(server, "flags", "create", "ranker", "--variants", "v1,v2", "--default", "v2"))
    unexplained = failed(run(server, "flags", "disable", "ranker"))  # production: protected
    assert "say why with --reason: production is a protected environment" in unexplained
    assert api(server, "GET", "envs/production/flags/ranker")["enabled"] is True

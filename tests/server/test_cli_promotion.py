"""``rollwise flags diff`` and ``flags promote --dry-run / --with-segments`` on a live server:
promoting a flag whose segment the target lacks (a 422 "unknown segment" before) is shown
first and done in one command."""

from __future__ import annotations

import json

import pytest

from rollwise_server.testing import LiveServer
from tests.server.conftest import EU_SEGMENT, example_flag
from tests.server.test_cli import api, failed, ok, run


@pytest.fixture
def staged(server: LiveServer) -> LiveServer:
    """The eu segment and the fraud-model flag in staging only."""
    api(server, "POST", "envs/staging/segments", json=EU_SEGMENT)
    api(server, "POST", "envs/staging/flags", json=example_flag())
    return server


def _missing(server: LiveServer, path: str) -> bool:
    with server.session() as session:
        return session.get(f"{server.url}/api/v1/{path}", timeout=10).status_code == 404


def test_diff_shows_what_a_promotion_would_change(staged: LiveServer) -> None:
    text = ok(run(staged, "flags", "diff", "fraud-model", "--env", "staging",
                  "--env", "production")).stdout  # fmt: skip
    assert text.splitlines() == [
        "staging -> production",
        "segment eu: not in production",
        "flag fraud-model: not in production",
    ]
    usage = run(staged, "flags", "diff", "fraud-model", "--env", "staging")
    assert usage.exit_code == 2
    assert "name two environments" in usage.output


def test_promote_refuses_before_writing_when_segments_are_missing(staged: LiveServer) -> None:
    stderr = failed(run(staged, "flags", "promote", "fraud-model", "--env", "staging",
                        "--to", "production", "--reason", "go"))  # fmt: skip
    assert "uses segments that differ in production or are not there: eu" in stderr
    assert "--with-segments" in stderr
    assert _missing(staged, "envs/production/flags/fraud-model")
    assert _missing(staged, "envs/production/segments/eu")


def test_a_dry_run_changes_nothing(staged: LiveServer) -> None:
    text = ok(run(staged, "flags", "promote", "fraud-model", "--env", "staging", "--to",
                  "production", "--with-segments", "--dry-run")).stdout  # fmt: skip
    assert text.splitlines()[0] == "staging -> production (dry run: nothing changed)"
    assert "segment eu: not in production" in text
    assert _missing(staged, "envs/production/flags/fraud-model")
    assert _missing(staged, "envs/production/segments/eu")


def test_promote_with_segments_then_the_environments_agree(staged: LiveServer) -> None:
    done = ok(run(staged, "flags", "promote", "fraud-model", "--env", "staging", "--to",
                  "production", "--with-segments", "--reason", "ship v2"))  # fmt: skip
    assert done.stdout.splitlines() == [
        "promoted segments eu from staging to production",
        "promoted flag fraud-model from staging to production: version 1 in production",
    ]
    assert (
        api(staged, "GET", "envs/production/segments/eu")["conditions"]
        == (EU_SEGMENT["conditions"])
    )
    same = ok(run(staged, "flags", "diff", "fraud-model", "--env", "staging", "--env",
                  "production")).stdout  # fmt: skip
    assert same.splitlines()[1:] == ["segment eu: same", "flag fraud-model: same"]
    changed = example_flag()
    split = changed["rules"][1]["serve"]["split"]
    split[0]["weight"], split[1]["weight"] = 500, 9500
    api(staged, "PUT", "envs/staging/flags/fraud-model", json={**changed, "version": 1})
    diff = json.loads(ok(run(staged, "flags", "diff", "fraud-model", "--env", "staging",
                             "--env", "production", "--json")).stdout)  # fmt: skip
    flag = diff["resources"][-1]
    assert (flag["kind"], flag["missing"]) == ("flag", False)
    assert {op["path"] for op in flag["diff"]} == {
        "/rules/1/serve/split/0/weight",
        "/rules/1/serve/split/1/weight",
    }
    text = ok(run(staged, "flags", "diff", "fraud-model", "--env", "staging", "--env",
                  "production")).stdout  # fmt: skip
    assert "~/rules/1/serve/split/0/weight 100->500" in text

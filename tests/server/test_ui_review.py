"""What an adversarial review of the console found, each fixed and held here: work a role
may not use refused before it costs anything, plans and flags saved unchanged stay unchanged,
a refused promotion changes nothing, and odd input is a 4xx, never a 500."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from rollwise_server.testing import LiveServer, connect, live_server
from tests.server.conftest import EU_SEGMENT, seed
from tests.server.console_client import ConsoleClient, form_fields
from tests.server.test_sdk_endpoints import exposure

FLAG = "/ui/envs/production/flags/fraud-model"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("ui-review")) as running:
        seed(running, metrics=True)
        yield running


def test_pages_that_prepare_a_change_are_refused_to_those_who_may_not_make_it(
    server: LiveServer,
) -> None:
    viewer = ConsoleClient(server, server.token("viewer"))
    huge = [(f"rules-{i}-id", "r") for i in range(9_999)] + [("action", "refresh")]
    assert viewer.post("/ui/envs/production/flags/new", huge).status_code == 403
    for path in (f"{FLAG}/edit", "/ui/envs/production/flags/new", f"{FLAG}/kill",
                 f"{FLAG}/revert?to=1", f"{FLAG}/rollout/plan",
                 "/ui/envs/production/segments/eu/revert?to=1"):  # fmt: skip
        assert viewer.get(path).status_code == 403, path


def test_a_plan_saved_unchanged_keeps_what_the_form_does_not_show(server: LiveServer) -> None:
    api = server.session()
    url = f"{server.url}/api/v1/envs/staging/flags/fraud-model/rollout"
    plan = {
        "control": "v1", "candidate": "v2", "rule": "eu-small", "deadline": "2030-01-01T00:00:00Z",
        "attribution_window": "2d", "min_units_for_harm": 1000,
        "stages": [{"share": 0.0123456789, "min_units": 10}, {"share": 1.0}],
        "guardrails": [{"metric": "fraud_caught", "cohorts": ["country"], "gap_tolerance": -0.02}],
    }  # fmt: skip
    api.put(url, json=plan).raise_for_status()
    stored = api.get(url).json()["plan"]
    console = ConsoleClient(server, server.admin_token)
    page = console.get("/ui/envs/staging/flags/fraud-model/rollout/plan").text
    fields = form_fields(page, having="control")
    checked = console.post("/ui/envs/staging/flags/fraud-model/rollout/plan",
                           [*fields, ("action", "check")])  # fmt: skip
    assert checked.status_code == 200, checked.text
    assert "What saving changes in the stored plan: no change." in checked.text
    saved = console.post("/ui/envs/staging/flags/fraud-model/rollout/plan",
                         [*fields, ("action", "save")])  # fmt: skip
    assert saved.status_code == 303, saved.text
    assert api.get(url).json()["plan"] == stored


def test_a_refused_promotion_changes_nothing_in_the_target(server: LiveServer) -> None:
    api = server.session()
    api.put(
        f"{server.url}/api/v1/envs/staging/segments/eu",
        json={**EU_SEGMENT, "description": "staging only"}, headers={"If-Match": '"1"'},
    ).raise_for_status()  # fmt: skip
    before = api.get(f"{server.url}/api/v1/envs/production/segments/eu").json()
    editor = ConsoleClient(server, server.token("editor"))
    refused = editor.post("/ui/envs/staging/flags/fraud-model/promote",
                          {"to": "production", "reason": " "})  # fmt: skip
    assert refused.status_code == 422
    assert "required to promote a flag into protected environment" in refused.text
    assert api.get(f"{server.url}/api/v1/envs/production/segments/eu").json() == before
    limited = ConsoleClient(server, server.token("editor", envs=["staging"]))
    assert limited.post("/ui/envs/staging/flags/fraud-model/promote",
                        {"to": "production", "reason": "x"}).status_code == 403  # fmt: skip
    assert api.get(f"{server.url}/api/v1/envs/production/segments/eu").json() == before


def test_the_power_calculation_of_a_slow_flag_says_so(server: LiveServer) -> None:
    sdk = server.session(server.token("sdk", env="staging"))
    events = [exposure(flag="fraud-model", unit="a", ts="2026-11-25T10:00:00Z"),
              exposure(flag="fraud-model", unit="b", ts="2026-11-25T11:00:00Z")]  # fmt: skip
    sdk.post(f"{server.url}/api/v1/sdk/exposures", json={"events": events}).raise_for_status()
    console = ConsoleClient(server, server.admin_token)
    form = {"control": "v1", "candidate": "v2", "rule": "eu-small", "alpha": "0.05",
            "outcome_delay": "0", "on_breach": "rollback", "stages-0-share": "1",
            "stages-0-min_duration": "0", "stages-0-min_units": "10",
            "guardrails-0-metric": "fraud_caught", "guardrails-0-tolerance": "-0.01",
            "mde": "0.00001", "action": "check"}  # fmt: skip
    page = console.post("/ui/envs/staging/flags/fraud-model/rollout/plan", form)
    assert page.status_code == 200, page.text
    assert "more than 100 years" in page.text


def test_odd_input_is_a_4xx_never_a_500(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    gets = [f"{FLAG}/revert?to=%C2%B2", f"{FLAG}/revert?to=99999999999999999999999",
            "/ui/envs/production/segments/eu/revert?to=99999999999999999999999",
            "/ui/envs/production/segments/eu/revert?to=%C2%B2", f"{FLAG}?before=%C2%B2",
            "/ui/audit?before=99999999999999999999999"]  # fmt: skip
    for path in gets:
        assert console.get(path).status_code < 500, path
    deep = "[" * 100_000 + "]" * 100_000
    posts = [
        (f"{FLAG}/revert", {"to": "1", "version": "abc", "reason": "r"}),
        (f"{FLAG}/rollout/pause", {"version": "\u00b2"}),
        (f"{FLAG}/edit", {"action": "save", "version": "\u00b2", "body": "{}"}),
        (f"{FLAG}/edit", {"action": "reapply", "version": "1", "base": "\u00b2", "body": "{}"}),
        (f"{FLAG}/edit", {"action": "save", "version": "1", "body": deep}),
        (f"{FLAG}/edit", {"action": "reapply", "version": "1", "body": deep}),
        (
            f"{FLAG}/edit",
            {
                "action": "reapply",
                "version": "1",
                "base": "1",
                "body": json.dumps({"variants": [1]}),
            },
        ),
        (
            f"{FLAG}/edit",
            {"action": "reapply", "version": "1", "base": "1", "body": json.dumps({"rules": "x"})},
        ),
        (f"{FLAG}/edit", {"action": "save", "version": "1", "body": json.dumps({"rules": "x"})}),
        (
            f"{FLAG}/edit",
            {"action": "preview", "variants-0-key": "v1", "variants-0-payload": "[" * 50_000},
        ),
        (
            f"{FLAG}/rollout/plan",
            {"action": "check", "stages-0-share": "5", "stages-0-min_units": "\u00b2"},
        ),
        ("/ui/envs/production/segments/eu/revert", {"to": "1", "version": "\u00b2"}),
        (f"{FLAG}/kill", [(f"f{i}", "x") for i in range(20_001)]),
    ]
    for path, data in posts:
        response = console.post(path, data)
        assert response.status_code < 500, (path, response.text[:300])


def test_an_open_rollout_page_does_not_keep_its_session_alive(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    live = f"{server.url}/ui/envs/staging/flags/fraud-model/rollout/live"
    with connect(server.db) as db:
        db.execute("UPDATE console_sessions SET last_seen = last_seen - 100")
    with console.http.get(live, stream=True, timeout=20) as stream:
        assert stream.status_code == 200
        with connect(server.db) as db:
            (seen,) = db.execute("SELECT max(last_seen) FROM console_sessions").fetchone()
        # the stream looks at the session every second; were that use, last_seen would move
        time.sleep(2.5)
        with connect(server.db) as db:
            (later,) = db.execute("SELECT max(last_seen) FROM console_sessions").fetchone()
    assert later == seen
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200

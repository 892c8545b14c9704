"""Control-plane safety against a real server: every route to the same effect is held to the
same rule (issue 10). Each test names the bypass it closes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from rollwise_server.rollouts.controller import Controller
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, connect, live_server
from rollwise_server.webhooks import Webhooks, new_secret
from tests.rollouts.conftest import ASLEEP
from tests.rollouts.test_plan import PLAN
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag

PROD = "/api/v1/envs/production"
FLAG = f"{PROD}/flags/fraud-model"
ROLLOUT = f"{FLAG}/rollout"


def _setup(server: LiveServer, env: str = "production", plan: dict[str, Any] | None = None) -> str:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/{env}"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    define_metrics(server, env)
    url = f"{base}/flags/fraud-model/rollout"
    answer = admin.put(url, json=plan or PLAN)
    assert answer.status_code == 200, answer.text
    return url


def _flag(server: LiveServer, env: str = "production") -> dict[str, Any]:
    answer = server.session().get(f"{server.url}/api/v1/envs/{env}/flags/fraud-model")
    body: dict[str, Any] = answer.json()
    return body


def _split(flag: dict[str, Any]) -> list[tuple[str, int]]:
    rule = next(r for r in flag["rules"] if r["id"] == "eu-small")
    return [(a["variant"], a["weight"]) for a in rule["serve"]["split"]]


def _put_flag(session: requests.Session, server: LiveServer, body: dict[str, Any]) -> Any:
    current = _flag(server)
    edit = {k: v for k, v in body.items() if k not in ("archived", "updated_at", "updated_by")}
    edit.pop("stale", None)
    return session.put(
        f"{server.url}{FLAG}", json=edit, headers={"If-Match": f'"{current["version"]}"'}
    )


@pytest.fixture
def running(server: LiveServer) -> tuple[LiveServer, requests.Session]:
    """A production rollout at stage 2 (25%, the approval stage), started by editor erin."""
    url = _setup(server)
    editor = server.session(server.token("editor", name="erin"))
    assert editor.post(f"{url}/start", json={"reason": "go"}).status_code == 200
    assert editor.post(f"{url}/advance", json={"reason": "fine"}).json()["state"]["stage"] == 2
    return server, editor


# --- 1. a rollout owns its flag -----------------------------------------------------------------


def test_pausing_does_not_unfreeze_the_plan(running: tuple[LiveServer, requests.Session]) -> None:
    """Bypass: pause → PUT the plan without "approval" → resume → advance."""
    server, editor = running
    url = f"{server.url}{ROLLOUT}"
    assert editor.post(f"{url}/pause").status_code == 200
    stages = [{k: v for k, v in s.items() if k != "approval"} for s in PLAN["stages"]]
    replaced = editor.put(url, json={**PLAN, "stages": stages})
    assert replaced.status_code == 409
    assert replaced.json()["rollout"]["flag"] == "fraud-model"
    assert "frozen" in replaced.json()["detail"]
    assert editor.post(f"{url}/resume").status_code == 200
    assert editor.post(f"{url}/advance").status_code == 409  # still needs an approver
    assert _split(_flag(server)) == [("v2", 2500), ("v1", 7500)]


@pytest.mark.parametrize(
    "route",
    ["managed weights", "managed rule gone", "new candidate rule", "candidate default",
     "candidate payload", "salt", "revert", "archive", "promote"],
)  # fmt: skip
def test_flag_edits_cannot_take_the_managed_rule(
    running: tuple[LiveServer, requests.Session], route: str
) -> None:
    """Bypass: edit the flag itself while the rollout waits for approval."""
    server, editor = running
    flag = _flag(server)
    before = _split(flag)
    edit = json.loads(json.dumps(flag))
    rules = edit["rules"]
    managed = next(r for r in rules if r["id"] == "eu-small")
    if route == "managed weights":
        managed["serve"]["split"] = [{"variant": "v2", "weight": 10000}]
    elif route == "managed rule gone":
        rules.remove(managed)
    elif route == "new candidate rule":
        rules.insert(0, {"id": "all-v2", "conditions": [], "serve": {"variant": "v2"}})
    elif route == "candidate default":
        edit["default_variant"] = "v2"
    elif route == "candidate payload":
        edit["variants"]["v2"] = {"payload": {"model": "something-else"}}
    elif route == "salt":
        edit["salt"] = "another-salt"
    if route == "revert":
        answer = editor.post(f"{server.url}{FLAG}/revert", json={"to_version": 1, "reason": "undo"})
    elif route == "archive":
        answer = editor.delete(f"{server.url}{FLAG}", params={"reason": "gone"})
    elif route == "promote":
        staging = f"{server.url}/api/v1/envs/staging"
        admin = server.session()
        admin.post(f"{staging}/segments", json=EU_SEGMENT).raise_for_status()
        all_v2 = {**example_flag(), "default_variant": "v2"}
        admin.post(f"{staging}/flags", json=all_v2).raise_for_status()
        answer = editor.post(
            f"{staging}/flags/fraud-model/promote", json={"to": "production", "reason": "ship"}
        )
    else:
        answer = _put_flag(editor, server, edit)
    assert answer.status_code == 409, answer.text
    assert answer.json()["rollout"] == {"env": "production", "flag": "fraud-model"}
    assert "active rollout" in answer.json()["detail"]
    after = _flag(server)
    assert after["version"] == flag["version"]
    assert _split(after) == before


def test_the_managed_rule_s_segment_is_part_of_the_rule(
    running: tuple[LiveServer, requests.Session],
) -> None:
    """Bypass: widen the segment the managed rule refers to (25% of the EU becomes 25% of all)."""
    server, editor = running
    url = f"{server.url}{PROD}/segments/eu"
    version = server.session().get(url).json()["version"]
    wider = {**EU_SEGMENT, "conditions": [{"attribute": "country", "operator": "exists"}]}
    answer = editor.put(url, json=wider, headers={"If-Match": f'"{version}"'})
    assert answer.status_code == 409, answer.text
    assert answer.json()["rollout"] == {"env": "production", "flag": "fraud-model"}
    described = {**EU_SEGMENT, "description": "EU card markets"}
    assert editor.put(url, json=described, headers={"If-Match": f'"{version}"'}).status_code == 200


def test_other_flag_edits_stay_allowed(running: tuple[LiveServer, requests.Session]) -> None:
    server, editor = running
    flag = _flag(server)
    answer = _put_flag(editor, server, {**flag, "description": "reviewed by risk"})
    assert answer.status_code == 200, answer.text
    assert _split(answer.json()) == _split(flag)


def test_the_controller_repairs_weights_changed_behind_its_back(
    running: tuple[LiveServer, requests.Session],
) -> None:
    """An edit that no API route allows (an older replica, a hand-edited database)."""
    server, _ = running
    with connect(server.db) as conn:
        (raw,) = conn.execute(
            "SELECT body FROM resources WHERE kind = 'flag' AND key = 'fraud-model'"
        ).fetchone()
        body = json.loads(raw)
        managed = next(r for r in body["rules"] if r["id"] == "eu-small")
        managed["serve"]["split"] = [{"variant": "v2", "weight": 10000}]
        conn.execute(
            "UPDATE resources SET body = ? WHERE kind = 'flag' AND key = 'fraud-model'",
            (json.dumps(body),),
        )
    store = open_store(server.db)
    try:
        controller = Controller(store, Webhooks(store), lambda e, r: None, 1.0)
        asyncio.run(controller.round())
    finally:
        store.close()
    assert _split(_flag(server)) == [("v2", 2500), ("v1", 7500)]
    audit = (
        server.session()
        .get(f"{server.url}/api/v1/audit", params={"action": "rollout.repair"})
        .json()["entries"]
    )
    assert audit[0]["actor"] == "controller"
    assert "stage 2" in audit[0]["reason"]


def test_a_share_of_half_a_basis_point_is_not_repaired_every_round(server: LiveServer) -> None:
    """0.00005 of the traffic is written as a weight of 0 or 1 basis points; the controller
    compared the served share with the stage's unrounded one and rewrote the flag each round."""
    stages = [{"share": 0.00005, "min_duration": "1h"}, {"share": 1.0}]
    url = _setup(server, plan={**PLAN, "stages": stages})
    assert server.session().post(f"{url}/start", json={"reason": "go"}).status_code == 200
    version = _flag(server)["version"]
    store = open_store(server.db)
    try:
        controller = Controller(store, Webhooks(store), lambda e, r: None, 1.0)
        for _ in range(3):
            asyncio.run(controller.round())
    finally:
        store.close()
    assert _flag(server)["version"] == version
    audit = server.session().get(f"{server.url}/api/v1/audit", params={"action": "rollout.repair"})
    assert audit.json()["entries"] == []


# --- 2. the kill switch stops everything --------------------------------------------------------


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    arrived = threading.Event()

    def do_POST(self) -> None:
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        Hook.arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[LiveServer]:
    receiver = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Hook.received, Hook.arrived = [], threading.Event()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        with live_server(
            tmp_path, webhook_urls=url, webhook_secret=new_secret(), **ASLEEP
        ) as server:
            yield server
    finally:
        receiver.shutdown()
        receiver.server_close()


@pytest.mark.parametrize("route", ["kill", "put enabled false", "revert to a killed version"])
def test_a_kill_ends_the_rollout(hooked: LiveServer, route: str) -> None:
    server = hooked
    url = _setup(server)
    editor = server.session(server.token("editor", name="erin"))
    if route == "revert to a killed version":  # version 2 is off, 3 on again, then the rollout
        off = editor.post(f"{server.url}{FLAG}/kill", json={"reason": "drill"}).json()
        on = _put_flag(editor, server, {**off, "enabled": True})
        assert on.status_code == 200
    editor.post(f"{url}/start", json={"reason": "go"}).raise_for_status()
    if route == "kill":
        answer = editor.post(f"{server.url}{FLAG}/kill", json={"reason": "incident 42"})
    elif route == "put enabled false":
        off = {**_flag(server), "enabled": False}
        unexplained = _put_flag(editor, server, off)  # a kill by another route: same rules
        assert unexplained.status_code == 422
        assert unexplained.json()["problems"][0]["path"] == "reason"
        answer = _put_flag(editor, server, {**off, "reason": "incident 42"})
    else:
        answer = editor.post(f"{server.url}{FLAG}/revert", json={"to_version": 2, "reason": "x"})
    assert answer.status_code == 200, answer.text
    flag = answer.json()
    assert flag["enabled"] is False
    assert _split(flag) == [("v2", 0), ("v1", 10000)]  # a later "on" serves the control
    state = server.session().get(f"{server.url}{ROLLOUT}").json()["state"]
    assert (state["status"], state["end_reason"]) == ("aborted", "killed")
    assert state["killed_flag_version"] == flag["version"]
    entries = (
        server.session()
        .get(f"{server.url}/api/v1/audit", params={"flag": "fraud-model", "limit": 3})
        .json()["entries"]
    )
    assert [e["action"] for e in entries[:2]] == [
        {"kill": "flag.kill", "put enabled false": "flag.update"}.get(route, "flag.revert"),
        "rollout.abort",
    ]
    assert entries[1]["details"]["cause"] == "killed"
    assert Hook.arrived.wait(10)
    assert Hook.received[-1]["event"] == "rollout.aborted"
    store = open_store(server.db)  # the controller never acts on it again
    try:
        controller = Controller(store, Webhooks(store), lambda e, r: None, 1.0)
        assert asyncio.run(controller.round()) == []
    finally:
        store.close()
    assert server.session().get(f"{server.url}{ROLLOUT}").json()["state"]["status"] == "aborted"
    again = editor.post(f"{url}/start")
    assert again.status_code == 409  # the flag is off: turn it on before a new rollout
    assert "killed" in again.json()["detail"]


def test_a_controller_reading_never_overwrites_a_kill(server: LiveServer) -> None:
    _setup(server)
    server.session().post(f"{server.url}{ROLLOUT}/start").raise_for_status()
    store = open_store(server.db)
    try:
        record = store.get_rollout("production", "fraud-model")
        assert record is not None
        server.session().post(f"{server.url}{FLAG}/kill", json={"reason": "now"})
        stale = {**record.state, "evidence": {"late": True}}
        assert not store.put_rollout_state(
            "production", "fraud-model", stale, expected_version=record.version
        )
    finally:
        store.close()
    assert server.session().get(f"{server.url}{ROLLOUT}").json()["state"]["status"] == "aborted"


def test_an_abort_ends_the_rollout_on_the_control(server: LiveServer) -> None:
    url = f"{server.url}{ROLLOUT}"
    _setup(server)
    admin = server.session()
    admin.post(f"{url}/start").raise_for_status()
    missing = admin.post(f"{url}/abort")
    assert missing.status_code == 422  # production is protected: a reason is required
    assert missing.json()["problems"][0]["path"] == "reason"
    aborted = admin.post(f"{url}/abort", json={"reason": "wrong candidate"}).json()
    assert (aborted["state"]["status"], aborted["state"]["end_reason"]) == (
        "aborted",
        "wrong candidate",
    )
    assert _split(_flag(server)) == [("v2", 0), ("v1", 10000)]
    assert admin.put(url, json=PLAN).status_code == 200  # an ended rollout takes a new plan


# --- 3. the metric catalogue --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guardrail", "path", "words"),
    [
        ({"metric": "clickd"}, "guardrails[0].metric", "unknown metric 'clickd'"),
        ({"metric": "fraud_caught", "cohorts": ["region"]}, "guardrails[0].cohorts[0]",
         "not a cohort attribute"),
        ({"metric": "fraud_caught", "tolerance": 0.01}, "guardrails[0].tolerance", "<= 0"),
        ({"metric": "latency_ms", "tolerance": -5}, "guardrails[0].tolerance", ">= 0"),
        ({"metric": "fraud_caught", "harm": "increase"}, "guardrails[0].harm",
         "higher is better"),
        ({"metric": "fraud_caught", "kind": "mean"}, "guardrails[0].kind", "binary"),
    ],
)  # fmt: skip
def test_plans_are_checked_against_the_catalogue(
    server: LiveServer, guardrail: dict[str, Any], path: str, words: str
) -> None:
    _setup(server)
    answer = server.session().put(
        f"{server.url}{ROLLOUT}", json={**PLAN, "guardrails": [guardrail]}
    )
    assert answer.status_code == 422, answer.text
    problems = {p["path"]: p["message"] for p in answer.json()["problems"]}
    assert words in problems[path], problems


def test_the_catalogue_is_a_versioned_audited_resource(server: LiveServer) -> None:
    admin = server.session()
    base = f"{server.url}{PROD}/metrics"
    metric = {"key": "approval_rate", "kind": "binary", "direction": "higher_is_better",
              "unit": "share", "description": "approved applications", "owner": "credit-risk",
              "default_tolerance": -0.01}  # fmt: skip
    assert admin.post(base, json=metric).status_code == 201
    bad = admin.post(base, json={"key": "m2", "kind": "median", "direction": "up"})
    assert bad.status_code == 422
    assert {p["path"] for p in bad.json()["problems"]} == {"kind", "direction"}
    sign = admin.post(base, json={**metric, "key": "m3", "default_tolerance": 0.5})
    assert sign.json()["problems"][0]["path"] == "default_tolerance"
    ratio = admin.post(base, json={"key": "m4", "kind": "ratio", "direction": "lower_is_better"})
    assert ratio.json()["problems"][0]["path"] == "denominator"
    updated = admin.put(
        f"{base}/approval_rate", json={**metric, "description": "v2"}, headers={"If-Match": '"1"'}
    )
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    history = admin.get(f"{base}/approval_rate/history").json()["versions"]
    assert [v["action"] for v in history] == ["metric.create", "metric.update"]
    audit = admin.get(f"{server.url}/api/v1/audit", params={"metric": "approval_rate"}).json()
    assert [e["action"] for e in audit["entries"]] == ["metric.update", "metric.create"]
    revision = admin.get(f"{server.url}/api/v1/envs/production").json()["revision"]
    assert revision == 0  # metrics are not part of the rules document


def test_events_of_undefined_metrics_are_kept_and_listed(server: LiveServer) -> None:
    define_metrics(server)
    sdk = server.session(server.token("sdk", env="production"))
    events = [
        {"id": f"0190a0c0-0000-7000-8000-00000000000{i}", "ts": "2026-11-25T10:00:00Z",
         "metric": metric, "unit_type": "user_id", "unit": f"u{i}", "value": 1, "attrs": {}}
        for i, metric in enumerate(["clickd", "clickd", "fraud_caught"])
    ]  # fmt: skip
    answer = sdk.post(f"{server.url}/api/v1/sdk/events", json={"events": events})
    assert answer.json()["accepted"] == 3
    listed = server.session().get(f"{server.url}{PROD}/metrics").json()
    assert listed["undefined"] == [
        {"key": "clickd", "events": 2, "last_seen": "2026-11-25T10:00:00.000Z"}
    ]
    assert "fraud_caught" in {m["key"] for m in listed["metrics"]}


def test_a_guardrail_metric_cannot_be_archived_while_its_rollout_runs(server: LiveServer) -> None:
    _setup(server)
    admin = server.session()
    admin.post(f"{server.url}{ROLLOUT}/start").raise_for_status()
    answer = admin.delete(f"{server.url}{PROD}/metrics/fraud_caught")
    assert answer.status_code == 409
    assert answer.json()["flags"] == ["fraud-model"]


# --- 5. protected environments and real identity ------------------------------------------------


def test_the_two_person_rule_compares_owners(running: tuple[LiveServer, requests.Session]) -> None:
    """Bypass: the starter approves with a second token of their own (another name)."""
    server, _ = running
    url = f"{server.url}{ROLLOUT}"
    own = server.session(server.token("approver", name="erin's approver key", owner="Erin"))
    refused = own.post(f"{url}/approve")
    assert refused.status_code == 403
    assert "two-person rule" in refused.json()["detail"]
    planner = server.session(server.token("approver", name="adm2", owner="admin"))
    assert planner.post(f"{url}/approve").status_code == 403  # wrote the plan (the admin)
    other = server.token("approver", name="abe")
    approved = server.session(other).post(f"{url}/approve", json={"reason": "ok"})
    assert approved.status_code == 200
    entry = (
        server.session()
        .get(f"{server.url}/api/v1/audit", params={"action": "rollout.approve"})
        .json()["entries"][0]
    )
    tokens = server.session().get(f"{server.url}/api/v1/tokens").json()["tokens"]
    abe = next(t for t in tokens if t["name"] == "abe")
    assert (entry["actor"], entry["owner"], entry["token_id"]) == ("abe", "abe", abe["id"])


def test_a_shared_token_name_is_not_a_shared_identity(server: LiveServer) -> None:
    """Bypass: an editor token named like an admin wrote as that admin."""
    editor = server.session(server.token("editor", name="alice", owner="mallory"))
    editor.post(f"{server.url}/api/v1/envs/staging/segments", json=EU_SEGMENT).raise_for_status()
    entry = (
        server.session()
        .get(f"{server.url}/api/v1/audit", params={"action": "segment.create"})
        .json()["entries"][0]
    )
    assert (entry["actor"], entry["owner"]) == ("mallory", "mallory")
    assert entry["token_id"].startswith("tok_")


def test_protection_follows_the_environment_not_its_name(server: LiveServer) -> None:
    admin = server.session()
    envs = {e["key"]: e for e in admin.get(f"{server.url}/api/v1/envs").json()["environments"]}
    assert (envs["production"]["protected"], envs["staging"]["protected"]) == (True, False)
    created = admin.post(f"{server.url}/api/v1/envs", json={"key": "prod-eu", "protected": True})
    assert created.status_code == 201
    assert created.json()["protected"] is True
    url = _setup(server, "prod-eu")
    admin.post(f"{url}/start").raise_for_status()
    admin.post(f"{url}/advance").raise_for_status()
    assert admin.post(f"{url}/approve").status_code == 403  # an admin cannot self-approve
    staging = _setup(server, "staging")  # unprotected: one person may do it all
    admin.post(f"{staging}/start").raise_for_status()
    admin.post(f"{staging}/advance").raise_for_status()
    assert admin.post(f"{staging}/approve").status_code == 200
    kill = admin.post(f"{server.url}/api/v1/envs/prod-eu/flags/fraud-model/kill")
    assert kill.status_code == 422
    assert kill.json()["problems"][0]["path"] == "reason"


def test_changing_protection_is_admin_only_with_a_reason(server: LiveServer) -> None:
    url = f"{server.url}/api/v1/envs/production"
    admin = server.session()
    editor = server.session(server.token("editor"))
    assert editor.patch(url, json={"protected": False, "reason": "x"}).status_code == 403
    missing = admin.patch(url, json={"protected": False})
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["path"] == "reason"
    done = admin.patch(url, json={"protected": False, "reason": "load test week"})
    assert done.json()["protected"] is False
    entry = admin.get(
        f"{server.url}/api/v1/audit", params={"action": "environment.unprotect"}
    ).json()["entries"][0]
    assert (entry["env"], entry["reason"]) == ("production", "load test week")


@pytest.mark.parametrize("route", ["kill", "revert", "rollback", "promote"])
def test_protected_environments_need_a_reason(server: LiveServer, route: str) -> None:
    url = _setup(server)
    admin = server.session()
    admin.post(f"{url}/start").raise_for_status()
    staging = f"{server.url}/api/v1/envs/staging"
    calls = {
        "kill": (f"{server.url}{FLAG}/kill", {}),
        "revert": (f"{server.url}{FLAG}/revert", {"to_version": 1}),
        "rollback": (f"{url}/rollback", {}),
        "promote": (f"{staging}/flags/fraud-model/promote", {"to": "production"}),
    }
    if route == "promote":
        admin.post(f"{staging}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{staging}/flags", json=example_flag()).raise_for_status()
    target, body = calls[route]
    answer = admin.post(target, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["problems"] == [
        {"path": "reason", "message": "required in protected environment 'production'"}
    ]


# --- 6. per-environment roles and token lifetime ------------------------------------------------


def test_roles_apply_to_the_listed_environments_only(server: LiveServer) -> None:
    """Bypass: a token made for staging edits killed production."""
    _setup(server)
    scoped = server.session(server.token("editor", envs=["staging"]))
    staging = f"{server.url}/api/v1/envs/staging"
    assert scoped.post(f"{staging}/segments", json=EU_SEGMENT).status_code == 201
    denied = [
        scoped.post(f"{server.url}{FLAG}/kill", json={"reason": "x"}),
        scoped.get(f"{server.url}{FLAG}"),
        scoped.get(f"{server.url}{ROLLOUT}"),
        scoped.post(f"{server.url}{ROLLOUT}/pause"),
        scoped.get(f"{server.url}{PROD}/metrics"),
        scoped.get(f"{server.url}{FLAG}/results", params={"metric": "fraud_caught"}),
        scoped.get(f"{server.url}/api/v1/audit", params={"env": "production"}),
        scoped.post(f"{staging}/flags/x/promote", json={"to": "production", "reason": "r"}),
    ]
    assert [d.status_code for d in denied] == [403] * len(denied)
    assert "staging" in denied[0].json()["detail"]
    listed = scoped.get(f"{server.url}/api/v1/envs").json()["environments"]
    assert [e["key"] for e in listed] == ["staging"]
    audit = scoped.get(f"{server.url}/api/v1/audit").json()["entries"]
    assert audit
    assert {e["env"] for e in audit} == {"staging"}
    scoped_admin = server.session(server.token("admin", envs=["staging"]))
    grant = {"name": "x", "owner": "x", "role": "admin"}  # escalation through a new token
    assert scoped_admin.post(f"{server.url}/api/v1/tokens", json=grant).status_code == 403
    assert scoped_admin.post(f"{server.url}/api/v1/envs", json={"key": "e2"}).status_code == 403
    unknown = server.session().post(
        f"{server.url}/api/v1/tokens",
        json={"name": "y", "owner": "y", "role": "viewer", "envs": ["nowhere"]},
    )
    assert unknown.status_code == 422
    assert unknown.json()["problems"][0]["path"] == "envs[0]"


def _wait_for(condition: Any, seconds: float) -> float:
    """Poll ``condition`` until true; the seconds it took (fails after ``seconds``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "condition not met in time"
        time.sleep(0.05)
    return time.monotonic() - start


def test_tokens_expire(server: LiveServer) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    viewer = server.session(server.token("viewer", expires_at=soon))
    assert viewer.get(f"{server.url}/api/v1/envs").status_code == 200  # cached from now on
    _wait_for(lambda: viewer.get(f"{server.url}/api/v1/envs").status_code == 401, 10)
    past = server.session().post(
        f"{server.url}/api/v1/tokens",
        json={"name": "z", "owner": "z", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 422
    assert past.json()["problems"][0]["path"] == "expires_at"


def _stream_ends(server: LiveServer, secret: str, end: Any) -> float:
    """Open the SDK stream, read its first event, call ``end``; seconds until it closed."""
    response = server.session(secret).get(
        f"{server.url}/api/v1/sdk/stream", stream=True, timeout=30
    )
    assert response.status_code == 200
    lines = response.iter_lines()
    while not next(lines).startswith(b"data:"):
        pass
    started = time.monotonic()
    end()
    for _ in lines:  # heartbeats and events until the server closes the stream
        assert time.monotonic() - started < 10, "the stream stayed open"
    response.close()
    return time.monotonic() - started


def test_a_revoked_sdk_key_loses_its_stream(server: LiveServer) -> None:
    secret = server.token("sdk", env="production", name="checkout")
    tokens = server.session().get(f"{server.url}/api/v1/tokens").json()["tokens"]
    token_id = next(t["id"] for t in tokens if t["name"] == "checkout")
    took = _stream_ends(
        server, secret,
        lambda: server.session().delete(f"{server.url}/api/v1/tokens/{token_id}"),
    )  # fmt: skip
    assert took < 5
    again = server.session(secret).get(f"{server.url}/api/v1/sdk/stream", stream=True)
    assert again.status_code == 401


def test_a_revocation_by_another_replica_closes_the_stream(server: LiveServer) -> None:
    secret = server.token("sdk", env="production", name="replica-b")
    store = open_store(server.db)  # another replica on the same database
    try:
        (record,) = [t for t in store.tokens() if t.name == "replica-b"]
        took = _stream_ends(server, secret, lambda: store.revoke_token(record.id, actor="b"))
    finally:
        store.close()
    assert took < 5


def test_an_expiring_sdk_key_loses_its_stream(server: LiveServer) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    secret = server.token("sdk", env="production", expires_at=soon)
    took = _stream_ends(server, secret, lambda: None)
    assert took < 6  # it ends when the token does (4 s after it was made), not later


def test_only_bearer_is_accepted_even_when_cached(server: LiveServer) -> None:
    """Bypass: ``Basic <token>`` was accepted for 5 s after a Bearer request."""
    secret = server.token("viewer")
    url = f"{server.url}/api/v1/envs"
    bearer = {"Authorization": f"Bearer {secret}"}
    assert requests.get(url, headers=bearer, timeout=10).status_code == 200
    for scheme in ("Basic", "Token", ""):
        other = {"Authorization": f"{scheme} {secret}".strip()}
        answer = requests.get(url, headers=other, timeout=10)
        assert answer.status_code == 401, scheme


# --- 7. consistency a reviewer can trust --------------------------------------------------------


def test_the_audit_of_a_flag_includes_its_rollout_and_the_versions_it_wrote(
    server: LiveServer,
) -> None:
    url = _setup(server)
    admin = server.session()
    admin.post(f"{url}/start", json={"reason": "ship"}).raise_for_status()
    admin.post(f"{url}/advance", json={"reason": "fine"}).raise_for_status()
    entries = admin.get(f"{server.url}/api/v1/audit", params={"flag": "fraud-model"}).json()
    actions = [e["action"] for e in entries["entries"]]
    assert actions == [
        "flag.rollout", "rollout.advance", "flag.rollout", "rollout.start", "rollout.plan",
        "flag.create",
    ]  # fmt: skip
    newest = entries["entries"][0]
    assert (newest["reason"], newest["details"]["rollout_action"]) == ("fine", "rollout.advance")
    assert newest["details"]["to_stage"] == 2
    assert newest["version"] == _flag(server)["version"]


# --- routes found by a security review after the first version --------------------------------


@pytest.mark.parametrize("route", ["schedule ends", "candidate clone", "clone as default"])
def test_reviewed_flag_routes_are_refused(
    running: tuple[LiveServer, requests.Session], route: str
) -> None:
    server, editor = running
    edit = json.loads(json.dumps(_flag(server)))
    if route == "schedule ends":  # the flag stops serving, the rollout keeps running
        edit["schedule"] = {"start": None, "end": "2026-01-01T00:00:00Z"}
    else:  # the candidate's payload under another name
        edit["variants"]["v2-copy"] = edit["variants"]["v2"]
        if route == "clone as default":
            edit["default_variant"] = "v2-copy"
        else:
            edit["rules"].append({"id": "all", "conditions": [], "serve": {"variant": "v2-copy"}})
    answer = _put_flag(editor, server, edit)
    assert answer.status_code == 409, answer.text
    assert answer.json()["rollout"] == {"env": "production", "flag": "fraud-model"}


def test_cohort_attributes_are_frozen(running: tuple[LiveServer, requests.Session]) -> None:
    server, editor = running
    edit = {**_flag(server), "cohort_attributes": ["amount"]}
    assert _put_flag(editor, server, edit).status_code == 409


def test_a_caller_s_version_must_be_the_one_read(server: LiveServer) -> None:
    """A pause racing a kill once brought the killed rollout back: the transition read the
    rollout, then wrote at the version the caller named (the one after the kill)."""
    _setup(server)
    admin = server.session()
    started = admin.post(f"{server.url}{ROLLOUT}/start").json()
    stale = admin.post(f"{server.url}{ROLLOUT}/pause", headers={"If-Match": '"99"'})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == started["version"]
    replaced = admin.put(f"{server.url}{ROLLOUT}", json=PLAN, headers={"If-Match": '"99"'})
    assert replaced.status_code == 409


def test_the_catalogue_holds_while_a_rollout_runs(server: LiveServer) -> None:
    url = _setup(server)
    admin = server.session()
    metrics = f"{server.url}{PROD}/metrics"
    assert admin.delete(f"{metrics}/latency_ms").status_code == 200  # the plan is a draft
    refused = admin.post(f"{url}/start")  # ... but its guardrail's metric is gone
    assert refused.status_code == 422
    assert "plan.guardrails[1].metric" in {p["path"] for p in refused.json()["problems"]}
    admin.post(metrics, json={"key": "latency_ms", "kind": "mean", "direction": "lower_is_better"})
    assert admin.post(f"{url}/start").status_code == 200
    current = admin.get(f"{metrics}/fraud_caught").json()
    change = {"kind": current["kind"], "direction": "lower_is_better"}
    flipped = admin.put(f"{metrics}/fraud_caught", json=change, headers={"If-Match": '"1"'})
    assert flipped.status_code == 409
    assert flipped.json()["flags"] == ["fraud-model"]
    described = {"kind": "binary", "direction": "higher_is_better", "description": "caught"}
    assert admin.put(f"{metrics}/fraud_caught", json=described, headers={"If-Match": '"1"'}).ok


def test_owners_and_reasons_are_read_as_people_read_them(
    running: tuple[LiveServer, requests.Session],
) -> None:
    server, _ = running
    url = f"{server.url}{ROLLOUT}"
    for spelling in ("\uff45\uff52\uff49\uff4e", "erin\u200b", " ERIN "):  # full-width, ZWSP
        approver = server.session(server.token("approver", owner=spelling))
        assert approver.post(f"{url}/approve").status_code == 403, spelling
    blank = server.session().post(f"{url}/abort", json={"reason": "\u200b \u200d"})
    assert blank.status_code == 422


def test_a_revocation_elsewhere_reaches_this_server_s_cache(server: LiveServer) -> None:
    secret = server.token("viewer", name="cached")
    viewer = server.session(secret)
    assert viewer.get(f"{server.url}/api/v1/envs").status_code == 200  # cached now
    store = open_store(server.db)  # another replica, or `rollwise tokens revoke --db`
    try:
        (record,) = [t for t in store.tokens() if t.name == "cached"]
        store.revoke_token(record.id, actor="elsewhere")
    finally:
        store.close()
    took = _wait_for(lambda: viewer.get(f"{server.url}/api/v1/envs").status_code == 401, 10)
    assert took < 5  # within the 5 s of the guarantee (the check runs every second)

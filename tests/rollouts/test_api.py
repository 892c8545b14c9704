"""Rollouts over real HTTP: plan, start, advance, approvals (two-person rule), pause, rollback."""

from __future__ import annotations

from typing import Any

import requests

from rollwise_server.testing import LiveServer
from tests.rollouts.test_plan import PLAN
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag


def split_of(server: LiveServer) -> list[tuple[str, int]]:
    flag = server.session().get(f"{server.url}/api/v1/envs/production/flags/fraud-model").json()
    rule = next(r for r in flag["rules"] if r["id"] == "eu-small")
    return [(a["variant"], a["weight"]) for a in rule["serve"]["split"]]


def setup(server: LiveServer) -> tuple[requests.Session, str]:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    define_metrics(server)
    url = f"{base}/flags/fraud-model/rollout"
    response = admin.put(url, json={**PLAN, "reason": "ship fraud-2025-11"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == {"status": "draft", "plan_by": "admin"}
    return admin, url


def test_a_plan_is_validated(server: LiveServer) -> None:
    admin, url = setup(server)
    bad = admin.put(url, json={**PLAN, "rule": "qa-team", "stages": []})
    assert bad.status_code == 422
    assert {p["path"] for p in bad.json()["problems"]} == {"rule", "stages"}


def test_start_advance_approve_and_complete(server: LiveServer) -> None:
    admin, url = setup(server)
    editor = server.session(server.token("editor", name="erin"))
    approver = server.session(server.token("approver", name="abe"))
    started = editor.post(f"{url}/start", json={"reason": "go"}).json()
    assert (started["state"]["status"], started["state"]["stage"]) == ("running", 1)
    assert split_of(server) == [("v2", 100), ("v1", 9900)]  # 1%: the candidate first
    assert editor.post(f"{url}/approve").status_code == 403  # an editor cannot approve
    advanced = editor.post(f"{url}/advance", json={"reason": "looks fine"}).json()
    assert advanced["state"]["stage"] == 2
    assert split_of(server) == [("v2", 2500), ("v1", 7500)]
    refused = editor.post(f"{url}/advance")
    assert refused.status_code == 409
    assert "approval" in refused.json()["detail"]
    own = server.session(server.token("approver", name="erin"))  # the starter's own name
    assert own.post(f"{url}/approve").status_code == 403  # two-person rule
    approved = approver.post(f"{url}/approve", json={"reason": "reviewed"}).json()
    assert approved["state"]["stage"] == 3
    assert approved["state"]["approvals"][0]["by"] == "abe"
    assert split_of(server) == [("v2", 10000), ("v1", 0)]
    done = editor.post(f"{url}/advance").json()
    assert done["state"]["status"] == "completed"
    actions = [
        e["action"]
        for e in admin.get(
            f"{server.url}/api/v1/audit", params={"resource_type": "rollout"}
        ).json()["entries"]
    ]
    assert actions == [
        "rollout.advance", "rollout.approve", "rollout.advance", "rollout.start", "rollout.plan",
    ]  # fmt: skip


def test_pause_resume_and_rollback(server: LiveServer) -> None:
    admin, url = setup(server)
    admin.post(f"{url}/start").raise_for_status()
    assert admin.post(f"{url}/pause").json()["state"]["status"] == "paused"
    frozen = admin.put(url, json=PLAN)  # a paused rollout is still active: its plan is frozen
    assert frozen.status_code == 409
    assert frozen.json()["rollout"] == {
        "env": "production",
        "flag": "fraud-model",
        "status": "paused",
    }
    assert admin.post(f"{url}/resume").json()["state"]["status"] == "running"
    assert admin.put(url, json=PLAN).status_code == 409  # a running one may not
    rolled: dict[str, Any] = admin.post(f"{url}/rollback", json={"reason": "bad"}).json()
    assert rolled["state"]["status"] == "rolled_back"
    assert split_of(server) == [("v2", 0), ("v1", 10000)]
    history = admin.get(f"{server.url}/api/v1/envs/production/flags/fraud-model/history").json()
    assert history["versions"][-1]["action"] == "rollout.rollback"
    assert admin.post(f"{url}/rollback", json={"reason": "again"}).status_code == 409
    assert admin.get(url).json()["state"]["status"] == "rolled_back"


def test_flags_past_their_schedule_are_listed_as_stale(server: LiveServer) -> None:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production/flags"
    admin.post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
    old = {
        **example_flag(),
        "key": "old-model",
        "schedule": {"start": None, "end": "2026-01-01T00:00:00Z"},
    }
    admin.post(base, json=old).raise_for_status()
    admin.post(base, json=example_flag()).raise_for_status()
    listed = {f["key"]: f["stale"] for f in admin.get(base).json()["flags"]}
    assert listed == {"fraud-model": False, "old-model": True}
    assert [f["key"] for f in admin.get(base, params={"stale": "true"}).json()["flags"]] == [
        "old-model"
    ]
    flag = admin.get(f"{base}/old-model").json()
    assert admin.put(f"{base}/old-model", json=flag, headers={"If-Match": '"1"'}).status_code == 200

"""The controller isolates failures and says what it did, when (issue 11, items 4 and 5)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from rollwise_server.rollouts import controller as controller_module
from rollwise_server.rollouts.controller import Controller
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, ServerProcess, connect
from rollwise_server.webhooks import Webhooks
from tests.rollouts.test_control_plane import Hook, hooked  # noqa: F401 - a fixture
from tests.rollouts.test_plan import PLAN
from tests.server.conftest import EU_SEGMENT, METRICS, define_metrics, example_flag

PROD = "/api/v1/envs/production"
PAST_DEADLINE = {**PLAN, "deadline": "2020-01-01T00:00:00Z"}  # a breach at the first look


def _flag_and_plan(server: Any, session: requests.Session, key: str, plan: dict[str, Any]) -> str:
    base = f"{server.url}{PROD}"
    session.post(f"{base}/flags", json={**example_flag(), "key": key}).raise_for_status()
    url = f"{base}/flags/{key}/rollout"
    session.put(url, json=plan).raise_for_status()
    session.post(f"{url}/start", json={"reason": "go"}).raise_for_status()
    return url


def _split(server: LiveServer, key: str) -> list[tuple[str, int]]:
    flag = server.session().get(f"{server.url}{PROD}/flags/{key}").json()
    rule = next(r for r in flag["rules"] if r["id"] == "eu-small")
    return [(a["variant"], a["weight"]) for a in rule["serve"]["split"]]


def _corrupt(db: str, key: str, change: Any) -> None:
    """What an older server accepted, or a hand-edited database: no API route writes it."""
    with connect(db) as conn:
        plan, state = conn.execute(
            "SELECT plan, state FROM rollouts WHERE flag = ?", (key,)
        ).fetchone()
        plan, state = json.loads(plan), json.loads(state)
        change(plan, state)
        conn.execute(
            "UPDATE rollouts SET plan = ?, state = ? WHERE flag = ?",
            (json.dumps(plan), json.dumps(state), key),
        )


def _round(db: str, webhook_urls: str = "") -> list[Any]:
    store = open_store(db)
    try:
        controller = Controller(store, Webhooks(store, webhook_urls), lambda e, r: None, 1.0)
        return asyncio.run(controller.round())
    finally:
        store.close()


def test_one_broken_rollout_stops_no_other(hooked: LiveServer) -> None:  # noqa: F811
    server = hooked
    admin = server.session()
    admin.post(f"{server.url}{PROD}/segments", json=EU_SEGMENT).raise_for_status()
    define_metrics(server)
    broken = _flag_and_plan(server, admin, "a-broken", PLAN)
    healthy = _flag_and_plan(server, admin, "b-healthy", PAST_DEADLINE)

    def repeat_an_edge(plan: dict[str, Any], state: dict[str, Any]) -> None:
        plan["guardrails"][1]["bands"] = {"amount": [0, 100, 100, 500]}

    _corrupt(server.db, "a-broken", repeat_an_edge)
    decisions = _round(server.db, server.settings.webhook_urls)  # the server delivers them
    assert [(flag, d.action) for _, flag, d in decisions] == [("b-healthy", "rollback")]
    state = admin.get(broken).json()["state"]
    assert state["status"] == "errored"
    assert "strictly increasing" in state["error"]
    assert _split(server, "a-broken") == [("v2", 0), ("v1", 10000)]  # waits on the control
    assert admin.get(healthy).json()["state"]["status"] == "rolled_back"
    entry = admin.get(f"{server.url}/api/v1/audit", params={"action": "rollout.error"}).json()[
        "entries"
    ][0]
    assert (entry["actor"], entry["resource_key"]) == ("controller", "a-broken")
    assert Hook.arrived.wait(10)
    _wait = time.monotonic() + 10
    while not any(h["event"] == "rollout.errored" for h in Hook.received):
        assert time.monotonic() < _wait
        time.sleep(0.05)
    assert _round(server.db) == []  # an errored rollout waits for a person
    assert admin.put(broken, json=PLAN).status_code == 409  # it still owns its flag
    missing = admin.post(f"{broken}/abort")
    assert missing.status_code == 422
    aborted = admin.post(f"{broken}/abort", json={"reason": "bad plan"})  # the plan is unreadable
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["state"]["status"] == "aborted"


def test_an_errored_rollout_resumes_on_its_stage(server: LiveServer) -> None:
    admin = server.session()
    admin.post(f"{server.url}{PROD}/segments", json=EU_SEGMENT).raise_for_status()
    define_metrics(server)
    url = _flag_and_plan(server, admin, "fraud-model", PLAN)
    _corrupt(server.db, "fraud-model", lambda plan, state: state.pop("started_at"))
    assert _round(server.db) == []
    assert admin.get(url).json()["state"]["status"] == "errored"
    assert _split(server, "fraud-model") == [("v2", 0), ("v1", 10000)]
    _corrupt(server.db, "fraud-model", lambda plan, state: state.update(started_at=time.time()))
    resumed = admin.post(f"{url}/resume", json={"reason": "fixed"})
    assert resumed.json()["state"]["status"] == "running"
    assert _split(server, "fraud-model") == [("v2", 100), ("v1", 9900)]  # stage 1 again


def test_times_are_those_of_the_commit(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rolled_back_at`` was when the controller began its check, not when it committed."""
    admin = server.session()
    admin.post(f"{server.url}{PROD}/segments", json=EU_SEGMENT).raise_for_status()
    define_metrics(server)
    url = _flag_and_plan(server, admin, "fraud-model", PAST_DEADLINE)
    real_gather = controller_module.gather

    def slow_gather(*args: Any, **kwargs: Any) -> Any:  # a slow look, as with a big table
        time.sleep(0.3)
        return real_gather(*args, **kwargs)

    monkeypatch.setattr(controller_module, "gather", slow_gather)
    began = time.time()
    assert _round(server.db)
    state = admin.get(url).json()["state"]
    assert state["status"] == "rolled_back"
    assert state["rolled_back_at"] >= began + 0.3
    assert state["rolled_back_at"] == state["ended_at"]
    before = time.time()
    again = _flag_and_plan(server, admin, "other", PLAN)
    advanced = admin.post(f"{again}/advance", json={"reason": "now"}).json()["state"]
    assert before <= advanced["started_at"] <= advanced["advanced_at"] <= time.time()
    assert advanced["stage_started_at"] == advanced["advanced_at"]


def test_the_server_log_shows_each_decision(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, log_level="info", ROLLWISE_CONTROLLER_INTERVAL="0.2") as server:
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {server.admin_token}"
        admin.post(f"{server.url}{PROD}/segments", json=EU_SEGMENT).raise_for_status()
        for metric in METRICS:
            admin.post(f"{server.url}{PROD}/metrics", json=metric).raise_for_status()
        url = _flag_and_plan(server, admin, "fraud-model", PAST_DEADLINE)
        deadline = time.monotonic() + 20
        while admin.get(url).json()["state"]["status"] != "rolled_back":
            assert time.monotonic() < deadline, "the controller did not decide"
            time.sleep(0.05)
        line = "rollwise: rollout production/fraud-model stage 1: rollback (the rollout's deadline"
        deadline = time.monotonic() + 10
        while line not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-2000:]
            time.sleep(0.05)

"""The controller end to end: real server, real SDK traffic, real SQLite, decisions in the audit."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import requests
from standardwebhooks import Webhook

import rollwise
from rollwise_server.rollouts.controller import Controller
from rollwise_server.rollouts.decide import Evidence, decide
from rollwise_server.rollouts.plan import parse_plan
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, live_server
from rollwise_server.webhooks import Webhooks, new_secret
from tests.rollouts.conftest import ASLEEP
from tests.rollouts.test_plan import FLAG, PLAN
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag

FAST_PLAN: dict[str, Any] = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-small",
    "stages": [
        {"share": 0.2, "min_units": 300},
        {"share": 0.5, "min_units": 600},
        {"share": 1.0, "min_units": 600},
    ],
    "guardrails": [
        {"metric": "fraud_caught", "kind": "binary", "harm": "decrease", "cohorts": ["country"]}
    ],
    "outcome_delay": 0,  # the test flushes every outcome before each controller round
}


def test_decide_policy_table() -> None:
    plan, _ = parse_plan(PLAN, FLAG)
    assert plan is not None
    running = {"status": "running", "stage": 1, "stage_started_at": 0.0}
    quiet = Evidence(units_control=10_000, units_candidate=10_000, now=10_000.0)
    assert decide(plan, running, quiet).action == "advance"
    early = Evidence(units_control=10_000, units_candidate=10_000, now=60.0)
    assert decide(plan, running, early).action == "none"  # min_duration 10m not reached
    few = Evidence(units_control=100, units_candidate=100, now=10_000.0)
    assert decide(plan, running, few).action == "none"
    srm = Evidence(units_control=10_000, units_candidate=10_000, srm_p_value=1e-6, now=60.0)
    assert decide(plan, running, srm).action == "rollback"
    late = Evidence(units_control=1, units_candidate=1, now=2e10)
    assert "deadline" in decide(plan, running, late).reason
    approval = {**running, "stage": 2}
    assert decide(plan, approval, quiet).action == "await_approval"
    last = {**running, "stage": 3}
    assert decide(plan, last, quiet).action == "complete"
    gated = attrs.evolve(
        plan, stages=[*plan.stages[:2], attrs.evolve(plan.stages[2], approval=True)]
    )
    assert decide(gated, last, quiet).action == "await_approval"  # not completed unapproved
    assert decide(plan, {"status": "paused"}, quiet).action == "none"


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, dict[str, str]]]] = []
    arrived = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((body, dict(self.headers.items())))
        Receiver.arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def drive(server: LiveServer, tmp_path: Path, harm_country: str | None) -> tuple[Any, Controller]:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    define_metrics(server)
    url = f"{base}/flags/fraud-model/rollout"
    admin.put(url, json=FAST_PLAN).raise_for_status()
    admin.post(f"{url}/start").raise_for_status()
    store = open_store(server.db)
    published: list[tuple[str, int]] = []
    # the events go into the server's outbox; the server's worker delivers them
    webhooks = Webhooks(store, server.settings.webhook_urls)
    controller = Controller(store, webhooks, lambda e, r: published.append((e, r)), 1.0)
    key = server.token("sdk", env="production")
    rng = random.Random(7)  # noqa: S311 - simulated traffic
    client = rollwise.Client(server.url, key, cache_dir=tmp_path / "c", flush_interval=0.05)
    assert client.wait_until_ready(10)
    unit = 0
    statuses = []
    for _ in range(12):  # looks
        for _ in range(1500):
            unit += 1
            country = rng.choice(["DE", "FR", "NL"])
            context = {"user_id": f"user-{unit}", "country": country, "amount": 50}
            variant = client.variant("fraud-model", context)
            rate = 0.5
            if variant == "v2":
                rate = 0.1 if country == harm_country else 0.55
            client.track("fraud_caught", f"user-{unit}", rng.random() < rate)
        assert client.flush(30)
        asyncio.run(controller.round())
        status = admin.get(url).json()["state"]["status"]
        statuses.append(status)
        if status in ("rolled_back", "completed"):
            break
        client.wait_until_ready(1)
    client.close()
    store.close()
    return admin.get(url).json(), controller, statuses, admin, published  # type: ignore[return-value]


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose webhooks go to ``Receiver`` and whose own controller stays asleep."""
    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Receiver.received, Receiver.arrived = [], threading.Event()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        with live_server(tmp_path, webhook_urls=hook, webhook_secret=SECRET, **ASLEEP) as server:
            yield server
    finally:
        receiver.shutdown()
        receiver.server_close()


SECRET = new_secret()


def test_a_harmful_cohort_rolls_back(hooked: LiveServer, tmp_path: Path) -> None:
    server = hooked
    rollout, _, statuses, admin, published = drive(server, tmp_path, harm_country="NL")
    state = rollout["state"]
    assert state["status"] == "rolled_back", statuses
    assert "country=NL" in state["end_reason"] or "gap:country=NL" in state["end_reason"]
    assert state["evidence"]["decision"] == "rollback"
    flag = admin.get(f"{server.url}/api/v1/envs/production/flags/fraud-model").json()
    split = next(r for r in flag["rules"] if r["id"] == "eu-small")["serve"]["split"]
    assert split == [{"variant": "v2", "weight": 0}, {"variant": "v1", "weight": 10000}]
    audit = admin.get(f"{server.url}/api/v1/audit", params={"action": "rollout.rollback"}).json()
    entry = audit["entries"][0]
    assert entry["actor"] == "controller"
    assert entry["details"]["evidence"]["findings"][0]["verdict"] == "harm"
    assert published  # the new revision was pushed to the streams
    assert Receiver.arrived.wait(20)  # delivered by the server's webhook worker
    (raw, headers), *_ = Receiver.received
    body = Webhook(SECRET).verify(raw, headers)  # Standard Webhooks, with the server's secret
    assert body["event"] == body["type"] == "rollout.rollback"
    assert "ROLLED BACK" in body["text"]
    assert body["evidence"]["decision"] == "rollback"


def test_a_good_candidate_reaches_100_percent(server: LiveServer, tmp_path: Path) -> None:
    rollout, _, statuses, _, _ = drive(server, tmp_path, harm_country=None)
    assert rollout["state"]["status"] == "completed", (statuses, rollout["state"])
    assert "running" in statuses


def test_the_state_survives_a_restart(server: LiveServer) -> None:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    define_metrics(server)
    admin.put(f"{base}/flags/fraud-model/rollout", json=FAST_PLAN).raise_for_status()
    admin.post(f"{base}/flags/fraud-model/rollout/start").raise_for_status()
    store = open_store(server.db)  # a second "server" on the same database
    try:
        (record,) = store.active_rollouts()
        assert record.state["status"] == "running"
        assert store.lease_rollout("production", "fraud-model", "other-replica", 60)
        controller = Controller(store, Webhooks(store), lambda e, r: None, 1.0)
        assert asyncio.run(controller.round()) == []  # leased elsewhere: not evaluated twice
    finally:
        store.close()
    assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200

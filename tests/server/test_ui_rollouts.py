"""Rollouts in the console: the plan editor (catalogue guardrails, the flag's cohorts, the
power calculation), start, the controller's rollback with its evidence on the page, the
buttons of each role, the two-person rule explained, and the live stream."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import rollwise
from rollwise_server.rollouts.controller import Controller
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, live_server
from rollwise_server.ui import rollouts as ui_rollouts
from rollwise_server.webhooks import Webhooks
from tests.rollouts.conftest import ASLEEP
from tests.server.conftest import seed
from tests.server.console_client import ConsoleClient

ROLLOUT = "/ui/envs/{env}/flags/fraud-model/rollout"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, **ASLEEP) as running:  # the test runs the rounds itself
        seed(running, metrics=True)
        yield running


def _plan_form(approval_on_second: bool = False) -> dict[str, str]:
    form = {
        "control": "v1", "candidate": "v2", "rule": "eu-small", "alpha": "0.05",
        "outcome_delay": "0",
        "on_breach": "rollback", "srm": "on",
        "stages-0-share": "20", "stages-0-min_duration": "0", "stages-0-min_units": "300",
        "stages-1-share": "50", "stages-1-min_duration": "0", "stages-1-min_units": "600",
        "stages-2-share": "100", "stages-2-min_duration": "0", "stages-2-min_units": "600",
        "guardrails-0-metric": "fraud_caught", "guardrails-0-tolerance": "",
        "guardrails-0-cohorts": "country", "mde": "0.05", "version": "0",
    }  # fmt: skip
    if approval_on_second:
        form["stages-1-approval"] = "on"
    return form


def test_the_plan_editor_checks_offers_the_catalogue_and_computes_power(
    server: LiveServer,
) -> None:
    console = ConsoleClient(server, server.admin_token)
    page = console.get(ROLLOUT.format(env="staging") + "/plan").text
    assert "fraud_caught (binary, higher is better)" in page  # from the catalogue
    assert 'name="guardrails-0-cohorts" value="country"' in page  # the flag's cohorts
    checked = console.post(ROLLOUT.format(env="staging") + "/plan",
                           {**_plan_form(), "action": "check"})  # fmt: skip
    assert checked.status_code == 200, checked.text
    assert "Power calculation" in checked.text
    needed = re.findall(r"Stage 1 \(20%\): needs ~(\d+) units per arm", checked.text)
    assert needed
    assert int(needed[0]) > 300  # a 0.05 change at an assumed rate of 0.5
    assert "no recent traffic" in checked.text
    bad = {**_plan_form(), "guardrails-0-metric": "fraud_cought", "stages-1-share": "10"}
    refused = console.post(ROLLOUT.format(env="staging") + "/plan", {**bad, "action": "save"})
    assert refused.status_code == 422
    assert re.search(r'id="guardrails-0-metric"[^>]*aria-invalid="true"', refused.text)
    assert re.search(r'id="stages-1-share"[^>]*aria-invalid="true"', refused.text)
    assert (
        server.session()
        .get(f"{server.url}/api/v1/envs/staging/flags/fraud-model/rollout")
        .status_code
        == 404
    )
    saved = console.post(
        ROLLOUT.format(env="staging") + "/plan", {**_plan_form(), "action": "save"}
    )
    assert saved.status_code == 303, saved.text
    plan = (
        server.session()
        .get(f"{server.url}/api/v1/envs/staging/flags/fraud-model/rollout")
        .json()["plan"]
    )
    assert [s["share"] for s in plan["stages"]] == [0.2, 0.5, 1.0]
    assert plan["guardrails"][0]["cohorts"] == ["country"]


def _traffic(server: LiveServer, tmp_path: Path, harm_country: str, controller: Controller) -> str:
    """SDK traffic with a candidate that harms one country, a controller round after each
    batch, until the rollout ends; its final status."""
    admin = server.session()
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model/rollout"
    key = server.token("sdk", env="production")
    rng = random.Random(11)  # noqa: S311 - simulated traffic
    client = rollwise.Client(server.url, key, cache_dir=tmp_path / "c", flush_interval=0.05)
    assert client.wait_until_ready(10)
    unit, status = 0, "running"
    try:
        for _ in range(12):
            for _ in range(1500):
                unit += 1
                country = rng.choice(["DE", "FR", "NL"])
                context = {"user_id": f"user-{unit}", "country": country, "amount": 50}
                variant = client.variant("fraud-model", context)
                rate = 0.5 if variant != "v2" else (0.1 if country == harm_country else 0.55)
                client.track("fraud_caught", f"user-{unit}", rng.random() < rate)
            assert client.flush(30)
            asyncio.run(controller.round())
            status = admin.get(url).json()["state"]["status"]
            if status in ("rolled_back", "completed"):
                break
            client.wait_until_ready(1)
    finally:
        client.close()
    return status


def test_start_rollback_by_the_controller_and_the_evidence_on_the_page(
    server: LiveServer, tmp_path: Path
) -> None:
    console = ConsoleClient(server, server.admin_token)
    path = ROLLOUT.format(env="production")
    assert (
        console.post(
            f"{path}/plan", {**_plan_form(), "action": "save", "reason": "plan"}
        ).status_code
        == 303
    )
    page = console.get(path).text
    assert 'action="/ui/envs/production/flags/fraud-model/rollout/start"' in page
    started = console.post(f"{path}/start", {"version": "1"})
    assert started.status_code == 303, started.text
    running = console.get(path).text
    assert "stage 1/3 at 20%, running" in running
    for button in ("pause", "rollback", "abort"):
        assert f"/rollout/{button}" in running
    store = open_store(server.db)
    try:
        controller = Controller(store, Webhooks(store, ""), lambda e, r: None, 1.0)
        assert _traffic(server, tmp_path, "NL", controller) == "rolled_back"
    finally:
        store.close()
    page = console.get(path).text
    assert "Status: <span data-status>rolled back</span>" in page
    assert "shows harm" in page  # the controller's reason
    assert re.search(r"<svg[^>]*rw-forest", page)  # the forest plot of cohort effects
    assert len(re.findall(r"<svg[^>]*rw-timeline", page)) >= 2  # intervals over time
    assert "country=NL" in page
    assert "verdict-harm" in page
    assert "rollout.rollback" in page
    assert "by controller" in page
    assert "Sample ratio" in page


def test_roles_see_their_buttons_and_an_editor_cannot_approve(server: LiveServer) -> None:
    admin = ConsoleClient(server, server.admin_token)
    path = ROLLOUT.format(env="staging")
    form = {**_plan_form(approval_on_second=True), "stages-0-min_units": "0"}
    assert admin.post(f"{path}/plan", {**form, "action": "save"}).status_code == 303
    api = server.session()
    url = f"{server.url}/api/v1/envs/staging/flags/fraud-model/rollout"
    api.post(f"{url}/start").raise_for_status()
    api.post(f"{url}/advance").raise_for_status()  # stage 2 needs an approval
    editor = ConsoleClient(server, server.token("editor"))
    page = editor.get(path).text
    assert "/rollout/approve" not in page
    assert "/rollout/pause" in page
    forged = editor.post(f"{path}/approve", {})
    assert forged.status_code == 403
    assert "may not do this" in forged.text
    approver = ConsoleClient(server, server.token("approver"))
    page = approver.get(path).text
    assert "/rollout/approve" in page
    assert "/rollout/pause" not in page
    assert approver.post(f"{path}/approve", {}).status_code == 303
    assert api.get(url).json()["state"]["stage"] == 3


def test_the_two_person_rule_is_explained_when_it_blocks_you(server: LiveServer) -> None:
    alice = server.token("admin", name="alice-token", owner="alice")
    console = ConsoleClient(server, alice)
    path = ROLLOUT.format(env="production")
    form = {**_plan_form(approval_on_second=True), "stages-0-min_units": "0"}
    assert (
        console.post(f"{path}/plan", {**form, "action": "save", "reason": "p"}).status_code == 303
    )
    assert console.post(f"{path}/start", {}).status_code == 303
    server.session(alice).post(
        f"{server.url}/api/v1/envs/production/flags/fraud-model/rollout/advance"
    ).raise_for_status()
    page = console.get(path).text
    assert "Two-person rule" in page
    refused = console.post(f"{path}/approve", {})
    assert refused.status_code == 403
    assert "two-person rule" in refused.text


def test_the_live_stream_reports_a_change(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    path = ROLLOUT.format(env="staging")
    assert console.post(f"{path}/plan", {**_plan_form(), "action": "save"}).status_code == 303
    assert console.post(f"{path}/start", {}).status_code == 303
    events: list[str] = []
    opened = threading.Event()
    changed = threading.Event()

    def listen() -> None:
        with console.http.get(f"{server.url}{path}/live", stream=True, timeout=20) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            opened.set()
            for line in response.iter_lines(decode_unicode=True):
                events.append(line)
                if line == "event: changed":
                    changed.set()
                    return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10)
    assert console.post(f"{path}/pause", {}).status_code == 303
    assert changed.wait(10), events
    reader.join(10)


def test_a_rollout_page_of_a_flag_without_one_offers_a_plan(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    page = console.get(ROLLOUT.format(env="staging")).text
    assert "has no rollout in staging" in page
    assert "Plan a rollout" in page
    viewer = ConsoleClient(server, server.token("viewer"))
    assert "Plan a rollout" not in viewer.get(ROLLOUT.format(env="staging")).text
    assert requests.get(f"{server.url}{ROLLOUT.format(env='staging')}/live", timeout=5,
                        allow_redirects=False).status_code == 303  # fmt: skip


def test_live_streams_per_token_are_capped(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_rollouts, "MAX_LIVE_STREAMS", 2)
    console = ConsoleClient(server, server.admin_token)
    live = f"{server.url}{ROLLOUT.format(env='staging')}/live"
    first = console.http.get(live, stream=True, timeout=20)
    second = console.http.get(live, stream=True, timeout=20)
    try:
        assert (first.status_code, second.status_code) == (200, 200)
        deadline = time.monotonic() + 10
        while (third := console.http.get(live, stream=True, timeout=20)).status_code == 200:
            third.close()  # both streams may not have started yet: ask again
            assert time.monotonic() < deadline, "a third stream was never refused"
        assert third.status_code == 429
        assert "Retry-After" in third.headers
        other = ConsoleClient(server, server.token("viewer"))
        other_stream = other.http.get(live, stream=True, timeout=20)
        assert other_stream.status_code == 200  # another token has streams of its own
        other_stream.close()
    finally:
        first.close()
        second.close()
    deadline = time.monotonic() + 10
    while (again := console.http.get(live, stream=True, timeout=20)).status_code != 200:
        assert time.monotonic() < deadline, "closed streams were never given back"
    again.close()

"""Monitors end to end: a real server, events sent as an SDK sends them (with the historical
times of a simulated day), the controller's checks at those times, and what people see: the
alert in the API, the audit log, a signed ``monitor.retrain`` webhook, the CLI; an
acknowledgement; the rollback action; and every bad spec named by its field."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import pytest
from standardwebhooks import Webhook

from rollwise_server.errors import VersionConflict
from rollwise_server.rollouts.controller import Controller
from rollwise_server.rollouts.evidence import epoch, iso
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer, postgresql_under_test
from rollwise_server.webhooks import Webhooks
from tests.rollouts.test_controller import SECRET, Receiver, hooked  # noqa: F401 - a fixture
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag
from tests.server.console_client import ConsoleClient
from tests.server.test_cli import run

T0 = 1_795_000_000.0  # 2026-11-18: the baseline hour starts here
HOUR, CHECK = 3600.0, 600.0
BASE = "/api/v1/envs/production/flags/fraud-model"
SPEC: dict[str, Any] = {
    "variant": "v2",
    "baseline": {"kind": "window", "since": iso(T0), "until": iso(T0 + HOUR)},
    "metrics": [{"metric": "fraud_caught", "cohorts": ["country"],
                 "values": {"country": ["DE", "FR", "NL"]}}],
    "drift": ["country"],
    "interval": "10m",
    "outcome_delay": 0,
    "attribution_window": "5m",
}  # fmt: skip
LAG = 300.0
"""A batch is read once its attribution window (5 minutes) has passed."""


def _setup(server: LiveServer) -> Any:
    admin = server.session()
    env = f"{server.url}/api/v1/envs/production"
    admin.post(f"{env}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{env}/flags", json=example_flag()).raise_for_status()
    define_metrics(server)
    return admin


def _traffic(server: LiveServer, since: float, units: int, rates: dict[str, float],
             seed: int, mix: dict[str, float] | None = None, variant: str = "v2",
             span: float = CHECK) -> None:  # fmt: skip
    """``units`` exposures of ``variant`` spread over ``span`` (ten minutes) from ``since``, and
    their outcomes on fraud_caught (1 with the country's rate), posted as an SDK posts them."""
    rng = random.Random(seed)  # noqa: S311 - simulated traffic
    countries = mix or {"DE": 0.4, "FR": 0.4, "NL": 0.2}
    exposures, outcomes = [], []
    for i in range(units):
        ts = since + span * i / units
        country = rng.choices(list(countries), list(countries.values()))[0]
        unit = f"u{seed}-{variant}-{i}"
        exposures.append({
            "id": str(uuid.uuid4()), "ts": iso(ts), "flag": "fraud-model", "flag_version": 1,
            "variant": variant, "rule": "eu-small", "unit_type": "user_id", "unit": unit,
            "attrs": {"country": country, "amount": 50},
        })  # fmt: skip
        outcomes.append({
            "id": str(uuid.uuid4()), "ts": iso(ts + 1), "metric": "fraud_caught",
            "unit_type": "user_id", "unit": unit, "value": float(rng.random() < rates[country]),
        })  # fmt: skip
    sdk = server.session(server.token("sdk", env="production"))
    for path, events in (("exposures", exposures), ("events", outcomes)):
        for start in range(0, len(events), 1000):
            answer = sdk.post(f"{server.url}/api/v1/sdk/{path}",
                              json={"events": events[start : start + 1000]})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.json()["rejected"] == 0, answer.text
    if postgresql_under_test():  # what autovacuum does within a minute of a load in production:
        # without statistics the planner joins the outcomes by nested loops (20 s a reduction)
        store = open_store(server.db)
        try:
            with store.transaction() as conn:
                conn.execute("ANALYZE exposures")
                conn.execute("ANALYZE outcomes")
        finally:
            store.close()


def _check(server: LiveServer, now: float) -> None:
    store = open_store(server.db)
    try:
        webhooks = Webhooks(store, server.settings.webhook_urls)
        asyncio.run(Controller(store, webhooks, lambda e, r: None, 1.0, clock=lambda: now).round())
    finally:
        store.close()


def _one_stage_rollout(admin: Any, server: LiveServer, share: float) -> str:
    """Run a rollout of v2 in one stage of ``share`` to its end; its URL."""
    url = f"{server.url}{BASE}/rollout"
    plan = {"control": "v1", "candidate": "v2", "rule": "eu-small", "stages": [{"share": share}]}
    admin.put(url, json=plan).raise_for_status()
    admin.post(f"{url}/start").raise_for_status()
    admin.post(f"{url}/advance").raise_for_status()
    return url


def _baseline(server: LiveServer) -> None:
    for k in range(6):  # an hour of healthy traffic: 0.5 everywhere
        _traffic(server, T0 + k * CHECK, 1500, {"DE": 0.5, "FR": 0.5, "NL": 0.5}, seed=100 + k)


def test_a_decay_in_one_country_alerts_audits_and_sends_a_signed_retrain(
    hooked: LiveServer,  # noqa: F811
) -> None:
    server = hooked
    admin = _setup(server)
    _baseline(server)
    put = admin.put(f"{server.url}{BASE}/monitors/fraud-health",
                    json={**SPEC, "reason": "after the v2 rollout"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json()["state"] == {"status": "ok", "checks": 0}
    start = T0 + 2 * HOUR
    fired_at = None
    for k in range(12):
        rates = {"DE": 0.5, "FR": 0.5, "NL": 0.5 if k < 4 else 0.25}  # NL decays from check 4
        _traffic(server, start + k * CHECK, 1500, rates, seed=k)
        _check(server, start + (k + 1) * CHECK + LAG)
        state = admin.get(f"{server.url}{BASE}/monitors/fraud-health").json()["state"]
        assert state["checks"] == k + 1
        if state["status"] == "alerting":
            fired_at = k
            break
    assert fired_at is not None, state
    assert fired_at >= 4  # not before the decay
    (alert,) = state["alerts"]
    assert alert["stream"] == "fraud_caught country=NL"
    assert alert["kind"] == "decay"
    assert alert["effect"] == pytest.approx(-0.25, abs=0.1)
    low, high = alert["interval"]
    assert low < alert["effect"] < high < 0
    assert alert["window"] == [iso(start + fired_at * CHECK), iso(start + (fired_at + 1) * CHECK)]
    assert alert["baseline"] == {"variant": "v2", "since": iso(T0), "until": iso(T0 + HOUR)}
    healthy = ("fraud_caught country=DE", "fraud_caught country=FR", "drift country")
    assert all(state["streams"][k]["statistic"] < state["threshold"] for k in healthy)
    audit = admin.get(f"{server.url}/api/v1/audit", params={"flag": "fraud-model"}).json()
    actions = [e["action"] for e in audit["entries"]]
    assert actions[:2] == ["monitor.alert", "monitor.put"]
    assert audit["entries"][0]["details"]["alert"]["stream"] == "fraud_caught country=NL"
    assert Receiver.arrived.wait(20)
    body, headers = next((b, h) for b, h in Receiver.received if b"monitor.retrain" in b)
    signed = Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})
    assert signed["type"] == "monitor.retrain"
    assert (signed["flag"], signed["monitor"], signed["cohort"]) == (
        "fraud-model", "fraud-health", "country=NL",
    )  # fmt: skip
    assert signed["evidence"] == f"{BASE}/monitors/fraud-health"
    assert signed["metric"] == "fraud_caught"
    assert signed["interval"] == alert["interval"]
    page = (
        ConsoleClient(server, server.admin_token).get("/ui/envs/production/flags/fraud-model").text
    )
    assert "Monitor fraud-health is alerting: fraud_caught country=NL" in page
    assert 'data-monitor="fraud-health"' in page
    status = run(server, "monitors", "status", "fraud-model", "fraud-health")
    assert status.exit_code == 0, status.output
    assert "alerting" in status.output
    assert "fraud_caught country=NL" in status.output
    ack = admin.post(f"{server.url}{BASE}/monitors/fraud-health/acknowledge",
                     json={"reason": "retraining started"})  # fmt: skip
    assert ack.status_code == 200, ack.text
    assert ack.json()["state"]["status"] == "ok"
    assert len(ack.json()["state"]["alerts"]) == 1  # the history stays
    entry = admin.get(f"{server.url}/api/v1/audit", params={"flag": "fraud-model"}).json()
    assert entry["entries"][0]["action"] == "monitor.acknowledge"
    assert entry["entries"][0]["reason"] == "retraining started"


def test_nothing_changes_nothing_fires(server: LiveServer) -> None:
    admin = _setup(server)
    _baseline(server)
    admin.put(f"{server.url}{BASE}/monitors/quiet", json=SPEC).raise_for_status()
    start = T0 + 2 * HOUR
    for k in range(8):
        _traffic(server, start + k * CHECK, 1500, {"DE": 0.5, "FR": 0.5, "NL": 0.5}, seed=50 + k)
        _check(server, start + (k + 1) * CHECK + LAG)
    state = admin.get(f"{server.url}{BASE}/monitors/quiet").json()["state"]
    assert (state["status"], state["checks"], state["alerts"]) == ("ok", 8, [])
    assert {"fraud_caught", "fraud_caught country=DE", "fraud_caught country=FR",
            "fraud_caught country=NL", "drift country"} <= set(state["streams"])  # fmt: skip
    _check(server, start + 8 * CHECK + LAG + 60)  # not due: less than an interval since the last
    assert admin.get(f"{server.url}{BASE}/monitors/quiet").json()["state"]["checks"] == 8


def test_a_drift_of_the_traffic_mix_is_seen(server: LiveServer) -> None:
    admin = _setup(server)
    _baseline(server)
    spec = {**SPEC, "metrics": []}
    admin.put(f"{server.url}{BASE}/monitors/mix", json=spec).raise_for_status()
    start = T0 + 2 * HOUR
    for k in range(6):
        mix = {"DE": 0.2, "FR": 0.2, "NL": 0.6}  # a new market floods in
        _traffic(server, start + k * CHECK, 1500, {"DE": 0.5, "FR": 0.5, "NL": 0.5},
                 seed=70 + k, mix=mix)  # fmt: skip
        _check(server, start + (k + 1) * CHECK + LAG)
    state = admin.get(f"{server.url}{BASE}/monitors/mix").json()["state"]
    assert state["status"] == "alerting"
    assert state["alerts"][0]["stream"] == "drift country"
    assert state["alerts"][0]["kind"] == "drift"


def test_the_rollback_action_serves_the_control_again(server: LiveServer) -> None:
    admin = _setup(server)
    url = _one_stage_rollout(admin, server, 1.0)
    assert admin.get(url).json()["state"]["status"] == "completed"
    _baseline(server)
    spec = {**SPEC, "action": "rollback", "drift": []}
    admin.put(f"{server.url}{BASE}/monitors/guard", json=spec).raise_for_status()
    start = T0 + 2 * HOUR
    for k in range(8):
        _traffic(server, start + k * CHECK, 1500, {"DE": 0.2, "FR": 0.2, "NL": 0.2}, seed=90 + k)
        _check(server, start + (k + 1) * CHECK + LAG)
        flag = admin.get(f"{server.url}{BASE}").json()
        split = {a["variant"]: a["weight"] for a in flag["rules"][1]["serve"]["split"]}
        if split["v1"] == 10000:
            break
    assert split == {"v2": 0, "v1": 10000}
    history = admin.get(f"{server.url}{BASE}/history").json()["versions"]
    assert history[-1]["action"] == "monitor.rollback"
    assert history[-1]["actor"] == "controller"
    review = admin.get(f"{server.url}{BASE}/rollouts")
    (only,) = review.json()["runs"]
    text = admin.get(f"{server.url}{BASE}/rollouts/{only['id']}/review").text
    assert "| guard | v2 | alerting |" in text  # the review names the monitor attached


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"metrics": [{"metric": "fraud_cuaght"}]}, "metrics[0].metric", "unknown metric"),
        ({"metrics": [{"metric": "fraud_caught", "tolerance": 0.01}]}, "metrics[0].tolerance",
         "must be <= 0"),
        ({"drift": ["colour"]}, "drift[0]", "not a cohort attribute"),
        ({"variant": "v9"}, "variant", "must be a variant"),
        ({"baseline": {"kind": "window", "since": iso(T0)}}, "baseline.until", "RFC 3339"),
        ({"baseline": {"kind": "holdout", "variant": "v2"}}, "baseline.variant", "another"),
        ({"baseline": {"kind": "rollout"}}, "baseline.kind", "rollout plan"),
        ({"action": "rollback"}, "action", "rollout plan"),
        ({"interval": "soon"}, "interval", "duration"),
        ({"horizon": "5m"}, "horizon", "at least one interval"),
        ({"alpha": 0.9}, "alpha", "(0.0, 0.5]"),
        ({"metrics": [], "drift": []}, "metrics", "at least one"),
        ({"unknown": 1}, "unknown", ""),
    ],
)  # fmt: skip
def test_a_bad_spec_names_its_field(
    server: LiveServer, change: dict[str, Any], path: str, words: str
) -> None:
    admin = _setup(server)
    answer = admin.put(f"{server.url}{BASE}/monitors/m", json={**SPEC, **change})
    assert answer.status_code == 422, answer.text
    problems = {p["path"]: p["message"] for p in answer.json()["problems"]}
    assert path in problems, problems
    assert words in problems[path]
    assert admin.get(f"{server.url}{BASE}/monitors").json()["monitors"] == []  # nothing kept


def test_roles_names_and_deletion(server: LiveServer) -> None:
    admin = _setup(server)
    viewer = server.session(server.token("viewer"))
    url = f"{server.url}{BASE}/monitors/m"
    assert viewer.put(url, json=SPEC).status_code == 403
    assert admin.put(f"{server.url}{BASE}/monitors/bad%20name", json=SPEC).status_code == 404
    assert admin.get(f"{server.url}/api/v1/envs/production/flags/nope/monitors").status_code == 404
    admin.put(url, json=SPEC).raise_for_status()
    assert viewer.get(url).json()["spec"]["variant"] == "v2"
    assert viewer.delete(url).status_code == 403
    assert admin.delete(url, params={"reason": "replaced"}).status_code == 204
    assert admin.get(url).status_code == 404
    audit = admin.get(f"{server.url}/api/v1/audit", params={"resource_type": "monitor"}).json()
    assert [e["action"] for e in audit["entries"]] == ["monitor.delete", "monitor.put"]
    assert audit["entries"][0]["details"] == {"monitor": "m"}
    listed = run(server, "monitors", "list", "fraud-model")
    assert listed.exit_code == 0, listed.output
    assert json.loads(run(server, "monitors", "list", "fraud-model", "--json").output) == {
        "monitors": []
    }


def test_a_holdout_baseline_follows_the_season(server: LiveServer) -> None:
    """Both variants fall together (a holiday lull): no alarm against the holdout's trailing
    window (20 minutes: the lag of a trailing window is its length, docs/monitors.md); then
    v2 alone falls: an alarm."""
    admin = _setup(server)
    spec = {**SPEC, "baseline": {"kind": "holdout", "variant": "v1", "window": "20m"},
            "drift": []}  # fmt: skip
    admin.put(f"{server.url}{BASE}/monitors/holdout", json=spec).raise_for_status()
    start = T0 + 2 * HOUR
    for k in range(2):  # the holdout's trailing window before the first batch
        _traffic(server, start - (2 - k) * CHECK, 800, dict.fromkeys(COUNTRIES, 0.5),
                 seed=300 + k, variant="v1")  # fmt: skip
    for k in range(14):
        season = 0.35 if k >= 2 else 0.5  # both variants fall from check 2
        own = season - (0.15 if k >= 8 else 0.0)  # and v2 alone from check 8
        _traffic(server, start + k * CHECK, 800, dict.fromkeys(COUNTRIES, season),
                 seed=400 + k, variant="v1")  # fmt: skip
        _traffic(server, start + k * CHECK, 1500, dict.fromkeys(COUNTRIES, own), seed=500 + k)
        _check(server, start + (k + 1) * CHECK + LAG)
        state = admin.get(f"{server.url}{BASE}/monitors/holdout").json()["state"]
        if state["status"] == "alerting":
            break
    assert state["status"] == "alerting", state
    assert state["checks"] >= 9  # not while both fell together
    assert state["alerts"][0]["baseline"]["variant"] == "v1"


def test_a_rollout_baseline_reads_the_variant_during_its_rollout(server: LiveServer) -> None:
    admin = _setup(server)
    _one_stage_rollout(admin, server, 1.0)
    (run_,) = admin.get(f"{server.url}{BASE}/rollouts").json()["runs"]
    began, ended = (epoch(run_[k]) for k in ("started_at", "ended_at"))
    _traffic(server, began, 3000, dict.fromkeys(COUNTRIES, 0.5), seed=600,
             span=max(ended - began, 0.01) * 0.99)  # the rollout's own evidence  # fmt: skip
    spec = {**SPEC, "baseline": {"kind": "rollout"}, "drift": []}
    admin.put(f"{server.url}{BASE}/monitors/since-rollout", json=spec).raise_for_status()
    start = ended + HOUR
    for k in range(8):
        _traffic(server, start + k * CHECK, 1500, dict.fromkeys(COUNTRIES, 0.3), seed=700 + k)
        _check(server, start + (k + 1) * CHECK + LAG)
        state = admin.get(f"{server.url}{BASE}/monitors/since-rollout").json()["state"]
        if state["status"] == "alerting":
            break
    assert state["status"] == "alerting", state
    baseline = state["alerts"][0]["baseline"]
    assert (baseline["since"], baseline["until"]) == (iso(began), iso(ended))
    assert state["alerts"][0]["baseline_mean"] == pytest.approx(0.5, abs=0.05)


COUNTRIES = ("DE", "FR", "NL")


def _predictions(server: LiveServer, since: float, count: int, mean: float, seed: int) -> None:
    """``count`` served (live) scores of v2 around ``mean`` over ten minutes from ``since``,
    posted as an SDK posts a shadow run's predictions."""
    rng = random.Random(seed)  # noqa: S311 - simulated scores
    events = [
        {"id": str(uuid.uuid4()), "ts": iso(since + CHECK * i / count), "flag": "fraud-model",
         "flag_version": 1, "variant": "v2", "role": "live", "run": str(uuid.uuid4()),
         "unit_type": "user_id", "unit": f"p{seed}-{i}", "label": None,
         "score": min(max(rng.gauss(mean, 0.1), 0.0), 1.0), "latency_ms": 2.0, "status": "ok",
         "attrs": {"country": "DE"}}
        for i in range(count)
    ]  # fmt: skip
    sdk = server.session(server.token("sdk", env="production"))
    answer = sdk.post(f"{server.url}/api/v1/sdk/predictions", json={"events": events})
    assert answer.json()["accepted"] == count, answer.text


def test_a_drift_of_the_predictions_is_seen(server: LiveServer) -> None:
    admin = _setup(server)
    for k in range(6):
        _predictions(server, T0 + k * CHECK, 500, 0.30, seed=800 + k)
    spec = {**SPEC, "metrics": [], "drift": [], "drift_predictions": True}
    admin.put(f"{server.url}{BASE}/monitors/scores", json=spec).raise_for_status()
    start = T0 + 2 * HOUR
    for k in range(8):
        _predictions(server, start + k * CHECK, 500, 0.30 if k < 3 else 0.36, seed=900 + k)
        _check(server, start + (k + 1) * CHECK + LAG)
        state = admin.get(f"{server.url}{BASE}/monitors/scores").json()["state"]
        if state["status"] == "alerting":
            break
    assert state["status"] == "alerting", state
    assert state["checks"] >= 4  # not before the scores moved
    assert state["alerts"][0]["stream"] == "drift predictions"


def test_a_monitor_waits_for_the_rollout_unless_told_to_watch_always(server: LiveServer) -> None:
    admin = _setup(server)
    url = f"{server.url}{BASE}/rollout"
    plan = {"control": "v1", "candidate": "v2", "rule": "eu-small",
            "stages": [{"share": 0.5}, {"share": 1.0}]}  # fmt: skip
    admin.put(url, json=plan).raise_for_status()
    admin.post(f"{url}/start").raise_for_status()
    _baseline(server)
    admin.put(f"{server.url}{BASE}/monitors/later", json=SPEC).raise_for_status()
    admin.put(f"{server.url}{BASE}/monitors/now", json={**SPEC, "watch": "always"})
    start = T0 + 2 * HOUR
    _traffic(server, start, 1500, dict.fromkeys(COUNTRIES, 0.5), seed=1000)
    _check(server, start + CHECK + LAG)
    later = admin.get(f"{server.url}{BASE}/monitors/later").json()["state"]
    now = admin.get(f"{server.url}{BASE}/monitors/now").json()["state"]
    assert later["note"] == "waits for the flag's rollout to end (it is running)"
    assert later["checks"] == 0
    assert now["checks"] == 1
    admin.post(f"{url}/advance").raise_for_status()
    admin.post(f"{url}/advance").raise_for_status()  # completed
    _traffic(server, start + CHECK, 1500, dict.fromkeys(COUNTRIES, 0.5), seed=1001)
    _check(server, start + 2 * CHECK + LAG)
    later = admin.get(f"{server.url}{BASE}/monitors/later").json()["state"]
    assert later["checks"] == 1
    assert "note" not in later
    assert later["streams"]["fraud_caught"]["units"] == 1500  # the batch after the rollout


def test_a_plan_can_complete_with_a_holdout_on_the_control(server: LiveServer) -> None:
    """docs/monitors.md: a last stage below 1 keeps that holdout for a monitor's baseline."""
    admin = _setup(server)
    url = _one_stage_rollout(admin, server, 0.98)
    assert admin.get(url).json()["state"]["status"] == "completed"
    flag = admin.get(f"{server.url}{BASE}").json()
    split = {a["variant"]: a["weight"] for a in flag["rules"][1]["serve"]["split"]}
    assert split == {"v2": 9800, "v1": 200}
    holdout = {**SPEC, "baseline": {"kind": "holdout", "variant": "v1"}}
    assert admin.put(f"{server.url}{BASE}/monitors/h", json=holdout).status_code == 200


def test_the_rollback_action_during_a_rollout_rolls_the_rollout_back(server: LiveServer) -> None:
    """With ``watch: always`` the monitor may fire while the rollout runs: the rollout itself is
    rolled back (an edit of its managed rule would be refused)."""
    admin = _setup(server)
    url = f"{server.url}{BASE}/rollout"
    plan = {"control": "v1", "candidate": "v2", "rule": "eu-small",
            "stages": [{"share": 0.5}, {"share": 1.0}]}  # fmt: skip
    admin.put(url, json=plan).raise_for_status()
    admin.post(f"{url}/start").raise_for_status()
    _baseline(server)
    spec = {**SPEC, "action": "rollback", "drift": [], "watch": "always"}
    admin.put(f"{server.url}{BASE}/monitors/guard", json=spec).raise_for_status()
    start = T0 + 2 * HOUR
    for k in range(8):
        _traffic(server, start + k * CHECK, 1500, dict.fromkeys(COUNTRIES, 0.2), seed=1100 + k)
        _check(server, start + (k + 1) * CHECK + LAG)
        state = admin.get(url).json()["state"]
        if state["status"] != "running":
            break
    assert state["status"] == "rolled_back", state
    assert state["end_reason"].startswith("monitor guard: fraud_caught")
    flag = admin.get(f"{server.url}{BASE}").json()
    split = {a["variant"]: a["weight"] for a in flag["rules"][1]["serve"]["split"]}
    assert split == {"v2": 0, "v1": 10000}


def test_a_check_and_a_persons_write_never_overwrite_each_other(server: LiveServer) -> None:
    """A person's acknowledgement read the state before a check wrote it: it must not put the
    old state back (the batch would be counted twice); a check that read a monitor deleted and
    made again since must not write onto the new one."""
    admin = _setup(server)
    admin.put(f"{server.url}{BASE}/monitors/m", json=SPEC).raise_for_status()
    store = open_store(server.db)
    try:
        read = store.get_monitor("production", "fraud-model", "m")
        assert read is not None
        checked = {**read.state, "checks": 1, "batch_until": 1.0}
        assert store.put_monitor_state("production", "fraud-model", "m", checked,
                                       expected_version=read.version,
                                       expected_updated_at=read.updated_at)  # fmt: skip
        with pytest.raises(VersionConflict):  # the person's write, from the older reading
            store.put_monitor("production", "fraud-model", "m", read.spec,
                              {**read.state, "status": "ok"}, expected_version=read.version,
                              actor="erin", action="monitor.acknowledge", reason=None,
                              expected_updated_at=read.updated_at)  # fmt: skip
        ack = admin.post(f"{server.url}{BASE}/monitors/m/acknowledge")  # reads afresh: fine
        assert ack.json()["state"]["checks"] == 1
        stale = store.get_monitor("production", "fraud-model", "m")
        assert stale is not None
        admin.delete(f"{server.url}{BASE}/monitors/m").raise_for_status()
        admin.put(f"{server.url}{BASE}/monitors/m", json=SPEC).raise_for_status()
        assert not store.put_monitor_state("production", "fraud-model", "m", checked,
                                           expected_version=1,
                                           expected_updated_at=stale.updated_at)  # fmt: skip
        fresh = admin.get(f"{server.url}{BASE}/monitors/m").json()["state"]
        assert fresh == {"status": "ok", "checks": 0}
    finally:
        store.close()


def test_every_stream_shares_the_false_alarm_budget(server: LiveServer) -> None:
    """The threshold divides alpha over every stream the checks run: fraud_caught overall and
    in DE, FR, NL and (other) (5), the country mix (1), the predictions (1)."""
    admin = _setup(server)
    spec = {**SPEC, "drift_predictions": True}
    admin.put(f"{server.url}{BASE}/monitors/all", json=spec).raise_for_status()
    from rollwise.analysis.monitoring import cusum_threshold
    from rollwise_server.monitoring.spec import parse_monitor
    from rollwise_server.rollouts import transitions

    store = open_store(server.db)
    try:
        record = store.get_monitor("production", "fraud-model", "all")
        flag, _, _ = transitions.flag_of(store, "production", "fraud-model")
    finally:
        store.close()
    assert record is not None
    parsed, _ = parse_monitor(record.spec, flag, None)
    assert parsed is not None
    assert parsed.streams == 7
    assert parsed.threshold == cusum_threshold(parsed.checks, alpha=0.05, streams=7)

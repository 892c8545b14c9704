"""The console's tokens, audit log, metrics and segments pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from rollwise_server.testing import LiveServer, live_server
from tests.server.conftest import seed
from tests.server.console_client import ConsoleClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("ui-admin")) as running:
        seed(running, ("production",), metrics=True)
        yield running


def test_a_token_is_created_shown_once_and_revoked(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    created = console.post(
        "/ui/tokens",
        [("name", "ci-bot"), ("owner", "carol"), ("role", "editor"), ("envs", "production"),
         ("env", "production"), ("expires_at", "2030-01-01T00:00:00")],
    )  # fmt: skip
    assert created.status_code == 201, created.text
    secret = re.search(r'id="created-token" value="(rw_[^"]+)"', created.text)
    assert secret
    assert "shown only once" in created.text
    listed = console.get("/ui/tokens").text
    assert secret.group(1) not in listed
    assert "ci-bot" in listed
    assert "2030-01-01 00:00:00 UTC" in listed
    assert "editor in production" in listed
    flags = requests.get(
        f"{server.url}/api/v1/envs/production/flags",
        headers={"Authorization": f"Bearer {secret.group(1)}"}, timeout=10,
    )  # fmt: skip
    assert flags.status_code == 200
    revoke = r'action="/ui/tokens/(tok_[0-9a-f]+)/revoke"[^<]*<input[^>]*>[^<]*<button[^>]*>'
    token_id = re.search(revoke + "Revoke ci-bot", listed)
    assert token_id
    revoked = console.post(f"/ui/tokens/{token_id.group(1)}/revoke", {})
    assert revoked.status_code == 303
    refused = requests.get(
        f"{server.url}/api/v1/envs/production/flags",
        headers={"Authorization": f"Bearer {secret.group(1)}"}, timeout=10,
    )  # fmt: skip
    assert refused.status_code == 401
    bad = console.post("/ui/tokens", {"name": "", "role": "viewer"})
    assert bad.status_code == 422
    assert "name" in bad.text


def test_the_audit_log_is_searched_by_actor_action_resource_and_time(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    everything = console.get("/ui/audit").text
    assert "flag.create" in everything
    assert "metric.create" in everything
    by_action = console.get("/ui/audit?action=metric.create").text
    assert "metric.create" in by_action
    assert "flag.create" not in by_action
    by_resource = console.get("/ui/audit?resource_type=flag&resource_key=fraud-model").text
    assert '<a href="/ui/envs/production/flags/fraud-model">fraud-model</a>' in by_resource
    assert "segment.create" not in by_resource
    assert "No entries match." in console.get("/ui/audit?actor=nobody").text
    future = console.get("/ui/audit?since=2999-01-01T00:00").text
    assert "No entries match." in future
    past = console.get("/ui/audit?until=2000-01-01T00:00:00").text
    assert "No entries match." in past
    refused = console.get("/ui/audit?since=yesterday")
    assert "since" in refused.text


def test_the_metrics_page_shows_the_catalogue_and_undefined_names(server: LiveServer) -> None:
    sdk = server.token("sdk", env="production")
    event = {"id": "00000000-0000-7000-8000-000000000001", "ts": "2026-11-25T10:00:00Z"}
    events = [{**event, "metric": "fraud_cuaght", "unit_type": "user_id", "unit": "u1", "value": 1}]
    requests.post(
        f"{server.url}/api/v1/sdk/events", json={"events": events},
        headers={"Authorization": f"Bearer {sdk}"}, timeout=10,
    ).raise_for_status()  # fmt: skip
    page = ConsoleClient(server, server.admin_token).get("/ui/envs/production/metrics").text
    assert "fraud_caught" in page
    assert "latency_ms" in page
    assert "Reported but not defined" in page
    assert "fraud_cuaght" in page


def test_the_segments_page_lists_conditions_and_users(server: LiveServer) -> None:
    page = ConsoleClient(server, server.admin_token).get("/ui/envs/production/segments").text
    assert "country in DE (Germany), FR (France), NL (Netherlands)" in page
    assert '<a href="/ui/envs/production/flags/fraud-model">fraud-model</a>' in page

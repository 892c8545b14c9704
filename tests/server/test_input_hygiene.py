"""Hostile JSON gets a 400, never a 500 or a dropped connection (issue 12, item 4)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollwise_server.api.common import MAX_JSON_DEPTH, json_depth
from rollwise_server.settings import Settings
from rollwise_server.testing import LiveServer, live_server


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_json_to_an_admin_write_is_400(server: LiveServer, depth: int) -> None:
    body = b'{"key": "x", "variants": ' + nested(depth) + b"}"
    answer = server.session().post(
        f"{server.url}/api/v1/envs/production/flags", data=body,
        headers={"Content-Type": "application/json"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert "nests deeper than 64" in answer.json()["detail"]


def test_json_at_the_depth_limit_is_read(server: LiveServer) -> None:
    body = b'{"key": "x", "variants": ' + nested(MAX_JSON_DEPTH - 1) + b"}"
    answer = server.session().post(
        f"{server.url}/api/v1/envs/production/flags", data=body,
        headers={"Content-Type": "application/json"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 422  # read, then refused as a flag: not a 400 on its depth


def test_deep_json_to_ingestion_is_400(server: LiveServer) -> None:
    sdk = server.session(server.token("sdk", env="production"))
    answer = sdk.post(
        f"{server.url}/api/v1/sdk/exposures", data=nested(100_000),
        headers={"Content-Type": "application/json"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert server.session().get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_json_depth_needs_no_recursion() -> None:
    value: list[object] = []
    for _ in range(200_000):
        value = [value]
    assert json_depth(value) == 200_001
    assert json_depth({"a": [1, {"b": None}]}) == 3
    assert json_depth(7) == 0


def test_every_gzip_member_is_read(server: LiveServer) -> None:
    """Two gzip members: only the first one's events were read, the rest dropped silently."""
    import gzip
    import json
    import uuid

    def batch(unit: str) -> bytes:
        event = {"id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00.000Z", "flag": "f",
                 "flag_version": 1, "variant": "v1", "rule": None, "unit_type": "user_id",
                 "unit": unit, "attrs": {}}  # fmt: skip
        return json.dumps({"events": [event]}).encode()

    # one JSON document split over two members: read whole, it is the batch of two events
    whole = json.loads(batch("u1"))
    whole["events"] += json.loads(batch("u2"))["events"]
    text = json.dumps(whole).encode()
    body = gzip.compress(text[:40]) + gzip.compress(text[40:])
    sdk = server.session(server.token("sdk", env="production"))
    answer = sdk.post(
        f"{server.url}/api/v1/sdk/exposures", data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    cut = gzip.compress(text)[:-9]  # a member that ends early
    truncated = sdk.post(
        f"{server.url}/api/v1/sdk/exposures", data=cut,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=30,
    )  # fmt: skip
    assert truncated.status_code == 400


def _event(ts: str, **extra: object) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "ts": ts, "flag": "f", "flag_version": 1, "variant": "v1",
            "rule": None, "unit_type": "user_id", "unit": "u1", "attrs": {}, **extra}  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture(scope="module")
def windowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the production defaults of the event time window (30 days back, 1 ahead)."""
    with live_server(
        tmp_path_factory.mktemp("window"),
        event_max_age=Settings().event_max_age,
        event_max_future=Settings().event_max_future,
    ) as running:
        yield running


def test_event_times_outside_the_window_are_refused_each_with_a_reason(
    windowed: LiveServer,
) -> None:
    now = datetime.now(UTC)
    times = {
        "year 1": "0001-01-01T00:00:00.000Z",
        "year 9999": "9999-12-31T23:59:59.000Z",
        "31 days ago": _iso(now - timedelta(days=31)),
        "2 days ahead": _iso(now + timedelta(days=2)),
        "29 days ago": _iso(now - timedelta(days=29)),
        "now": _iso(now),
        "23 hours ahead": _iso(now + timedelta(hours=23)),
    }
    sdk = windowed.session(windowed.token("sdk", env="production"))
    answer = sdk.post(
        f"{windowed.url}/api/v1/sdk/exposures",
        json={"events": [_event(ts) for ts in times.values()]}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 3
    refused = {e["index"]: e["problems"] for e in result["errors"]}
    assert sorted(refused) == [0, 1, 2, 3]
    for index in (0, 2):
        assert refused[index] == [
            {"path": "ts", "message": "is older than 30d (event_max_age): events so late are "
             "refused"}
        ]  # fmt: skip
    for index in (1, 3):
        assert refused[index] == [
            {"path": "ts", "message": "is more than 1d ahead of the server's clock "
             "(event_max_future)"}
        ]  # fmt: skip


def test_the_window_is_a_setting(tmp_path: Path) -> None:
    old = _iso(datetime.now(UTC) - timedelta(days=300))
    with live_server(tmp_path, event_max_age=365 * 86_400.0) as server:
        sdk = server.session(server.token("sdk", env="production"))
        answer = sdk.post(
            f"{server.url}/api/v1/sdk/exposures", json={"events": [_event(old)]}, timeout=30
        )
        assert answer.json()["accepted"] == 1
    settings = Settings.from_env(
        {"ROLLWISE_EVENT_MAX_AGE": "90d", "ROLLWISE_EVENT_MAX_FUTURE": "2h"}
    )
    assert (settings.event_max_age, settings.event_max_future) == (90 * 86_400.0, 7_200.0)


@pytest.mark.parametrize(
    "name", ["", "x" * 257, 'say "hi"', "back\\slash", "tab\there", "nul\x00"]
)  # fmt: skip
def test_attribute_names_are_bounded(windowed: LiveServer, name: str) -> None:
    sdk = windowed.session(windowed.token("sdk", env="production"))
    event = _event(_iso(datetime.now(UTC)), attrs={name: "v", "country": "DE"})
    answer = sdk.post(f"{windowed.url}/api/v1/sdk/exposures", json={"events": [event]}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 0
    (problem,) = answer.json()["errors"][0]["problems"]
    assert problem["path"].startswith("attrs.")
    assert "attribute name is 1-256 characters" in problem["message"]
    fine = _event(_iso(datetime.now(UTC)), attrs={"x" * 256: "v", "country": "DE"})
    accepted = sdk.post(f"{windowed.url}/api/v1/sdk/exposures", json={"events": [fine]}, timeout=30)
    assert accepted.json()["accepted"] == 1

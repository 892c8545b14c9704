"""The SDK endpoints over real HTTP: rules with ETag/304/gzip, the SSE stream, event ingestion."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rollwise.rules import RulesDocument
from rollwise_server.testing import LiveServer, connect, live_server
from tests.server.conftest import EU_SEGMENT, example_flag


def sdk_session(server: LiveServer, env: str = "production") -> requests.Session:
    return server.session(server.token("sdk", env=env))


def test_rules_document_etag_and_304(server: LiveServer) -> None:
    sdk = sdk_session(server)
    url = f"{server.url}/api/v1/sdk/rules"
    first = sdk.get(url)
    assert first.status_code == 200
    assert first.headers["etag"] == '"0"'
    assert first.json() == {
        "schema_version": 1, "environment": "production", "revision": 0, "segments": {}, "flags": {}
    }  # fmt: skip
    not_modified = sdk.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    admin = server.session()
    admin.post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
    admin.post(f"{server.url}/api/v1/envs/production/flags", json=example_flag())
    changed = sdk.get(url, headers={"If-None-Match": '"0"'})
    assert changed.status_code == 200
    assert changed.headers["etag"] == '"2"'
    document = RulesDocument.from_json(changed.json())  # the SDK's own parser accepts it
    assert document.revision == 2
    assert document.flags["fraud-model"].version == 1
    assert sdk.get(url, headers={"If-None-Match": 'W/"2"'}).status_code == 304


def test_rules_gzip(server: LiveServer) -> None:
    server.session().post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
    token = server.token("sdk", env="production")
    raw = requests.get(
        f"{server.url}/api/v1/sdk/rules",
        headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
        stream=True,
        timeout=10,
    )
    assert raw.headers["content-encoding"] == "gzip"
    body = json.loads(gzip.decompress(raw.raw.read()))
    assert body["segments"]["eu"]["conditions"][0]["values"] == ["DE", "FR", "NL"]


def sse_lines(response: requests.Response) -> Iterator[str]:
    """The stream's lines, read byte by byte (events are small and must not wait for a buffer).

    ``iter_lines`` cannot be used: with small chunks it splits ``\r\n`` into two line ends.
    """
    buffer = b""
    for byte in response.iter_content(chunk_size=1):
        buffer += byte
        if buffer.endswith(b"\n"):
            yield buffer.rstrip(b"\r\n").decode()
            buffer = b""


def read_events(lines: Iterator[str], count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Parse ``count`` SSE events (skipping heartbeat comments)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    for line in lines:
        if time.monotonic() > deadline:
            break
        if line == "":
            if current:
                events.append(current)
                current = {}
                if len(events) == count:
                    break
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        current[field] = value.lstrip(" ")
    return events


def test_stream_sends_the_current_revision_then_every_change(server: LiveServer) -> None:
    token = server.token("sdk", env="production")
    admin = server.session()
    with requests.get(
        f"{server.url}/api/v1/sdk/stream",
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=10,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = sse_lines(response)
        (first,) = read_events(lines, 1)
        assert (first["event"], first["id"]) == ("rules", "0")

        def change() -> None:
            time.sleep(0.2)
            admin.post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)

        threading.Thread(target=change).start()
        (second,) = read_events(lines, 1)
    data = json.loads(second["data"])
    assert second["id"] == "1"
    assert data["revision"] == 1
    assert RulesDocument.from_json(data["document"]).segments["eu"].key == "eu"


def test_stream_honours_last_event_id(server: LiveServer) -> None:
    token = server.token("sdk", env="production")
    server.session().post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": "1"}
    with requests.get(
        f"{server.url}/api/v1/sdk/stream", headers=headers, stream=True, timeout=10
    ) as r:
        server.session().post(f"{server.url}/api/v1/envs/production/flags", json=example_flag())
        (event,) = read_events(sse_lines(r), 1)
    assert event["id"] == "2"  # revision 1 was skipped: the client had it


def test_stream_heartbeats(tmp_path: Any) -> None:
    with live_server(tmp_path, heartbeat_seconds=0.2) as server:
        token = server.token("sdk", env="production")
        with requests.get(
            f"{server.url}/api/v1/sdk/stream",
            headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "0"},
            stream=True,
            timeout=10,
        ) as response:
            lines = []
            for line in sse_lines(response):
                lines.append(line)
                if sum(1 for x in lines if x.startswith(":")) >= 2:
                    break
    assert any(line.startswith(": ping") for line in lines)


def exposure(**overrides: Any) -> dict[str, Any]:
    event = {
        "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00.123Z", "flag": "fraud-model",
        "flag_version": 3, "variant": "v2", "rule": "eu-small", "unit_type": "user_id",
        "unit": "user-1", "attrs": {"country": "DE", "amount": 120.5},
    }  # fmt: skip
    return {**event, **overrides}


def test_ingest_is_idempotent_and_reports_each_bad_event(server: LiveServer) -> None:
    sdk = sdk_session(server)
    url = f"{server.url}/api/v1/sdk/exposures"
    good = [exposure(unit=f"u{i}") for i in range(5)]
    bad = [
        exposure(id="not-a-uuid"),
        exposure(flag_version=0, ts="yesterday"),
        "not an object",
        exposure(attrs={"nested": {"x": 1}}),
    ]
    first = sdk.post(url, json={"events": good + bad}).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (5, 0, 4)
    problems = {e["index"]: {p["path"] for p in e["problems"]} for e in first["errors"]}
    assert problems == {5: {"id"}, 6: {"flag_version", "ts"}, 7: {""}, 8: {"attrs.nested"}}
    again = sdk.post(url, json={"events": good}).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 5, 0)
    rows = (
        connect(server.db)
        .execute("SELECT env, ts, flag, variant, unit, attrs FROM exposures ORDER BY unit")
        .fetchall()
    )
    assert len(rows) == 5
    assert rows[0] == ("production", "2026-11-25T10:00:00.123Z", "fraud-model", "v2", "u0",
                       '{"amount":120.5,"country":"DE"}')  # fmt: skip


def test_ingest_gzip_outcomes_and_limits(tmp_path: Any) -> None:
    with live_server(tmp_path, max_batch_events=10, max_body_bytes=20_000) as server:
        sdk = sdk_session(server)
        outcomes = [
            {"id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00Z", "metric": "fraud_caught",
             "unit_type": "user_id", "unit": f"u{i}", "value": i % 2}
            for i in range(10)
        ]  # fmt: skip
        body = gzip.compress(json.dumps({"events": outcomes}).encode())
        ok = sdk.post(
            f"{server.url}/api/v1/sdk/events",
            data=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert ok.json()["accepted"] == 10
        too_many = sdk.post(f"{server.url}/api/v1/sdk/events", json={"events": outcomes * 2})
        assert too_many.status_code == 413
        too_big = sdk.post(f"{server.url}/api/v1/sdk/events", data=b"[" + b" " * 30_000 + b"]")
        assert too_big.status_code == 413
        bomb = gzip.compress(b" " * 1_000_000)
        inflated = sdk.post(
            f"{server.url}/api/v1/sdk/events", data=bomb, headers={"Content-Encoding": "gzip"}
        )
        assert inflated.status_code == 413
        garbage = sdk.post(f"{server.url}/api/v1/sdk/events", data=b"{nope")
        assert garbage.status_code == 400
        count = connect(server.db).execute("SELECT count(*) FROM outcomes").fetchone()
        assert count == (10,)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health(server: LiveServer, path: str) -> None:
    response = requests.get(f"{server.url}{path}", timeout=5)
    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_metrics(server: LiveServer) -> None:
    sdk = sdk_session(server)
    sdk.get(f"{server.url}/api/v1/sdk/rules")
    sdk.post(f"{server.url}/api/v1/sdk/exposures", json={"events": [exposure(), exposure(id="x")]})
    server.session().post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    assert (
        'rollwise_http_requests_total{method="GET",route="/api/v1/sdk/rules",status="200"} 1.0'
        in text
    )
    assert 'rollwise_events_ingested_total{kind="exposures"} 1.0' in text
    assert 'rollwise_events_rejected_total{kind="exposures"} 1.0' in text
    assert 'rollwise_rules_revision{env="production"} 1.0' in text
    assert "rollwise_sse_streams 0.0" in text
    assert "rollwise_http_request_duration_seconds_bucket" in text

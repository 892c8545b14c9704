"""Ingestion of shadow-run predictions: each field checked and named, stored exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from rollwise.events import format_ts
from rollwise_server.testing import LiveServer, connect


def prediction(**changes: Any) -> dict[str, Any]:
    event = {
        "id": str(uuid.uuid4()), "ts": format_ts(datetime.now(UTC).timestamp()),
        "flag": "fraud-model", "flag_version": 3, "variant": "v2", "role": "shadow",
        "run": str(uuid.uuid4()), "unit_type": "user_id", "unit": "u1", "label": None,
        "score": 0.75, "latency_ms": 3.5, "status": "ok", "attrs": {"country": "DE"},
    }  # fmt: skip
    event.update(changes)
    return event


def test_predictions_are_stored_once_and_each_bad_field_is_named(server: LiveServer) -> None:
    sdk = server.session(server.token("sdk", env="production"))
    url = f"{server.url}/api/v1/sdk/predictions"
    good = [
        prediction(unit="u1"),
        prediction(unit="u2", role="live", variant="v1", score=None, label="fraud"),
        prediction(unit="u3", status="timeout", score=None, latency_ms=1500),
        prediction(unit="u4", score=None),  # ok, with an answer that is neither text nor number
    ]
    bad = [
        prediction(role="candidate"),
        prediction(run="r-1"),
        prediction(status="done"),
        prediction(status="error"),  # an error with an answer
        prediction(latency_ms=-1),
        prediction(score="0.5"),
        prediction(label=""),
        prediction(flag_version=0, variant="not a key"),
    ]
    first = sdk.post(url, json={"events": good + bad})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (4, 0, 8)
    problems = {e["index"]: {p["path"] for p in e["problems"]} for e in body["errors"]}
    assert problems == {
        4: {"role"}, 5: {"run"}, 6: {"status"}, 7: {"status"}, 8: {"latency_ms"},
        9: {"score"}, 10: {"label"}, 11: {"flag_version", "variant"},
    }  # fmt: skip
    again = sdk.post(url, json={"events": good}).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 4, 0)
    rows = (
        connect(server.db)
        .execute(
            "SELECT unit, role, variant, label, score, latency_ms, status, attrs"
            " FROM predictions WHERE env = 'production' ORDER BY unit"
        )
        .fetchall()
    )
    assert [tuple(r) for r in rows] == [
        ("u1", "shadow", "v2", None, 0.75, 3.5, "ok", '{"country":"DE"}'),
        ("u2", "live", "v1", "fraud", None, 3.5, "ok", '{"country":"DE"}'),
        ("u3", "shadow", "v2", None, None, 1500.0, "timeout", '{"country":"DE"}'),
        ("u4", "shadow", "v2", None, None, 3.5, "ok", '{"country":"DE"}'),
    ]


def test_only_sdk_tokens_post_predictions(server: LiveServer) -> None:
    url = f"{server.url}/api/v1/sdk/predictions"
    viewer = server.session(server.token("viewer"))
    assert viewer.post(url, json={"events": [prediction()]}).status_code == 403
    stranger = server.session("rw_not_a_token")
    assert stranger.post(url, json={"events": [prediction()]}).status_code == 401

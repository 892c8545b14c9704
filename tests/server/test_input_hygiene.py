"""Hostile JSON gets a 400, never a 500 or a dropped connection (issue 12, item 4)."""

from __future__ import annotations

import pytest

from rollwise_server.api.common import MAX_JSON_DEPTH, json_depth
from rollwise_server.testing import LiveServer


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

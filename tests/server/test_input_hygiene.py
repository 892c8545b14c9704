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

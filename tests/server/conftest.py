"""Fixtures: a real server (uvicorn on 127.0.0.1, a free port) on a fresh SQLite database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollwise_server.testing import LiveServer, live_server

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as running:
        yield running


def example_flag() -> dict[str, Any]:
    """The example flag in API form: its key, no version."""
    flag = json.loads(EXAMPLE.read_text())["flags"]["fraud-model"]
    flag.pop("version")
    return {"key": "fraud-model", **flag}


EU_SEGMENT = {
    "key": "eu",
    "conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR", "NL"]}],
}


METRICS: list[dict[str, Any]] = [
    {"key": "fraud_caught", "kind": "binary", "direction": "higher_is_better"},
    {"key": "fraud_missed", "kind": "binary", "direction": "lower_is_better"},
    {"key": "converted", "kind": "binary", "direction": "higher_is_better"},
    {"key": "latency_ms", "kind": "mean", "direction": "lower_is_better", "unit": "ms"},
]
"""The metric catalogue the tests' rollout plans are checked against."""


def define_metrics(server: LiveServer, env: str = "production") -> None:
    """Put ``METRICS`` into ``env``'s metric catalogue."""
    session = server.session()
    for metric in METRICS:
        response = session.post(f"{server.url}/api/v1/envs/{env}/metrics", json=metric)
        response.raise_for_status()


def seed(server: LiveServer, envs: tuple[str, ...] = ("production", "staging"), *,
         flag: bool = True, metrics: bool = False) -> None:  # fmt: skip
    """The eu segment, the example flag (unless ``flag`` is false) and, with ``metrics``, the
    metric catalogue, in each of ``envs``."""
    admin = server.session()
    for env in envs:
        base = f"{server.url}/api/v1/envs/{env}"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        if flag:
            admin.post(
                f"{base}/flags", json={**example_flag(), "reason": "setup"}
            ).raise_for_status()
        if metrics:
            define_metrics(server, env)


def new_flag(server: LiveServer, env: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """A copy of the example flag under a fresh key in ``env``: its key and its body."""
    key = f"{prefix}-{uuid.uuid4().hex[:8]}"
    body = {k: v for k, v in example_flag().items() if k != "key"}
    response = server.session().post(
        f"{server.url}/api/v1/envs/{env}/flags", json={"key": key, **body}
    )
    response.raise_for_status()
    return key, body

"""Hostile bodies over HTTP to a real server: a 4xx problem, never a 5xx or a dropped connection.

One server (uvicorn on 127.0.0.1, fresh SQLite) takes every body of the module, so a body that
broke the ingestion thread or the event loop would show in the bodies after it and in
``/healthz``. Each request gets a fresh connection, so that a connection the server closed
after an error cannot be mistaken for the next body's fault.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from rollwise_server.testing import LiveServer
from tests.fuzz.edits import Case, cases, corrupt, scattered
from tests.fuzz.hostile import fuzz_settings
from tests.fuzz.test_ingest_decoder import (
    BATCHES,
    exposure,
    outcome,
)

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module")
def sdk_key(server: LiveServer) -> str:
    return server.token("sdk", env="production")


def _post(server: LiveServer, token: str, path: str, body: bytes, **headers: str) -> Any:
    with requests.Session() as session:  # a fresh connection per body
        return session.post(
            f"{server.url}{path}", data=body, timeout=30,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     **headers},
        )  # fmt: skip


def _assert_answered(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code


def _events(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


INGEST_BODIES: dict[str, tuple[bytes, dict[str, str]]] = {
    "deep": (DEEP, {}),
    "deep-gzip": (gzip.compress(DEEP), {"Content-Encoding": "gzip"}),
    "random-bytes": (bytes(range(256)) * 4, {}),
    "random-gzip": (bytes(range(256)) * 4, {"Content-Encoding": "gzip"}),
    "truncated-gzip": (gzip.compress(_events(exposure()))[:-7], {"Content-Encoding": "gzip"}),
    "two-members": (gzip.compress(b"[") + gzip.compress(b"]"), {"Content-Encoding": "gzip"}),
    "brotli": (_events(exposure()), {"Content-Encoding": "br"}),
    "invalid-utf8": (_events(exposure()).replace(b"user-1", b"\xff\xfe"), {}),
    "nan": (_events(exposure()).replace(b"120.5", b"NaN"), {}),
    "5000-digits": (_events(exposure()).replace(b"120.5", b"1" + b"0" * 5000), {}),
    "400-digit-version": (_events(exposure(flag_version=10**400)), {}),
    "surrogates": (_events(exposure(unit="\ud800", ts="\udfff", attrs={"a": "\ud800"})), {}),
    "year-1": (_events(exposure(ts="0001-01-01T00:00:00Z")), {}),
    "year-9999": (_events(exposure(ts="9999-12-31T23:59:59Z")), {}),
    "empty": (b"", {}),
    "utf16": (json.dumps([exposure()]).encode("utf-16"), {}),
}


@pytest.mark.parametrize("path", ["/api/v1/sdk/exposures", "/api/v1/sdk/events"])
@pytest.mark.parametrize("name", sorted(INGEST_BODIES))
def test_hostile_ingestion_bodies_are_answered(
    server: LiveServer, sdk_key: str, path: str, name: str
) -> None:
    body, headers = INGEST_BODIES[name]
    _assert_answered(_post(server, sdk_key, path, body, **headers))


ADMIN_BODIES: dict[str, bytes] = {
    "deep": b'{"key": "deep", "variants": ' + DEEP + b"}",
    "random-bytes": bytes(range(256)),
    "invalid-utf8": b'{"key": "\xff"}',
    "nan-payload": b'{"key": "n", "variants": {"a": {"payload": NaN}}, "off_variant": "a",'
    b' "default_variant": "a"}',
    "5000-digits": b'{"key": "d", "version": 1' + b"0" * 5000 + b"}",
    "surrogate-description": json.dumps({"key": "s", "description": "\ud800"}).encode(),
    "surrogate-key": json.dumps({"\ud800": 1}).encode(),
    "redos-pattern": json.dumps(
        {
            "key": "redos",
            "variants": {"a": {}, "b": {}},
            "off_variant": "a",
            "default_variant": "a",
            "rules": [
                {
                    "id": "r",
                    "serve": {"variant": "b"},
                    "conditions": [
                        {"attribute": "email", "operator": "matches", "value": "^(a+)+$"}
                    ],
                }
            ],
        }
    ).encode(),
    "backreference": json.dumps(
        {
            "key": "backref",
            "variants": {"a": {}},
            "off_variant": "a",
            "default_variant": "a",
            "rules": [
                {
                    "id": "r",
                    "serve": {"variant": "a"},
                    "conditions": [{"attribute": "x", "operator": "matches", "value": "(a)\\1"}],
                }
            ],
        }
    ).encode(),
    "100001-values": json.dumps(
        {
            "key": "many",
            "variants": {"a": {}},
            "off_variant": "a",
            "default_variant": "a",
            "rules": [
                {
                    "id": "r",
                    "serve": {"variant": "a"},
                    "conditions": [{"attribute": "x", "operator": "in", "values": ["v"] * 100_001}],
                }
            ],
        }
    ).encode(),
    "json-array": b"[]",
}


@pytest.mark.parametrize("name", sorted(ADMIN_BODIES))
def test_hostile_admin_writes_are_answered(server: LiveServer, name: str) -> None:
    response = _post(
        server, server.admin_token, "/api/v1/envs/production/flags", ADMIN_BODIES[name]
    )
    _assert_answered(response)


@fuzz_settings(max_examples=40)
@given(
    st.data(),
    st.one_of(cases(BATCHES), scattered(BATCHES, one_in=4)),
    st.sampled_from([None, "gzip"]),
)
def test_hostile_batches_over_http(
    server_and_key: tuple[LiveServer, str], data: st.DataObject, case: Case, encoding: str | None
) -> None:
    server, key = server_and_key
    raw = data.draw(corrupt(case.as_json()))
    headers = {"Content-Encoding": "gzip"} if encoding else {}
    body = gzip.compress(raw, mtime=0) if encoding else raw
    path = "/api/v1/sdk/events" if case.name == "outcomes" else "/api/v1/sdk/exposures"
    _assert_answered(_post(server, key, path, body, **headers))


@pytest.fixture(scope="module")
def server_and_key(server: LiveServer, sdk_key: str) -> Iterator[tuple[LiveServer, str]]:
    """Both at once: Hypothesis's examples cannot take function-scoped fixtures."""
    yield server, sdk_key
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_the_server_is_healthy_after_all_that(server: LiveServer, sdk_key: str) -> None:
    ok = _post(server, sdk_key, "/api/v1/sdk/exposures", _events(exposure(unit="after")))
    assert (ok.status_code, ok.json()["rejected"]) == (200, 0), ok.text
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200


# -- bugs found by this fuzzing, kept as examples (fixed) --


def test_an_outcome_value_too_large_for_a_float_is_answered(
    server: LiveServer, sdk_key: str
) -> None:
    body = _events(outcome()).replace(b'"value": 1.0', b'"value": 1' + b"0" * 400)
    _assert_answered(_post(server, sdk_key, "/api/v1/sdk/events", body))


def test_a_rejected_attribute_named_with_a_lone_surrogate_is_answered(
    server: LiveServer, sdk_key: str
) -> None:
    body = _events(exposure(unit="stored"), exposure(unit="named", attrs={"\ud800": {"x": 1}}))
    _assert_answered(_post(server, sdk_key, "/api/v1/sdk/exposures", body))

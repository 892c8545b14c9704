"""The role x endpoint matrix: 401 without a valid token, 403 without permission, else 2xx."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rollwise_server.testing import LiveServer, connect, live_server
from tests.server.conftest import EU_SEGMENT, example_flag

ROLES = ["sdk", "viewer", "editor", "approver", "admin"]
ALLOWED = {
    "read": {"viewer", "editor", "approver", "admin"},
    "write": {"editor", "admin"},
    "admin": {"admin"},
    "sdk": {"sdk"},
}
_counter = itertools.count()
Call = Callable[[LiveServer, requests.Session], requests.Response]


def _fresh() -> str:
    return f"k{next(_counter)}"


def _current(server: LiveServer, path: str) -> str:
    version = server.session().get(f"{server.url}{path}").json()["version"]
    return f'"{version}"'


def _event() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00Z", "flag": "fraud-model",
        "flag_version": 1, "variant": "v1", "rule": "eu-small", "unit_type": "user_id",
        "unit": "u1", "attrs": {"country": "DE"},
    }  # fmt: skip


FLAG = "/api/v1/envs/production/flags/fraud-model"
METRICS = "/api/v1/envs/production/metrics"


def _metric() -> dict[str, Any]:
    return {"key": _fresh(), "kind": "binary", "direction": "lower_is_better"}


SEGMENT = "/api/v1/envs/production/segments/eu"
ENDPOINTS: dict[str, tuple[str, Call]] = {
    "GET /envs": ("read", lambda s, c: c.get(f"{s.url}/api/v1/envs")),
    "POST /envs": ("admin", lambda s, c: c.post(f"{s.url}/api/v1/envs", json={"key": _fresh()})),
    "GET flags": ("read", lambda s, c: c.get(f"{s.url}/api/v1/envs/production/flags")),
    "POST flags": (
        "write",
        lambda s, c: c.post(
            f"{s.url}/api/v1/envs/production/flags", json={**example_flag(), "key": _fresh()}
        ),
    ),
    "GET flag": ("read", lambda s, c: c.get(f"{s.url}{FLAG}")),
    "PUT flag": (
        "write",
        lambda s, c: c.put(
            f"{s.url}{FLAG}", json=example_flag(), headers={"If-Match": _current(s, FLAG)}
        ),
    ),
    "DELETE flag": (
        "write",
        lambda s, c: c.delete(
            f"{s.url}/api/v1/envs/production/flags/"
            + s.session()
            .post(f"{s.url}/api/v1/envs/production/flags", json={**example_flag(), "key": _fresh()})
            .json()["key"]
        ),
    ),
    "GET history": ("read", lambda s, c: c.get(f"{s.url}{FLAG}/history")),
    "POST kill": ("write", lambda s, c: c.post(f"{s.url}{FLAG}/kill", json={"reason": "x"})),
    "POST revert": (
        "write",
        lambda s, c: c.post(f"{s.url}{FLAG}/revert", json={"to_version": 1, "reason": "x"}),
    ),
    "POST promote": (
        "write",
        lambda s, c: c.post(f"{s.url}{FLAG}/promote", json={"to": "staging"}),
    ),
    "GET segments": ("read", lambda s, c: c.get(f"{s.url}/api/v1/envs/production/segments")),
    "POST segments": (
        "write",
        lambda s, c: c.post(
            f"{s.url}/api/v1/envs/production/segments", json={**EU_SEGMENT, "key": _fresh()}
        ),
    ),
    "GET segment": ("read", lambda s, c: c.get(f"{s.url}{SEGMENT}")),
    "PUT segment": (
        "write",
        lambda s, c: c.put(
            f"{s.url}{SEGMENT}", json=EU_SEGMENT, headers={"If-Match": _current(s, SEGMENT)}
        ),
    ),
    "DELETE segment": (
        "write",
        lambda s, c: c.delete(
            f"{s.url}/api/v1/envs/production/segments/"
            + s.session()
            .post(f"{s.url}/api/v1/envs/production/segments", json={**EU_SEGMENT, "key": _fresh()})
            .json()["key"]
        ),
    ),
    "GET segment history": ("read", lambda s, c: c.get(f"{s.url}{SEGMENT}/history")),
    "GET metrics": ("read", lambda s, c: c.get(f"{s.url}{METRICS}")),
    "POST metrics": ("write", lambda s, c: c.post(f"{s.url}{METRICS}", json=_metric())),
    "GET metric": ("read", lambda s, c: c.get(f"{s.url}{METRICS}/fraud_missed")),
    "PUT metric": (
        "write",
        lambda s, c: c.put(
            f"{s.url}{METRICS}/fraud_missed",
            json={**_metric(), "description": _fresh()},
            headers={"If-Match": _current(s, f"{METRICS}/fraud_missed")},
        ),
    ),
    "GET metric history": ("read", lambda s, c: c.get(f"{s.url}{METRICS}/fraud_missed/history")),
    "GET env": ("read", lambda s, c: c.get(f"{s.url}/api/v1/envs/production")),
    "PATCH env": (
        "admin",
        lambda s, c: c.patch(
            f"{s.url}/api/v1/envs/production", json={"protected": True, "reason": "x"}
        ),
    ),
    "GET tokens": ("admin", lambda s, c: c.get(f"{s.url}/api/v1/tokens")),
    "POST tokens": (
        "admin",
        lambda s, c: c.post(
            f"{s.url}/api/v1/tokens", json={"name": _fresh(), "role": "viewer", "owner": "o"}
        ),
    ),
    "DELETE token": (
        "admin",
        lambda s, c: c.delete(
            f"{s.url}/api/v1/tokens/"
            + s.session()
            .post(f"{s.url}/api/v1/tokens", json={"name": _fresh(), "role": "viewer", "owner": "o"})
            .json()["id"]
        ),
    ),
    "GET audit": ("read", lambda s, c: c.get(f"{s.url}/api/v1/audit")),
    "GET webhook deliveries": ("admin", lambda s, c: c.get(f"{s.url}/api/v1/webhooks/deliveries")),
    "GET sdk rules": ("sdk", lambda s, c: c.get(f"{s.url}/api/v1/sdk/rules")),
    "GET sdk stream": (
        "sdk",
        lambda s, c: _first_status(c, f"{s.url}/api/v1/sdk/stream"),
    ),
    "POST sdk exposures": (
        "sdk",
        lambda s, c: c.post(f"{s.url}/api/v1/sdk/exposures", json={"events": [_event()]}),
    ),
    "POST sdk events": (
        "sdk",
        lambda s, c: c.post(
            f"{s.url}/api/v1/sdk/events",
            json={"events": [{**_event(), "metric": "fraud_caught", "value": 1}]},
        ),
    ),
}


def _first_status(client: requests.Session, url: str) -> requests.Response:
    response = client.get(url, stream=True, timeout=10)
    response.close()
    return response


@pytest.fixture(scope="module")
def matrix_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    directory: Path = tmp_path_factory.mktemp("roles")
    # The matrix fails authentication a hundred times a minute from 127.0.0.1 on purpose.
    with live_server(directory, auth_failures_per_minute=10**6) as server:
        admin = server.session()
        admin.post(
            f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT
        ).raise_for_status()
        admin.post(f"{server.url}/api/v1/envs/staging/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(
            f"{server.url}/api/v1/envs/production/flags", json=example_flag()
        ).raise_for_status()
        admin.post(
            f"{server.url}{METRICS}", json={**_metric(), "key": "fraud_missed"}
        ).raise_for_status()
        tokens = {
            role: server.token(role, env="production" if role == "sdk" else None) for role in ROLES
        }
        yield server, tokens


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("role", [*ROLES, "none", "bogus", "revoked"])
def test_role_matrix(
    matrix_server: tuple[LiveServer, dict[str, str]], endpoint: str, role: str
) -> None:
    server, tokens = matrix_server
    permission, call = ENDPOINTS[endpoint]
    client = requests.Session()
    if role == "bogus":
        client.headers["Authorization"] = "Bearer rw_not-a-real-token"
    elif role == "revoked":
        secret = server.token("admin")
        token_id = [
            t for t in server.session().get(f"{server.url}/api/v1/tokens").json()["tokens"]
        ][-1]["id"]
        server.session().delete(f"{server.url}/api/v1/tokens/{token_id}").raise_for_status()
        client.headers["Authorization"] = f"Bearer {secret}"
    elif role != "none":
        client.headers["Authorization"] = f"Bearer {tokens[role]}"
    response = call(server, client)
    if role in ("none", "bogus", "revoked"):
        assert response.status_code == 401, (endpoint, role, response.text)
    elif role in ALLOWED[permission]:
        assert 200 <= response.status_code < 300, (endpoint, role, response.text)
    else:
        assert response.status_code == 403, (endpoint, role, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_sdk_tokens_are_bound_to_their_environment(
    matrix_server: tuple[LiveServer, dict[str, str]],
) -> None:
    server, _ = matrix_server
    staging = server.token("sdk", env="staging")
    client = server.session(staging)
    document = client.get(f"{server.url}/api/v1/sdk/rules").json()
    assert document["environment"] == "staging"
    production = server.session().get(f"{server.url}/api/v1/envs/production/flags").json()
    assert len(production["flags"]) > 1  # the matrix created more flags in production ...
    assert set(document["flags"]) <= {"fraud-model"}  # ... which staging's SDK never sees
    denied = client.get(f"{server.url}/api/v1/envs/production/flags")
    assert denied.status_code == 403


def test_tokens_are_stored_as_hashes_only(matrix_server: tuple[LiveServer, dict[str, str]]) -> None:
    server, tokens = matrix_server
    dump = connect(server.db).dump()
    for secret in tokens.values():
        assert secret not in dump
        assert len(secret) >= 40  # rw_ + 32 random bytes in base64url
    listed = server.session().get(f"{server.url}/api/v1/tokens").json()["tokens"]
    assert all("token" not in t and "secret_hash" not in t for t in listed)

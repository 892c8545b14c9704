"""Every response says ``nosniff``, may not be framed, sends no referrer, and is not stored by
caches unless it says otherwise: the rules document is ``no-cache`` (revalidate with its ETag)."""

from __future__ import annotations

import pytest
import requests

from rollwise_server.testing import LiveServer

SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _check(response: requests.Response, cache_control: str) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert response.headers.get("Cache-Control") == cache_control, response.url


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/healthz", None, 200),
        ("/readyz", None, 200),
        ("/metrics", None, 200),
        ("/api/v1/openapi.json", None, 200),
        ("/api/v1/envs", "admin", 200),
        ("/api/v1/tokens", "admin", 200),
        ("/api/v1/envs", None, 401),
        ("/api/v1/envs/nowhere", "admin", 404),
        ("/no/such/route", None, 404),
    ],
)
def test_responses_carry_the_security_headers_and_no_store(
    server: LiveServer, path: str, token: str | None, status: int
) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"} if token else {}
    response = requests.get(f"{server.url}{path}", headers=headers, timeout=10)
    assert response.status_code == status
    _check(response, "no-store")


def test_a_created_token_is_not_stored_by_caches(server: LiveServer) -> None:
    response = server.session().post(
        f"{server.url}/api/v1/tokens",
        json={"name": "n", "owner": "o", "role": "viewer"},
        timeout=10,
    )
    assert response.status_code == 201
    _check(response, "no-store")


def test_the_rules_document_is_revalidated_not_unstored(server: LiveServer) -> None:
    sdk = server.session(server.token("sdk", env="production"))
    first = sdk.get(f"{server.url}/api/v1/sdk/rules", timeout=10)
    assert first.status_code == 200
    _check(first, "no-cache")
    again = sdk.get(
        f"{server.url}/api/v1/sdk/rules", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    _check(again, "no-cache")
    with sdk.get(f"{server.url}/api/v1/sdk/stream", stream=True, timeout=10) as stream:
        assert stream.status_code == 200
        _check(stream, "no-cache")

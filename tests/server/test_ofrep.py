"""OFREP against a real server, read by the OpenFeature project's own OFREP provider
(``openfeature-provider-ofrep`` from PyPI), as a service in another language would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer
from tests.server.conftest import seed

QA = EvaluationContext("u1", {"country": "US"})


@pytest.fixture
def seeded(server: LiveServer) -> LiveServer:
    seed(server)
    return server


@pytest.fixture(autouse=True)
def _reset_openfeature() -> Iterator[None]:
    yield
    api.shutdown()


def _provider(server: LiveServer, key: str | None = None, header: str = "bearer") -> Any:
    token = key or server.token("sdk", env="production")
    headers = ({"Authorization": f"Bearer {token}"} if header == "bearer"
               else {"X-API-Key": token})  # fmt: skip
    api.set_provider_and_wait(OFREPProvider(server.url, headers_factory=lambda: headers))
    return api.get_client()


def test_the_ofrep_provider_evaluates_rollwise_flags(seeded: LiveServer) -> None:
    client = _provider(seeded)
    details = client.get_string_details("fraud-model", "v1", QA)
    assert (details.value, details.variant, details.reason) == ("v2", "v2",
                                                                Reason.TARGETING_MATCH)  # fmt: skip
    assert details.flag_metadata == {"flag_version": 1, "rule": "qa-team"}
    missing = client.get_string_details("no-such-flag", "v1", QA)
    assert (missing.value, missing.error_code) == ("v1", ErrorCode.FLAG_NOT_FOUND)
    nobody = client.get_string_details("fraud-model", "v1", EvaluationContext("u9", {}))
    assert (nobody.value, nobody.reason) == ("v1", Reason.DEFAULT)  # no rule: the default
    mismatch = client.get_boolean_details("fraud-model", False, QA)
    assert (mismatch.value, mismatch.error_code) == (False, ErrorCode.TYPE_MISMATCH)


def test_a_split_is_an_exposure_of_the_targeting_key(seeded: LiveServer) -> None:
    client = _provider(seeded, header="x-api-key")
    context = EvaluationContext("user-7", {"country": "DE", "amount": 50})
    values = {client.get_string_value("fraud-model", "v1", context) for _ in range(3)}
    assert len(values) == 1  # sticky
    (variant,) = values
    store = open_store(seeded.db)
    try:
        rows: list[Any] = []
        for _ in range(200):  # stored by the ingestion worker, after the answer
            rows = (
                store.reader()
                .execute("SELECT unit_type, unit, variant, rule FROM exposures")
                .fetchall()
            )
            if rows:
                break
            time.sleep(0.05)
    finally:
        store.close()
    assert [tuple(r) for r in rows] == [("user_id", "user-7", variant, "eu-small")]  # once


def test_a_missing_or_wrong_key_is_401(seeded: LiveServer) -> None:
    url = f"{seeded.url}/ofrep/v1/evaluate/flags/fraud-model"
    assert requests.post(url, json={"context": {}}, timeout=10).status_code == 401
    wrong = requests.post(url, json={"context": {}}, timeout=10,
                          headers={"X-API-Key": "rw_wrong"})  # fmt: skip
    assert wrong.status_code == 401
    admin = requests.post(url, json={"context": {}}, timeout=10,
                          headers={"Authorization": f"Bearer {seeded.admin_token}"})  # fmt: skip
    assert admin.status_code == 403  # an admin token is not an SDK key


def test_bulk_evaluation_and_its_etag(seeded: LiveServer) -> None:
    key = seeded.token("sdk", env="production")
    url = f"{seeded.url}/ofrep/v1/evaluate/flags"
    headers = {"Authorization": f"Bearer {key}"}
    body = {"context": {"targetingKey": "u1", "country": "US"}}
    first = requests.post(url, json=body, headers=headers, timeout=10)
    assert first.status_code == 200
    assert first.json()["flags"] == [{
        "key": "fraud-model", "value": "v2", "reason": "TARGETING_MATCH", "variant": "v2",
        "metadata": {"flag_version": 1, "rule": "qa-team"},
    }]  # fmt: skip
    etag = first.headers["etag"]
    again = requests.post(url, json=body, headers={**headers, "If-None-Match": etag}, timeout=10)
    assert again.status_code == 304
    other = requests.post(url, json={"context": {"targetingKey": "u2"}},
                          headers={**headers, "If-None-Match": etag}, timeout=10)  # fmt: skip
    assert other.status_code == 200  # another context: another answer
    admin = seeded.session()
    flag_url = f"{seeded.url}/api/v1/envs/production/flags/fraud-model"
    admin.post(f"{flag_url}/kill", json={"reason": "test"}).raise_for_status()
    changed = requests.post(url, json=body, headers={**headers, "If-None-Match": etag}, timeout=10)
    assert changed.status_code == 200  # any flag changed: a new ETag
    assert changed.headers["etag"] != etag
    assert changed.json()["flags"][0]["reason"] == "DISABLED"
    bad = requests.post(url, json={"context": "u1"}, headers=headers, timeout=10)
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "INVALID_CONTEXT")

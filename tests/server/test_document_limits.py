"""The rules document's limits at write time (issue 12, item 2): a write over a limit is
refused with 422 or 413 naming it, whichever route makes it, and the server never renders a
document an SDK would refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import rollwise
from rollwise import limits
from rollwise_server.testing import LiveServer, live_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("limits"))) as running:
        yield running


def flag(key: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "variants": {"a": {}, "b": {}}, "off_variant": "a",
                            "default_variant": "a", "rules": []}  # fmt: skip
    body.update(fields)
    return body


def create_env(server: LiveServer, env: str) -> str:
    response = server.session().post(f"{server.url}/api/v1/envs", json={"key": env}, timeout=10)
    response.raise_for_status()
    return f"{server.url}/api/v1/envs/{env}"


def test_a_flag_over_a_limit_is_422_naming_it(shared: LiveServer) -> None:
    base = create_env(shared, "flag-limits")
    rules = [{"id": f"r{i}", "conditions": [], "serve": {"variant": "b"}}
             for i in range(limits.MAX_RULES + 1)]  # fmt: skip
    answer = shared.session().post(f"{base}/flags", json=flag("wide", rules=rules), timeout=10)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["problems"]
    assert error["path"] == "rules"
    assert "max_rules" in error["message"]


def test_a_segment_edit_that_takes_a_flag_over_its_cost_is_422(shared: LiveServer) -> None:
    """The flag was within its cost when written; growing the segment it uses (another route to
    the same slow flag) is refused, naming the flag."""
    base = create_env(shared, "segment-cost")
    session = shared.session()
    small = {"key": "eu", "conditions": [
        {"attribute": "country", "operator": "in", "values": ["DE"]}]}  # fmt: skip
    assert session.post(f"{base}/segments", json=small, timeout=10).status_code == 201
    rules = [{"id": f"r{i}", "conditions": [{"segment": "eu"}], "serve": {"variant": "b"}}
             for i in range(8)]  # fmt: skip
    assert session.post(f"{base}/flags", json=flag("f", rules=rules), timeout=10).status_code == 201
    grown = {**small, "conditions": small["conditions"] * 9}  # 8 rules x 9 = 72 units
    assert 8 * 9 > limits.MAX_CONDITION_COST >= 8
    answer = session.put(f"{base}/segments/eu", json=grown, headers={"If-Match": '"1"'}, timeout=10)
    assert answer.status_code == 422, answer.text
    assert "flag 'f'" in answer.json()["detail"]
    assert "max_condition_cost" in answer.json()["detail"]
    assert session.get(f"{base}/segments/eu", timeout=10).json()["version"] == 1


def test_the_document_size_limit_is_413(shared: LiveServer) -> None:
    base = create_env(shared, "document-size")
    session = shared.session()
    payload = "x" * (limits.MAX_PAYLOAD_BYTES - 100)
    statuses = []
    for i in range(limits.MAX_DOCUMENT_BYTES // limits.MAX_PAYLOAD_BYTES + 2):
        body = flag(f"model-{i}", variants={"a": {"payload": payload}, "b": {}})
        statuses.append(session.post(f"{base}/flags", json=body, timeout=10))
    refused = [r for r in statuses if r.status_code != 201]
    assert refused
    assert all(r.status_code == 413 for r in refused), [r.text for r in refused]
    assert "max_document_bytes" in refused[0].json()["detail"]
    sdk = shared.session(shared.token("sdk", env="document-size"))
    served = sdk.get(f"{shared.url}/api/v1/sdk/rules", timeout=10)
    assert served.status_code == 200
    assert len(served.content) <= limits.MAX_DOCUMENT_BYTES
    assert len(served.json()["flags"]) == len(statuses) - len(refused)


def test_too_many_flags_is_422(tmp_path: Path) -> None:
    """One more flag than ``MAX_FLAGS`` (the limit lowered for the test's speed is not possible:
    it is the SDK's own constant, so the test writes them all through the store)."""
    with live_server(tmp_path) as server:
        base = f"{server.url}/api/v1/envs/production"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {server.admin_token}"
        for i in range(limits.MAX_FLAGS):
            response = session.post(f"{base}/flags", json=flag(f"f{i}"), timeout=10)
            assert response.status_code == 201, response.text
        answer = session.post(f"{base}/flags", json=flag("one-more"), timeout=10)
        assert answer.status_code == 422, answer.text
        assert "max_flags" in answer.json()["detail"]


def test_a_kill_is_never_refused_for_size(shared: LiveServer) -> None:
    """Ordinary writes leave ``HEADROOM`` under the limit; a kill (any write turning a flag
    off) may use it, so an environment filled to the limit can still be stopped."""
    base = create_env(shared, "kill-at-limit")
    session = shared.session()
    size, made = limits.MAX_PAYLOAD_BYTES - 100, 0
    while size >= 256:  # fill up to the ordinary limit: big flags, then ever smaller ones
        body = flag(f"model-{made}", variants={"a": {"payload": "x" * size}, "b": {}})
        if session.post(f"{base}/flags", json=body, timeout=10).status_code == 201:
            made += 1
        else:
            size //= 2
    refused = session.post(f"{base}/flags", json=flag("one-more", description="z" * 900))
    assert refused.status_code == 413, refused.text
    assert "kept for kills and rollbacks" in refused.json()["detail"]
    killed = session.post(f"{base}/flags/model-0/kill", json={"reason": "incident"}, timeout=10)
    assert killed.status_code == 200, killed.text
    assert killed.json()["enabled"] is False
    sdk = shared.session(shared.token("sdk", env="kill-at-limit"))
    served = sdk.get(f"{shared.url}/api/v1/sdk/rules", timeout=10)
    assert len(served.content) <= limits.MAX_DOCUMENT_BYTES
    client = rollwise.Client.offline(served.content)
    assert client.variant("model-0", {"user_id": "u"}) == "a"  # its off variant

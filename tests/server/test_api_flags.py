"""Flags and segments over real HTTP: create, read, edit with versions, archive, history."""

from __future__ import annotations

from typing import Any

import requests

from rollwise_server.testing import LiveServer
from tests.server.conftest import EU_SEGMENT, example_flag

Json = dict[str, Any]


def setup_flag(server: LiveServer, env: str = "production") -> requests.Session:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/{env}"
    assert admin.post(f"{base}/segments", json=EU_SEGMENT).status_code == 201
    response = admin.post(f"{base}/flags", json=example_flag())
    assert response.status_code == 201, response.text
    return admin


def test_create_get_and_list(server: LiveServer) -> None:
    admin = setup_flag(server)
    base = f"{server.url}/api/v1/envs/production"
    flag = admin.get(f"{base}/flags/fraud-model").json()
    assert flag["version"] == 1
    assert flag["key"] == "fraud-model"
    assert flag["updated_by"] == "admin"
    assert [f["key"] for f in admin.get(f"{base}/flags").json()["flags"]] == ["fraud-model"]
    assert admin.get(f"{server.url}/api/v1/envs/staging/flags").json()["flags"] == []


def test_stale_version_gets_409_with_the_current_one(server: LiveServer) -> None:
    admin = setup_flag(server)
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model"
    off = {**example_flag(), "enabled": False}
    unexplained = admin.put(url, json=off, headers={"If-Match": '"1"'})
    assert unexplained.status_code == 422  # turning a flag off is a kill: production wants why
    assert unexplained.json()["problems"][0]["path"] == "reason"
    first = admin.put(url, json={**off, "reason": "drill"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    assert first.json()["version"] == 2
    stale = admin.put(url, json={**example_flag(), "version": 1, "reason": "mine"})
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["current_version"] == 2
    missing = admin.put(url, json=example_flag())
    assert missing.status_code == 428


def test_validation_names_every_problem(server: LiveServer) -> None:
    admin = setup_flag(server)
    bad = example_flag()
    bad["key"] = "other"
    bad["rules"][1]["serve"]["split"][0]["weight"] = -1
    bad["rules"][0]["conditions"].append({"segment": "nowhere"})
    bad["typo"] = True
    response = admin.post(f"{server.url}/api/v1/envs/production/flags", json=bad)
    assert response.status_code == 422
    paths = {p["path"] for p in response.json()["problems"]}
    assert paths == {
        "rules[1].serve.split[0].weight",
        "rules[0].conditions[1].segment",
        "typo",
    }


def test_archive_history_revert_and_kill(server: LiveServer) -> None:
    admin = setup_flag(server)
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model"
    admin.put(url, json={**example_flag(), "version": 1, "salt": "s2", "reason": "new salt"})
    killed = admin.post(f"{url}/kill", json={"reason": "bad model"}).json()
    assert (killed["version"], killed["enabled"]) == (3, False)
    reverted = admin.post(f"{url}/revert", json={"to_version": 1, "reason": "back"}).json()
    assert (reverted["version"], reverted["enabled"], reverted["salt"]) == (4, True, "fraud-model")
    history = admin.get(f"{url}/history").json()["versions"]
    assert [(h["version"], h["action"], h["reason"]) for h in history] == [
        (1, "flag.create", None),
        (2, "flag.update", "new salt"),
        (3, "flag.kill", "bad model"),
        (4, "flag.revert", "back"),
    ]
    assert history[1]["diff"] == [{"op": "replace", "path": "/salt", "value": "s2"}]
    archived = admin.delete(url, params={"reason": "done"})
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    assert admin.get(f"{server.url}/api/v1/envs/production/flags").json()["flags"] == []
    assert len(admin.get(f"{url}/history").json()["versions"]) == 5


def test_a_segment_in_use_cannot_be_archived(server: LiveServer) -> None:
    admin = setup_flag(server)
    response = admin.delete(f"{server.url}/api/v1/envs/production/segments/eu")
    assert response.status_code == 409
    assert response.json()["flags"] == ["fraud-model"]


def test_promote_copies_to_another_environment(server: LiveServer) -> None:
    admin = setup_flag(server, env="staging")
    promote = f"{server.url}/api/v1/envs/staging/flags/fraud-model/promote"
    missing_segment = admin.post(promote, json={"to": "production"})
    assert missing_segment.status_code == 422
    admin.post(f"{server.url}/api/v1/envs/production/segments", json=EU_SEGMENT)
    promoted = admin.post(promote, json={"to": "production", "reason": "tested"})
    assert promoted.status_code == 201, promoted.text
    audit = admin.get(
        f"{server.url}/api/v1/audit", params={"env": "production", "flag": "fraud-model"}
    )
    entry = audit.json()["entries"][0]
    assert entry["action"] == "flag.promote"
    assert entry["details"] == {"from_env": "staging", "from_version": 1}


def test_a_version_beyond_any_stored_one_is_a_400_not_a_500(server: LiveServer) -> None:
    """Found by the schema fuzzer: a ``to_version`` of 2**72 reached SQLite, which cannot hold
    it (OverflowError, 500). Versions are bounded where they are read, body or header."""
    admin = setup_flag(server)
    url = f"{server.url}/api/v1/envs/production/flags/fraud-model"
    huge = 2**72
    refused = admin.post(f"{url}/revert", json={"to_version": huge, "reason": "r"})
    assert refused.status_code == 400, refused.text
    assert "to_version" in refused.text
    stale = admin.put(url, json={**example_flag(), "version": huge, "salt": "s2"})
    assert stale.status_code == 400, stale.text
    assert "version" in stale.json()["detail"]
    assert admin.get(url).json()["version"] == 1  # nothing was written

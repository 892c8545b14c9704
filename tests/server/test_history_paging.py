"""History is paged and computed off the event loop (issue 12, item 3)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollwise import limits
from rollwise_server.api.history import DEFAULT_LIMIT, PAGE_BYTES
from rollwise_server.testing import LiveServer, live_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("history"))) as running:
        yield running


def flag(key: str, weight: int, payload: Any = None) -> dict[str, Any]:
    variants: dict[str, Any] = {"a": {}, "b": {} if payload is None else {"payload": payload}}
    split = [{"variant": "a", "weight": 100 - weight}, {"variant": "b", "weight": weight}]
    rules = [{"id": "r", "conditions": [], "serve": {"split": split}}]
    return {"key": key, "variants": variants, "off_variant": "a", "default_variant": "a",
            "rules": rules}  # fmt: skip


def versions_of(server: LiveServer, key: str, count: int, payload: Any = None) -> str:
    base = f"{server.url}/api/v1/envs/production/flags"
    session = server.session()
    assert session.post(base, json=flag(key, 1, payload), timeout=10).status_code == 201
    for version in range(1, count):
        answer = session.put(
            f"{base}/{key}", json=flag(key, version + 1, payload),
            headers={"If-Match": f'"{version}"'}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
    return f"{base}/{key}/history"


def test_history_is_paged_newest_first_by_page_oldest_first_within(shared: LiveServer) -> None:
    url = versions_of(shared, "paged", 45)
    session = shared.session()
    first = session.get(url, timeout=10).json()
    assert [v["version"] for v in first["versions"]] == list(range(26, 46))
    assert len(first["versions"]) == DEFAULT_LIMIT
    assert first["next_before"] == 26
    # the page's first entry is diffed against the version before it, not against nothing
    assert first["versions"][0]["diff"] == [
        {"op": "replace", "path": "/rules/0/serve/split/0/weight", "value": 74},
        {"op": "replace", "path": "/rules/0/serve/split/1/weight", "value": 26},
    ]
    seen = [v["version"] for v in first["versions"]]
    before = first["next_before"]
    while before is not None:
        page = session.get(url, params={"before": before, "limit": 7}, timeout=10).json()
        seen = [v["version"] for v in page["versions"]] + seen
        before = page["next_before"]
    assert seen == list(range(1, 46))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "integers"),
     ({"before": "0"}, "before")],
)  # fmt: skip
def test_bad_paging_is_400_naming_the_parameter(
    shared: LiveServer, params: dict[str, str], message: str
) -> None:
    url = versions_of(shared, f"bad-{'-'.join(params)}-{'-'.join(params.values())}", 1)
    answer = shared.session().get(url, params=params, timeout=10)
    assert answer.status_code == 400
    assert message in answer.json()["detail"]


def test_a_page_of_large_versions_is_bounded_in_bytes(shared: LiveServer) -> None:
    payload = "x" * (limits.MAX_PAYLOAD_BYTES - 200)
    url = versions_of(shared, "large", 40, payload)
    page = shared.session().get(url, params={"limit": 100}, timeout=30)
    versions = page.json()["versions"]
    assert 1 < len(versions) < 40
    assert len(versions) <= PAGE_BYTES // len(payload) + 1
    assert page.json()["next_before"] == versions[0]["version"]


def test_the_event_loop_answers_while_histories_are_computed(shared: LiveServer) -> None:
    """/healthz answers while four clients read a large history: the diffs are computed in
    worker threads (the benchmark measures the latency; this test shows the loop is free)."""
    payload = [{"w": i} for i in range(3000)]
    url = versions_of(shared, "busy", 30, payload)
    stop = threading.Event()
    done = threading.Event()
    errors: list[str] = []

    def read() -> None:
        session = shared.session()
        while not stop.is_set():
            answer = session.get(url, params={"limit": 100}, timeout=60)
            if answer.status_code != 200:
                errors.append(answer.text)
            done.set()

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        assert done.wait(60)
        session = shared.session()
        for _ in range(20):
            assert session.get(f"{shared.url}/healthz", timeout=10).status_code == 200
    finally:
        stop.set()
        for reader in readers:
            reader.join(60)
    assert errors == []


def test_revert_finds_its_version_without_reading_the_whole_history(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        url = versions_of(server, "back", 30)
        base = url.removesuffix("/history")
        answer = server.session().post(
            f"{base}/revert", json={"to_version": 3, "reason": "r"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 31
        assert answer.json()["rules"][0]["serve"]["split"][1]["weight"] == 3
        missing = server.session().post(
            f"{base}/revert", json={"to_version": 99, "reason": "r"}, timeout=10
        )
        assert missing.status_code == 404


def test_a_page_counts_its_diffs_too(shared: LiveServer) -> None:
    """Each version replaces the whole payload, so each diff is as large as a body: a page
    bounded by its bodies alone held twice ``PAGE_BYTES``."""
    base = f"{shared.url}/api/v1/envs/production/flags"
    session = shared.session()
    size = limits.MAX_PAYLOAD_BYTES - 200
    assert session.post(base, json=flag("churn", 1, "a" * size), timeout=10).status_code == 201
    for version in range(1, 40):
        body = flag("churn", 1, chr(ord("a") + version % 26) * size)
        answer = session.put(
            f"{base}/churn", json=body, headers={"If-Match": f'"{version}"'}, timeout=10
        )
        assert answer.status_code == 200, answer.text
    page = session.get(f"{base}/churn/history", params={"limit": 100}, timeout=30)
    assert len(page.content) <= PAGE_BYTES + 1024
    versions = page.json()["versions"]
    assert versions[-1]["version"] == 40
    assert page.json()["next_before"] == versions[0]["version"] > 1

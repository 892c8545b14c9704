"""Flag change listeners (``client.on_change``): which changes they hear, from a real server,
off the sync thread, and what a listener that raises or blocks cannot do."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import attrs

import rollwise
from rollwise.changes import changes_between
from rollwise.rules import RulesDocument
from rollwise_server.testing import LiveServer
from tests.server.conftest import example_flag

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"


def _document() -> RulesDocument:
    return RulesDocument.from_file(EXAMPLE)


def test_changes_between_two_documents() -> None:
    old = _document()
    flag = old.flags["fraud-model"]
    assert changes_between(None, old) == []  # the first document changes nothing
    assert changes_between(old, old) == []
    bumped = attrs.evolve(old, revision=9, flags={"fraud-model": attrs.evolve(flag, version=4)})
    (change,) = changes_between(old, bumped)
    assert (change.key, change.old_version, change.new_version, change.revision) == (
        "fraud-model", 3, 4, 9,
    )  # fmt: skip
    assert change.old is flag
    gone = attrs.evolve(old, flags={})
    assert [(c.key, c.old_version, c.new_version) for c in changes_between(old, gone)] == [
        ("fraud-model", 3, None)
    ]
    assert [(c.key, c.old_version, c.new_version) for c in changes_between(gone, old)] == [
        ("fraud-model", None, 3)
    ]
    segment = old.segments["eu"]
    narrower = attrs.evolve(old, segments={"eu": attrs.evolve(segment, conditions=())})
    (used,) = changes_between(old, narrower)  # its segment changed: its targeting did
    assert (used.key, used.old_version, used.new_version) == ("fraud-model", 3, 3)


def _setup(server: LiveServer) -> tuple[Any, str]:
    admin = server.session()  # the fixture's server holds the example flag and its segment
    base = f"{server.url}/api/v1/envs/production"
    other = {**example_flag(), "key": "other-model"}
    admin.post(f"{base}/flags", json=other).raise_for_status()
    return admin, f"{base}/flags"


def _edit(admin: Any, url: str, key: str, **changes: Any) -> int:
    flag = admin.get(f"{url}/{key}").json()
    body = {k: v for k, v in flag.items() if k not in ("archived", "updated_at", "updated_by",
                                                        "stale")}  # fmt: skip
    answer = admin.put(f"{url}/{key}", json={**body, **changes})
    answer.raise_for_status()
    return int(answer.json()["version"])


def test_a_listener_hears_each_change_from_the_server(server: LiveServer, tmp_path: Path) -> None:
    admin, url = _setup(server)
    client = rollwise.Client(server.url, server.token("sdk", env="production"),
                             cache_dir=tmp_path / "c")  # fmt: skip
    try:
        assert client.wait_until_ready(10)
        heard: list[rollwise.FlagChange] = []
        threads: list[str] = []
        arrived = threading.Event()
        only_other = threading.Event()

        @client.on_change
        def listener(change: rollwise.FlagChange) -> None:
            heard.append(change)
            threads.append(threading.current_thread().name)
            arrived.set()

        client.on_change(lambda change: only_other.set(), flags=["other-model"])
        version = _edit(admin, url, "fraud-model", description="v2 calibrated")
        assert arrived.wait(10)
        (change,) = heard
        assert (change.key, change.old_version, change.new_version) == (
            "fraud-model", version - 1, version,
        )  # fmt: skip
        assert change.new is not None
        assert change.new.description == "v2 calibrated"
        assert client.rules is not None
        assert client.rules.flags["fraud-model"].version == version  # in use before the call
        assert threads == ["rollwise-flag-changes"]  # not the sync thread
        assert not only_other.is_set()  # filtered: another flag changed
        client.remove_change_listener(listener)
        _edit(admin, url, "other-model", description="now")
        assert only_other.wait(10)
        assert len(heard) == 1  # removed
    finally:
        client.close()


def test_a_listener_that_raises_or_blocks_never_stops_sync(
    server: LiveServer, tmp_path: Path
) -> None:
    admin, url = _setup(server)
    client = rollwise.Client(server.url, server.token("sdk", env="production"),
                             cache_dir=tmp_path / "c")  # fmt: skip
    release = threading.Event()
    calls: list[int] = []
    try:
        assert client.wait_until_ready(10)

        def broken(change: rollwise.FlagChange) -> None:
            raise RuntimeError("a bug in the application's listener")

        def slow(change: rollwise.FlagChange) -> None:
            calls.append(change.new_version or 0)
            release.wait(30)

        client.on_change(broken)
        client.on_change(slow)
        first = _edit(admin, url, "fraud-model", description="one")
        second = _edit(admin, url, "fraud-model", description="two")
        # the listener blocks on the first change; sync goes on and installs the second
        for _ in range(200):
            rules = client.rules
            if rules is not None and rules.flags["fraud-model"].version == second:
                break
            threading.Event().wait(0.05)
        assert rules is not None
        assert rules.flags["fraud-model"].version == second
        assert calls[:1] == [first]
        release.set()
        client.close()  # delivers what is queued, then stops the listeners' thread
        assert calls == [first, second]
        stats = client.stats()
        assert stats["change_listener_errors"] == 2  # ``broken``, once a change
        assert stats["change_listener_calls"] == 2  # ``slow``
    finally:
        release.set()
        client.close()

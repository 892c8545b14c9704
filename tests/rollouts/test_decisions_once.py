"""A stage decision is taken once: not on top of a person's action made while the controller
evaluated, and not lost behind the lease of a leader that died mid-round (issue 15: "no stage
decision is ever taken twice or lost"); a person's action is neither refused for a write that
did not move the rollout nor applied to a rollout that moved. Runs on SQLite and, in the
PostgreSQL pass, on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollwise_server.errors import Conflict
from rollwise_server.rollouts import controller as controller_module
from rollwise_server.rollouts import transitions
from rollwise_server.rollouts.controller import Controller
from rollwise_server.storage import open_store
from rollwise_server.storage.base import RolloutRecord, Store
from rollwise_server.testing import LiveServer, live_server
from rollwise_server.webhooks import Webhooks
from tests.server.conftest import EU_SEGMENT, example_flag

STAGING = "/api/v1/envs/staging"
ROLLOUT = f"{STAGING}/flags/fraud-model/rollout"
EVERY_ROUND = {
    "control": "v1",
    "candidate": "v2",
    "rule": "eu-small",
    "stages": [{"share": share, "min_duration": 0} for share in (0.1, 0.2, 0.5, 1.0)],
}
"""No guardrail and no minimum: the controller advances a stage at every round."""


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[LiveServer, Store]]:
    """A running rollout, and a store of its own for a controller of the test's (the server's
    own controller waits an hour between rounds, so only the test's decides)."""
    with live_server(tmp_path, controller_interval=3600.0) as server:
        admin = server.session()
        admin.post(f"{server.url}{STAGING}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{server.url}{STAGING}/flags", json=example_flag()).raise_for_status()
        admin.put(f"{server.url}{ROLLOUT}", json=EVERY_ROUND).raise_for_status()
        admin.post(f"{server.url}{ROLLOUT}/start").raise_for_status()
        store = open_store(server.db)
        try:
            yield server, store
        finally:
            store.close()


def _stage(store: Store) -> int:
    record = store.get_rollout("staging", "fraud-model")
    assert record is not None
    return int(record.state["stage"])


def _advances(server: LiveServer) -> list[dict[str, Any]]:
    entries = (
        server.session()
        .get(f"{server.url}/api/v1/audit", params={"env": "staging", "flag": "fraud-model"})
        .json()["entries"]
    )
    return [e for e in entries if e["action"] == "rollout.advance"]


def test_a_person_s_advance_during_the_evaluation_is_not_followed_by_the_controller_s(
    started: tuple[LiveServer, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, store = started
    real_gather = controller_module.gather

    def gather_while_a_person_advances(*args: Any, **kwargs: Any) -> Any:
        evidence = real_gather(*args, **kwargs)
        # the controller has read stage 1; a person advances through another route meanwhile
        server.session().post(f"{server.url}{ROLLOUT}/advance").raise_for_status()
        return evidence

    monkeypatch.setattr(controller_module, "gather", gather_while_a_person_advances)
    controller = Controller(store, Webhooks(store), lambda env, revision: None, 1.0)
    assert asyncio.run(controller.round()) == []  # its advance, decided on stage 1, not taken
    assert _stage(store) == 2
    assert len(_advances(server)) == 1
    monkeypatch.setattr(controller_module, "gather", real_gather)
    (decision,) = asyncio.run(controller.round())  # the next round decides on what is there
    assert (decision[2].action, _stage(store)) == ("advance", 3)


def test_a_new_leader_decides_at_its_first_round_despite_a_dead_leader_s_lease(
    started: tuple[LiveServer, Store],
) -> None:
    server, store = started
    # the leader died mid-round: its lease on the rollout would outlive it by minutes
    assert store.lease_rollout("staging", "fraud-model", "dead-leader", 3600.0)
    controller = Controller(store, Webhooks(store), lambda env, revision: None, 0.05)

    async def lead_one_round() -> None:
        running = asyncio.create_task(controller.run())
        try:
            while controller.rounds == 0:
                await asyncio.sleep(0.01)
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

    asyncio.run(asyncio.wait_for(lead_one_round(), timeout=30))
    assert controller.leading
    assert _stage(store) == 2  # decided in the new leader's first round
    assert len(_advances(server)) == 1


def _meanwhile(
    monkeypatch: pytest.MonkeyPatch, store: Store, change: Callable[[RolloutRecord], object]
) -> None:
    """``change`` the rollout once, right after the next ``transitions.load`` read it: the
    write that lands between a reading and its own write, from any route."""
    real_load = transitions.load
    done: list[bool] = []

    def load_then_change(*args: Any) -> Any:
        loaded = real_load(*args)
        if not done:
            done.append(True)
            change(loaded[0])
        return loaded

    monkeypatch.setattr(transitions, "load", load_then_change)


def _controller_advances(store: Store) -> Callable[[RolloutRecord], object]:
    def advance(record: RolloutRecord) -> None:
        transitions.transition(
            store, "staging", "fraud-model", "advance", actor="controller", reason="met",
            expected=record.version,
        )  # fmt: skip

    return advance


@pytest.mark.parametrize("action", ["abort", "pause"])
def test_a_person_s_abort_or_pause_holds_when_the_controller_decided_meanwhile(
    started: tuple[LiveServer, Store], monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    _, store = started
    _meanwhile(monkeypatch, store, _controller_advances(store))
    ended = transitions.transition(
        store, "staging", "fraud-model", action, actor="ops", reason="stop"
    )  # applied to the rollout as the controller left it, not refused with a 409
    assert (ended.state["status"], ended.state["stage"]) == (
        {"abort": "aborted", "pause": "paused"}[action],
        2,
    )


def test_a_person_s_advance_is_refused_when_the_controller_advanced_meanwhile(
    started: tuple[LiveServer, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store = started
    _meanwhile(monkeypatch, store, _controller_advances(store))
    with pytest.raises(Conflict, match="changed meanwhile"):
        transitions.transition(store, "staging", "fraud-model", "advance", actor="ops", reason=None)
    assert _stage(store) == 2  # one advance, the controller's; not two
    with pytest.raises(Conflict, match="at version"):  # one who named a version: no retry
        transitions.transition(
            store, "staging", "fraud-model", "pause", actor="ops", reason=None, expected=1
        )

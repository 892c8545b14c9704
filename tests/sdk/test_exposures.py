"""Exposures: every split assignment, both arms, de-duplicated with a bounded cache."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import rollwise
from rollwise.exposures import ExposureLog
from rollwise.testing import capture_exposures

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
EU_SMALL = {"country": "DE", "amount": 120.5}


def ctx(unit: str, **extra: Any) -> dict[str, Any]:
    return {"user_id": unit, **EU_SMALL, **extra}


def test_split_assignments_are_exposures_with_every_field() -> None:
    seen: list[rollwise.Exposure] = []
    client = rollwise.Client.offline(
        EXAMPLE, on_exposure=seen.append, clock=lambda: 1_795_000_000.5
    )
    result = client.evaluate("fraud-model", ctx("user-7", device="ios"))
    assert len(seen) == 1
    exposure = seen[0]
    assert uuid.UUID(exposure.id).version == 7
    assert uuid.UUID(exposure.id).int >> 80 == int(exposure.ts * 1000)  # time-ordered ids
    assert exposure.ts == 1_795_000_000.5
    assert (exposure.flag, exposure.flag_version, exposure.variant, exposure.rule) == (
        "fraud-model",
        3,
        result.variant,
        "eu-small",
    )
    assert (exposure.unit_type, exposure.unit) == ("user_id", "user-7")
    assert dict(exposure.attrs) == {"country": "DE", "amount": 120.5}  # cohort attributes only
    wire = exposure.to_json()
    assert wire["ts"] == "2026-11-18T11:06:40.500Z"
    assert json.loads(json.dumps(wire)) == wire


def test_both_arms_are_exposed_and_targeting_is_not() -> None:
    client = rollwise.Client.offline(EXAMPLE)
    with capture_exposures(client) as seen:
        variants = Counter(client.variant("fraud-model", ctx(f"u-{i}")) for i in range(5000))
        client.variant("fraud-model", ctx("u1"))  # the qa-team rule: targeting, no exposure
        client.variant("fraud-model", {"user_id": "x", "country": "US", "amount": 1})  # default
    assert Counter(e.variant for e in seen) == variants
    assert set(variants) == {"v1", "v2"}
    assert len(seen) == 5000


def test_repeated_exposures_are_deduplicated() -> None:
    client = rollwise.Client.offline(EXAMPLE)
    with capture_exposures(client) as seen:
        for _ in range(10):
            client.variant("fraud-model", ctx("same-user"))
    assert len(seen) == 1
    stats = client.stats()
    assert (stats["exposures_recorded"], stats["exposures_duplicated"]) == (1, 9)


def test_a_new_flag_version_is_a_new_exposure() -> None:
    doc = json.loads(EXAMPLE.read_text())
    client = rollwise.Client.offline(doc)
    with capture_exposures(client) as seen:
        client.variant("fraud-model", ctx("u-1"))
        doc["flags"]["fraud-model"]["version"] = 4
        client._install(rollwise.RulesDocument.from_json(doc))
        client.variant("fraud-model", ctx("u-1"))
        client.variant("fraud-model", ctx("u-1"))
    assert [e.flag_version for e in seen] == [3, 4]


def test_the_dedup_cache_is_bounded() -> None:
    client = rollwise.Client.offline(EXAMPLE, dedup_size=100)
    with capture_exposures(client) as seen:
        for i in range(1000):
            client.variant("fraud-model", ctx(f"u-{i}"))
        client.variant("fraud-model", ctx("u-0"))  # evicted long ago: exposed again
    assert len(client._exposures._seen) == 100
    assert len(seen) == 1001


def test_a_failing_listener_does_not_break_evaluation(caplog: pytest.LogCaptureFixture) -> None:
    def broken(exposure: rollwise.Exposure) -> None:
        raise RuntimeError("listener down")

    client = rollwise.Client.offline(EXAMPLE, on_exposure=broken)
    with caplog.at_level(logging.ERROR, logger="rollwise"):
        assert client.variant("fraud-model", ctx("u-5")) in {"v1", "v2"}
    assert "listener raised" in caplog.text


def test_capture_stops_at_the_end_of_the_block() -> None:
    client = rollwise.Client.offline(EXAMPLE)
    with capture_exposures(client) as seen:
        client.variant("fraud-model", ctx("a"))
    client.variant("fraud-model", ctx("b"))
    assert [e.unit for e in seen] == ["a"]
    assert not client._exposures.active


def test_queue_mode_builds_events_when_drained() -> None:
    log = ExposureLog(queue=True, clock=lambda: 1.0)
    doc = rollwise.RulesDocument.from_file(EXAMPLE)
    from rollwise.compiler import compile_rules

    compiled = compile_rules(doc, recorder=log.recorder)
    for i in range(10):
        compiled.fast["fraud-model"](ctx(f"u-{i}"))
    assert len(log) == 10
    drained = log.drain(limit=4)
    assert [e.unit for e in drained] == [f"u-{i}" for i in range(4)]
    assert len({e.id for e in drained}) == 4
    assert len(log.drain()) == 6
    assert len(log) == 0


def test_queue_is_bounded_and_counts_drops() -> None:
    log = ExposureLog(queue=True, max_queue=3)
    doc = rollwise.RulesDocument.from_file(EXAMPLE)
    from rollwise.compiler import compile_rules

    compiled = compile_rules(doc, recorder=log.recorder)
    for i in range(5):
        compiled.fast["fraud-model"](ctx(f"u-{i}"))
    assert (len(log), log.dropped) == (3, 2)


def test_attribute_values_are_json_safe() -> None:
    client = rollwise.Client.offline(EXAMPLE)
    with capture_exposures(client) as seen:
        client.variant("fraud-model", {"user_id": "u", "country": "DE", "amount": 12})
        client.variant("fraud-model", {"user_id": 99, "country": "DE", "amount": "12.5"})
    assert [dict(e.attrs) for e in seen] == [
        {"country": "DE", "amount": 12},
        {"country": "DE", "amount": "12.5"},
    ]
    assert seen[1].unit == "99"

"""The offline client: the public evaluation API, its error handling and the atomic swap."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rollwise
from rollwise import Assignment, ErrorCode, Reason
from rollwise.testing import flag_document, static_client

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"


@pytest.fixture
def client() -> rollwise.Client:
    return rollwise.Client.offline(EXAMPLE)


def test_targeting_match(client: rollwise.Client) -> None:
    result = client.evaluate("fraud-model", {"user_id": "u1"})
    assert result == Assignment(
        flag="fraud-model",
        variant="v2",
        reason=Reason.TARGETING_MATCH,
        flag_version=3,
        rule="qa-team",
        payload={"model": "fraud-2025-11"},
    )
    assert client.variant("fraud-model", {"user_id": "u1"}) == "v2"


def test_default_when_no_rule_matches(client: rollwise.Client) -> None:
    result = client.evaluate("fraud-model", {"user_id": "u9", "country": "US", "amount": 10})
    assert (result.variant, result.reason, result.rule) == ("v1", Reason.DEFAULT, None)


def test_split_reason_and_rule(client: rollwise.Client) -> None:
    result = client.evaluate("fraud-model", {"user_id": "u9", "country": "NL", "amount": 10})
    assert result.reason is Reason.SPLIT
    assert result.rule == "eu-small"
    assert result.variant in {"v1", "v2"}


def test_results_are_prebuilt_and_read_only(client: rollwise.Client) -> None:
    first = client.evaluate("fraud-model", {"user_id": "u1"})
    assert client.evaluate("fraud-model", {"user_id": "u2"}) is first
    with pytest.raises(TypeError):
        first.payload["model"] = "other"  # type: ignore[index]


def test_split_without_unit_tries_the_next_rule() -> None:
    doc = flag_document({"f": "fallback"})
    flag = doc["flags"]["f"]
    flag["variants"]["canary"] = {}
    flag["rules"] = [
        {"id": "split", "conditions": [], "serve": {"split": [{"variant": "canary", "weight": 1}]}},
        {"id": "everyone", "conditions": [], "serve": {"variant": "fallback"}},
    ]
    client = rollwise.Client.offline(doc)
    assert client.evaluate("f", {"user_id": "u1"}).rule == "split"
    for unit in (None, "", 1.5, True, ["u1"], {"id": 1}):
        result = client.evaluate("f", {"user_id": unit})
        assert result.rule == "everyone", unit
    assert client.evaluate("f", {"user_id": 7}).rule == "split"


def test_disabled_flag_serves_off_variant(client: rollwise.Client) -> None:
    doc = json.loads(EXAMPLE.read_text())
    doc["flags"]["fraud-model"]["enabled"] = False
    result = rollwise.Client.offline(doc).evaluate("fraud-model", {"user_id": "u1"})
    assert (result.variant, result.reason, result.rule) == ("v1", Reason.DISABLED, None)


def test_unknown_flag_returns_default_and_warns_once(
    client: rollwise.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rollwise"):
        for _ in range(3):
            assert client.variant("nope", {"user_id": "u1"}, default="safe") == "safe"
        result = client.evaluate("nope", {}, default="safe")
    assert (result.variant, result.reason, result.error_code) == (
        "safe",
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    assert client.variant("nope", {}) is None
    warnings = [r for r in caplog.records if "unknown flag" in r.getMessage()]
    assert len(warnings) == 1
    assert "'nope'" in warnings[0].getMessage()


@pytest.mark.parametrize("context", [None, 42, "user-1", ["user_id"], object()])
def test_invalid_context_serves_the_safe_variant(client: rollwise.Client, context: Any) -> None:
    result = client.evaluate("fraud-model", context)
    assert (result.variant, result.reason, result.error_code) == (
        "v1",
        Reason.ERROR,
        ErrorCode.INVALID_CONTEXT,
    )
    assert client.variant("fraud-model", context) == "v1"


class Exploding(Mapping[str, Any]):
    """A mapping whose every read fails."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_a_failing_context_is_an_error_result_logged_once(
    client: rollwise.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rollwise"):
        results = [client.evaluate("fraud-model", Exploding()) for _ in range(3)]
    assert {(r.variant, r.reason, r.error_code) for r in results} == {
        ("v1", Reason.ERROR, ErrorCode.GENERAL)
    }
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


@pytest.mark.parametrize("key", [None, 3, ("a",), ["unhashable"], {"x": 1}])
def test_odd_flag_keys_never_raise(client: rollwise.Client, key: Any) -> None:
    assert client.variant(key, {"user_id": "u1"}, default="d") == "d"
    assert client.evaluate(key, {}).error_code is ErrorCode.FLAG_NOT_FOUND


anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.dates()
    | st.datetimes(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["user_id", "country", "amount", "x"]) | st.text(), anything)
)
def test_variant_never_raises_whatever_the_context_holds(context: dict[str, Any]) -> None:
    client = rollwise.Client.offline(EXAMPLE)
    assert client.variant("fraud-model", context) in {"v1", "v2"}
    assert client.evaluate("fraud-model", context).variant in {"v1", "v2"}


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: EXAMPLE, id="path"),
        pytest.param(lambda: str(EXAMPLE), id="str-path"),
        pytest.param(lambda: EXAMPLE.read_text(), id="json-text"),
        pytest.param(lambda: EXAMPLE.read_bytes(), id="json-bytes"),
        pytest.param(lambda: json.loads(EXAMPLE.read_text()), id="mapping"),
        pytest.param(lambda: rollwise.RulesDocument.from_file(EXAMPLE), id="document"),
    ],
)
def test_offline_accepts_every_source(source: Any) -> None:
    client = rollwise.Client.offline(source())
    assert client.variant("fraud-model", {"user_id": "u2"}) == "v2"
    assert client.rules is not None
    assert client.rules.revision == 12


def test_offline_rejects_bad_input_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(rollwise.RulesParseError) as excinfo:
        rollwise.Client.offline({"schema_version": 1, "environment": "x", "revision": -1})
    assert "revision: must be a non-negative integer" in str(excinfo.value)
    with pytest.raises(rollwise.ConfigurationError, match=r"missing\.json"):
        rollwise.Client.offline(tmp_path / "missing.json")  # a RollwiseError, as docs/sdk.md says
    with pytest.raises(rollwise.ConfigurationError, match="rules"):
        rollwise.Client.offline(42)  # type: ignore[arg-type]
    with pytest.raises(rollwise.ConfigurationError, match="on_exposure"):
        rollwise.Client.offline(EXAMPLE, on_exposure="print")  # type: ignore[arg-type]
    with pytest.raises(rollwise.ConfigurationError, match="dedup_size"):
        rollwise.Client.offline(EXAMPLE, dedup_size=0)


def test_static_client_and_context_manager() -> None:
    with static_client({"fraud-model": "v2", "ranker": "bert"}) as client:
        assert client.variant("fraud-model", {}) == "v2"
        assert client.variant("ranker", {"user_id": "x"}) == "bert"
        assert client.flag_keys() == ["fraud-model", "ranker"]


def test_swap_is_atomic_under_concurrent_evaluation() -> None:
    """Readers see either the whole old document or the whole new one, never a mix."""

    def document(revision: int) -> dict[str, Any]:
        doc = flag_document({"a": f"r{revision}"}, revision=revision)
        doc["flags"]["a"]["version"] = revision
        return doc

    client = rollwise.Client.offline(document(1))
    stop = threading.Event()
    mixed: list[tuple[Any, ...]] = []

    def reader() -> None:
        while not stop.is_set():
            a = client.evaluate("a", {})
            if a.variant != f"r{a.flag_version}" or a.reason is not Reason.DEFAULT:
                mixed.append((a,))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for revision in range(2, 202):
        client._install(rollwise.RulesDocument.from_json(document(revision)))
    stop.set()
    for thread in threads:
        thread.join()
    assert mixed == []
    assert client.rules is not None
    assert client.rules.revision == 201
    assert client.stats()["revision"] == 201

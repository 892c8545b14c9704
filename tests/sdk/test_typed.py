"""Typed flags in the SDK: the parser's checks of each type, the accessors' answers (values,
defaults, ``TYPE_MISMATCH``), that they never raise, record exposures like ``variant()`` (and
none on a type clash), and documents without types keep their text."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import rollwise
from rollwise import ErrorCode, FlagType, Reason, RulesDocument, RulesParseError
from rollwise.testing import capture_exposures

ROOT = Path(__file__).resolve().parents[2]
TYPED = ROOT / "docs" / "examples" / "typed-flags.json"
EXAMPLE = ROOT / "docs" / "examples" / "fraud-model.json"
ORDER = {"user_id": "user-42", "country": "NL", "amount": 2500}


def _flag(kind: str, first: Any, second: Any) -> dict[str, Any]:
    return {
        "schema_version": 2, "environment": "t", "revision": 1,
        "flags": {"f": {"version": 1, "type": kind,
                        "variants": {"a": {"value": first}, "b": {"value": second}},
                        "off_variant": "a", "default_variant": "b"}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "first", "second", "accessor", "expected"),
    [("boolean", False, True, "bool_value", True),
     ("integer", -(2**53 - 1), 2**53 - 1, "int_value", 2**53 - 1),
     ("float", 1, 2, "float_value", 2.0),
     ("json", [], {"a": [1, {"b": None}]}, "json_value", {"a": (1, {"b": None})}),
     ("string", "x", "y", "string_value", "y")],
)  # fmt: skip
def test_each_type_reads_its_values(
    kind: str, first: Any, second: Any, accessor: str, expected: Any
) -> None:
    client = rollwise.Client.offline(_flag(kind, first, second))
    value = getattr(client, accessor)("f", {}, object())
    assert value == expected
    assert type(value) is type(expected) or kind == "json"
    assert client.variant("f", {}) == "b"  # the key, for every type
    detail = client.evaluate_value("f", {}, None, FlagType(kind))
    assert (detail.value, detail.variant, detail.reason) == (value, "b", Reason.DEFAULT)


def test_a_float_flag_reads_integers_as_floats() -> None:
    document = RulesDocument.from_json(_flag("float", 1, 2))
    assert document.flags["f"].variants["a"].value == 1.0
    assert type(document.flags["f"].variants["a"].value) is float


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [("boolean", 0, "must be true or false (the flag's type is boolean), not 0"),
     ("boolean", "true", "must be true or false (the flag's type is boolean), not 'true'"),
     ("integer", 1.0, "must be an integer (the flag's type is integer), not 1.0"),
     ("integer", 2**53, "must be an integer within ±(2**53 - 1)"),
     ("integer", False, "must be an integer (the flag's type is integer), not False"),
     ("float", float("nan"), "must be a finite number (the flag's type is float), not nan"),
     ("float", None, "must be a finite number (the flag's type is float), not None"),
     ("json", "{}", "must be a JSON object or array (the flag's type is json), not '{}'"),
     ("json", 3, "must be a JSON object or array (the flag's type is json), not 3"),
     ("string", 3, "must be a non-empty string (the flag's type is string), not 3"),
     ("string", "", "must be a non-empty string (the flag's type is string), not ''"),
     ("float", 10**400, "must be a finite number (the flag's type is float), not an integer "
                        "of about 401 digits")],
)  # fmt: skip
def test_a_value_of_another_type_is_a_problem_at_its_path(
    kind: str, value: Any, message: str
) -> None:
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(_flag(kind, value, value))
    problems = {(p.path, p.message) for p in caught.value.problems}
    assert problems == {
        ("flags.f.variants.a.value", message),
        ("flags.f.variants.b.value", message),
    }


def test_a_json_value_is_within_the_payload_limits() -> None:
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(_flag("json", deep, []))
    assert [p.path for p in caught.value.problems] == ["flags.f.variants.a.value"]
    assert "max_payload_depth" in caught.value.problems[0].message


def test_strict_mode_knows_type_and_value() -> None:
    flag = _flag("boolean", True, False)["flags"]["f"]
    parsed = rollwise.Flag.from_json(flag, key="f", strict=True)
    assert parsed.type is FlagType.BOOLEAN
    assert parsed.to_json()["variants"] == {"a": {"value": True}, "b": {"value": False}}


def test_a_string_variants_own_value_needs_schema_version_2() -> None:
    """An older reader ignores ``value`` and would answer the key: such a document is 2."""
    document = RulesDocument.from_json(_flag("string", "a", "hello"))
    assert document.schema_version == 2
    keys = RulesDocument.from_json(_flag("string", "a", "b"))  # values equal to the keys
    assert keys.schema_version == 1
    assert rollwise.rules.schema_version_of([document.flags["f"].to_json()]) == 2
    assert rollwise.rules.schema_version_of([keys.flags["f"].to_json()]) == 1


def test_documents_without_types_keep_their_text() -> None:
    raw = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document = RulesDocument.from_json(raw)
    assert document.schema_version == 1
    again = document.to_json()
    assert again["schema_version"] == 1
    assert "type" not in again["flags"]["fraud-model"]
    assert all("value" not in v for v in again["flags"]["fraud-model"]["variants"].values())
    typed = RulesDocument.from_file(TYPED)
    assert typed.schema_version == 2
    assert RulesDocument.from_json(typed.to_json()) == typed


def test_a_type_clash_answers_the_default_evaluates_nothing_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = rollwise.Client.offline(TYPED)
    with capture_exposures(client) as exposures, caplog.at_level(logging.WARNING, "rollwise"):
        for user in range(50):
            ctx = {"user_id": f"u{user}"}
            assert client.int_value("fraud-threshold", ctx, 7) == 7
            assert client.bool_value("fraud-threshold", ctx, True) is True
    assert exposures == []  # fraud-threshold is a split: a float read would have exposed
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "rollwise: flag 'fraud-threshold' is of type float, read as integer; serving the default 7",
        "rollwise: flag 'fraud-threshold' is of type float, read as boolean; serving the default "
        "True",
    ]
    detail = client.evaluate_value("fraud-threshold", {}, 7, FlagType.INTEGER)
    assert (detail.reason, detail.error_code, detail.flag_version) == (
        Reason.ERROR, ErrorCode.TYPE_MISMATCH, 2,
    )  # fmt: skip


def test_typed_reads_record_exposures_like_variant() -> None:
    client = rollwise.Client.offline(TYPED)
    with capture_exposures(client) as exposures:
        value = client.float_value("fraud-threshold", {"user_id": "u-1"}, 0.0)
    (exposure,) = exposures
    served = client.rules.flags["fraud-threshold"].variants[exposure.variant]  # type: ignore[union-attr]
    assert (exposure.flag, exposure.unit, served.value) == ("fraud-threshold", "u-1", value)


class _Weird:
    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize("key", ["no-such-flag", ["unhashable"], _Weird(), None, 3])
@pytest.mark.parametrize("context", [ORDER, None, "text", {"country": object()}])
def test_the_accessors_never_raise(key: Any, context: Any) -> None:
    client = rollwise.Client.offline(TYPED)
    for accessor, default in (("bool_value", True), ("int_value", 1), ("float_value", 0.1),
                              ("json_value", {}), ("string_value", "d")):  # fmt: skip
        getattr(client, accessor)(key, context, default)
    client.evaluate_value(key, context, 1, "no-such-type")  # type: ignore[arg-type]


def test_disabled_and_invalid_contexts_answer_the_off_variants_value() -> None:
    raw = json.loads(TYPED.read_text(encoding="utf-8"))
    raw["flags"]["review-queue-size"]["enabled"] = False
    client = rollwise.Client.offline(raw)
    assert client.int_value("review-queue-size", ORDER, 0) == 50  # off: "small"
    assert client.bool_value("fraud-checks-enabled", None, True) is False  # type: ignore[arg-type]
    detail = client.evaluate_value("fraud-checks-enabled", None, True, FlagType.BOOLEAN)  # type: ignore[arg-type]
    assert (detail.value, detail.error_code) == (False, ErrorCode.INVALID_CONTEXT)


def test_an_online_client_without_rules_answers_the_default_not_ready(tmp_path: Path) -> None:
    with rollwise.Client("http://127.0.0.1:9", "rw_sdk_none", cache_dir=tmp_path,
                         send_events=False) as client:  # fmt: skip
        assert client.bool_value("anything", {}, True) is True
        detail = client.evaluate_value("anything", {}, 5, FlagType.INTEGER)
        assert (detail.value, detail.variant, detail.error_code) == (
            5, None, ErrorCode.PROVIDER_NOT_READY,
        )  # fmt: skip


def test_a_key_retyped_between_the_check_and_the_evaluation_is_a_mismatch() -> None:
    """New rules may land between ``evaluate_value``'s type check and its evaluation: a value
    of another type is never answered as the asked one."""
    retyped = RulesDocument.from_json(_flag("integer", 1, 2))

    class Swapping(rollwise.Client):
        def evaluate(self, flag_key: str, context: Any, /, *, default: Any = None) -> Any:
            self._install(retyped)  # the rules change under the caller
            return super().evaluate(flag_key, context, default=default)

    client = Swapping.offline(_flag("boolean", False, True))
    detail = client.evaluate_value("f", {}, True, FlagType.BOOLEAN)
    assert (detail.value, detail.error_code) == (True, ErrorCode.TYPE_MISMATCH)

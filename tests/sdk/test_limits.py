"""The rules document's size limits (issue 12, item 2): every limit is refused with a problem
that names it, a document at every limit is accepted, nothing recurses on untrusted depth."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

import rollwise
from rollwise import limits
from rollwise.errors import RulesParseError


def flag(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": "f", "version": 1, "variants": {"a": {}, "b": {}},
        "off_variant": "a", "default_variant": "a", "rules": [],
    }  # fmt: skip
    body.update(fields)
    return body


def document(*flags: dict[str, Any], segments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1, "environment": "production", "revision": 1,
        "segments": segments or {}, "flags": {f["key"]: f for f in flags},
    }  # fmt: skip


def rule(i: int, *conditions: dict[str, Any], serve: str = "b") -> dict[str, Any]:
    return {"id": f"r{i}", "conditions": list(conditions), "serve": {"variant": serve}}


def cond(attribute: str = "country", operator: str = "in", **operand: Any) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, **(operand or {"values": ["DE"]})}


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(RulesParseError) as caught:
        rollwise.Flag.from_json(data)
    return {p.path: p.message for p in caught.value.problems}


def variants(n: int) -> dict[str, Any]:
    return {f"v{i}": {} for i in range(n)}


STRING = limits.MAX_STRING_LENGTH
REGEXES = limits.MAX_CONDITION_COST // limits.MATCHES_COST
OVER: list[tuple[str, dict[str, Any], str, str]] = [
    ("variants", {"variants": variants(limits.MAX_VARIANTS + 1)}, "variants", "max_variants"),
    ("rules", {"rules": [rule(i) for i in range(limits.MAX_RULES + 1)]}, "rules", "max_rules"),
    ("conditions", {"rules": [rule(0, *[cond()] * (limits.MAX_CONDITIONS + 1))]},
     "rules[0].conditions", "max_conditions"),
    ("values", {"rules": [rule(0, cond(values=[str(i) for i in range(limits.MAX_VALUES + 1)]))]},
     "rules[0].conditions[0].values", "max_values"),
    ("string", {"rules": [rule(0, cond(operator="eq", value="x" * (STRING + 1)))]},
     "rules[0].conditions[0].value", "max_string_length"),
    ("attribute", {"rules": [rule(0, cond(attribute="a" * (limits.MAX_ATTRIBUTE_LENGTH + 1)))]},
     "rules[0].conditions[0].attribute", "max_attribute_length"),
    ("operand depth", {"rules": [rule(0, cond(operator="future_op", value=[[[[[[[[[1]]]]]]]]]))]},
     "rules[0].conditions[0].value", "max_operand_depth"),
    ("payload depth", {"variants": {"a": {"payload": json.loads("[" * 33 + "]" * 33)}, "b": {}}},
     "variants.a.payload", "max_payload_depth"),
    ("payload size", {"variants": {"a": {"payload": "x" * limits.MAX_PAYLOAD_BYTES}, "b": {}}},
     "variants.a.payload", "max_payload_bytes"),
    ("description", {"description": "d" * (limits.MAX_DESCRIPTION_LENGTH + 1)}, "description",
     "max_description_length"),
    ("cost", {"rules": [rule(i, cond(operator="matches", value="^a")) for i in range(REGEXES + 1)]},
     "rules", "max_condition_cost"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "path", "limit"), [o[1:] for o in OVER], ids=[o[0] for o in OVER]
)
def test_each_limit_is_refused_naming_it(fields: dict[str, Any], path: str, limit: str) -> None:
    found = problems(flag(**fields))
    assert path in found, found
    assert limit in found[path]


def test_a_flag_at_every_limit_is_accepted() -> None:
    """Each limit is inclusive: the largest flag allowed loads and evaluates."""
    values = [f"u{i}" for i in range(limits.MAX_VALUES)]
    rules = [
        rule(i, cond(attribute="user_id", values=values), serve="v2")
        for i in range(limits.MAX_RULES)
    ]
    many = flag(
        variants={f"v{i}": {"payload": {"n": i}} for i in range(limits.MAX_VARIANTS)},
        off_variant="v0", default_variant="v1", rules=rules,
        description="d" * limits.MAX_DESCRIPTION_LENGTH,
    )  # fmt: skip
    many["rules"][0] = rule(
        0, *[cond(attribute="user_id", values=values)] * limits.MAX_CONDITIONS, serve="v2"
    )
    many["rules"] = many["rules"][: limits.MAX_CONDITION_COST - limits.MAX_CONDITIONS + 1]
    client = rollwise.Client.offline(document(many))
    assert client.variant("f", {"user_id": "nobody"}) == "v1"


def test_a_segment_counts_in_every_rule_that_uses_it() -> None:
    segment = {"conditions": [cond()] * 10}
    over = limits.MAX_CONDITION_COST // 10 + 1
    rules = [rule(i, {"segment": "eu"}) for i in range(over)]  # over x 10 units
    with pytest.raises(RulesParseError) as caught:
        rollwise.RulesDocument.from_json(document(flag(rules=rules), segments={"eu": segment}))
    assert [p.path for p in caught.value.problems] == ["flags.f.rules"]
    assert f"{over * 10} units" in caught.value.problems[0].message
    ten = document(flag(rules=rules[: over - 1]), segments={"eu": segment})
    assert rollwise.RulesDocument.from_json(ten).flags["f"].rules[-1].id == f"r{over - 2}"


def test_too_many_flags_in_a_document() -> None:
    flags = [flag(key=f"f{i}") for i in range(limits.MAX_FLAGS + 1)]
    with pytest.raises(RulesParseError, match="max_flags"):
        rollwise.RulesDocument.from_json(document(*flags))


def test_a_document_text_over_the_size_limit_is_refused_before_decoding() -> None:
    text = json.dumps(document(flag())) + " " * limits.MAX_DOCUMENT_BYTES
    with pytest.raises(RulesParseError, match="max_document_bytes"):
        rollwise.RulesDocument.from_text(text)


def test_deep_json_text_is_a_parse_error_not_a_recursion_error() -> None:
    with pytest.raises(RulesParseError, match="nests too deep"):
        rollwise.RulesDocument.from_text("[" * 100_000 + "]" * 100_000)


def test_a_deep_payload_is_refused_even_called_from_deep_in_the_stack() -> None:
    """A payload nested 450 deep raised RecursionError from ``Client.offline`` called 200
    frames deep: it is now a parse error, found without recursion."""
    deep = flag(variants={"a": {"payload": json.loads("[" * 450 + "]" * 450)}, "b": {}})

    def call_at(depth: int) -> BaseException | None:
        if depth:
            return call_at(depth - 1)
        try:
            rollwise.Client.offline(document(deep))
        except RulesParseError as exc:
            return exc
        return None

    assert sys.getrecursionlimit() >= 1000
    caught = call_at(200)
    assert isinstance(caught, RulesParseError)
    assert "max_payload_depth" in str(caught)


@pytest.mark.parametrize("pattern", [".{1000}.{1000}.{1000}", "(?s).{1000}z", "(a?){1000}a{1000}"])
def test_a_pattern_too_complex_to_be_fast_is_refused(pattern: str) -> None:
    found = problems(flag(rules=[rule(0, cond(operator="matches", value=pattern))]))
    assert "is too complex" in found["rules[0].conditions[0].value"]


def test_a_self_referencing_payload_is_refused_not_walked_forever() -> None:
    payload: list[object] = []
    payload.append(payload)
    found = problems(flag(variants={"a": {"payload": payload}, "b": {}}))
    assert "max_payload_depth" in found["variants.a.payload"]


def test_groups_do_not_slow_a_pattern_down() -> None:
    """126 nested groups (accepted: RE2 ignores them when nothing is captured) took 50 ms a
    call on 4,096 characters while RE2 tracked the captures."""
    pattern = "(" * 126 + "." + ")" * 126 + "*"
    client = rollwise.Client.offline(
        document(flag(rules=[rule(0, cond(attribute="x", operator="matches", value=pattern))]))
    )
    assert client.variant("f", {"x": "x" * 4096}) == "b"
    assert client.evaluate("f", {"x": "x" * 4096}).rule == "r0"


def test_a_reference_to_an_empty_segment_is_not_free() -> None:
    """64 rules of 32 negated references to a segment without conditions cost nothing and took
    15 µs to evaluate."""
    refs = [{"segment": "empty", "negate": True}] * limits.MAX_CONDITIONS
    rules = [{"id": f"r{i}", "conditions": refs, "serve": {"variant": "b"}} for i in range(3)]
    with pytest.raises(RulesParseError, match="max_condition_cost"):
        rollwise.RulesDocument.from_json(
            document(flag(rules=rules), segments={"empty": {"conditions": []}})
        )

"""rollwise/spec/rules.schema.json agrees with the SDK's parser (docs/spec/rules.md).

Every valid document validates against the schema, parses, and survives a round trip through
``to_json``; every document in the table of invalid ones is rejected by the schema *and* by the
parser, and the parser names the expected JSON paths.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from rollwise import RulesDocument, RulesParseError
from rollwise.operators import OPERATORS
from rollwise.spec import RULES_SCHEMA, rules_schema
from rollwise.testing import flag_document

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


SCHEMA = rules_schema()
VALIDATOR = Draft202012Validator(SCHEMA)


def _condition(operator: str, **operand: Any) -> dict[str, Any]:
    return {"attribute": "x", "operator": operator, **operand}


EVERY_OPERATOR = [
    _condition("in", values=["a", 7]),
    _condition("not_in", values=[]),
    _condition("eq", value="DE", case_insensitive=True),
    _condition("eq", value=5),
    _condition("neq", value=1.5, negate=True),
    _condition("lt", value=500),
    _condition("lte", value=0.5),
    _condition("gt", value=-3),
    _condition("gte", value=10),
    _condition("between", values=[0, 500]),
    _condition("starts_with", value="ab"),
    _condition("ends_with", value=12),
    _condition("contains", value="b"),
    _condition("matches", value=r"^\S+@example\.com$", case_insensitive=True),
    _condition("semver_eq", value="1.2.3"),
    _condition("semver_lt", value="v2.0.0-rc.1"),
    _condition("semver_lte", value="1.0.0+build.7"),
    _condition("semver_gt", value="0.9.0-alpha.beta"),
    _condition("semver_gte", value="1.0.0-0"),
    _condition("before", value="2026-11-01"),
    _condition("after", value="2026-11-01T12:30:00.25+02:00"),
    _condition("after", value="2026-11-01T12:30"),
    _condition("exists"),
    _condition("exists", value=None, values=None, negate=True),
]


def _every_operator_document() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "environment": "staging",
        "revision": 0,
        "segments": {
            "empty": {},
            "beta.testers": {"key": "beta.testers", "conditions": EVERY_OPERATOR[:3]},
        },
        "flags": {
            "every-op": {
                "key": "every-op",
                "version": 1,
                "variants": {"a": {"payload": [1, {"k": None}]}, "b": {"payload": None}, "c": {}},
                "off_variant": "a",
                "default_variant": "b",
                "schedule": {"start": None, "end": "2030-01-01T00:00:00Z"},
                "rules": [
                    {"id": f"r{i}", "conditions": [c], "serve": {"variant": "c"}}
                    for i, c in enumerate(EVERY_OPERATOR)
                ]
                + [
                    {
                        "id": "segments",
                        "conditions": [{"segment": "empty"}, {"segment": "beta.testers"}],
                        "serve": {
                            "split": [{"variant": "a", "weight": 0}, {"variant": "b", "weight": 1}]
                        },
                    },
                    {
                        "id": "no-conditions",
                        "serve": {
                            "variant": None,
                            "split": [{"variant": "c", "weight": 2**32}],
                            "bucket_by": "account",
                        },
                    },
                ],
            },
            "killed": {
                "version": 7,
                "enabled": False,
                "salt": "killed-2",
                "description": "",
                "variants": {"only": {}},
                "off_variant": "only",
                "default_variant": "only",
                "cohort_attributes": ["country"],
                "schedule": None,
                "rules": [],
            },
        },
    }


def _forward_compatible_document() -> dict[str, Any]:
    """Fields and an operator from a newer server: valid for the SDK and the schema."""
    return {
        "schema_version": 1,
        "environment": "production",
        "revision": 99,
        "published_at": "2027-01-01T00:00:00Z",
        "segments": {"s": {"conditions": [], "owner": "risk"}},
        "flags": {
            "f": {
                "version": 2,
                "variants": {"on": {"weight_hint": 3}, "off": {}},
                "off_variant": "off",
                "default_variant": "off",
                "tags": ["ml"],
                "schedule": {"start": "2026-01-01", "timezone": "Europe/Berlin"},
                "rules": [
                    {
                        "id": "future",
                        "conditions": [
                            {"attribute": "geo", "operator": "within_km", "value": {"km": 5}},
                            {"attribute": "x", "operator": "one_of_regex", "values": ["a", 1]},
                            {"segment": "s", "negate": False, "weight": 1},
                        ],
                        "serve": {"variant": "on", "sticky": True},
                        "note": "newer",
                    }
                ],
            }
        },
    }


FORWARD_COMPATIBLE = _forward_compatible_document()

VALID = [
    *(pytest.param(_load(path), id=path.name) for path in EXAMPLES),
    pytest.param({"schema_version": 1, "environment": "e", "revision": 0}, id="minimal"),
    pytest.param(flag_document({"fraud-model": "v1"}), id="rollwise.testing.flag_document"),
    pytest.param(_every_operator_document(), id="every-operator"),
    pytest.param(FORWARD_COMPATIBLE, id="forward-compatible"),
]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_example_document_is_there() -> None:
    assert ROOT / "docs" / "examples" / "fraud-model.json" in EXAMPLES


@pytest.mark.parametrize("document", VALID)
def test_valid_documents_validate_and_parse(document: dict[str, Any]) -> None:
    assert [e.message for e in VALIDATOR.iter_errors(document)] == []
    RulesDocument.from_json(document)


@pytest.mark.parametrize("document", VALID)
def test_valid_documents_round_trip(document: dict[str, Any]) -> None:
    parsed = RulesDocument.from_json(document)
    again = RulesDocument.from_json(parsed.to_json())
    assert again == parsed
    assert again.to_json() == parsed.to_json()
    assert RulesDocument.from_text(parsed.to_text()) == parsed
    # what to_json writes is a complete, schema-valid document that strict mode accepts,
    # unless it holds operators of a newer server, which the server refuses at write time
    assert [e.message for e in VALIDATOR.iter_errors(parsed.to_json())] == []
    if document is FORWARD_COMPATIBLE:
        with pytest.raises(RulesParseError, match="unknown operator"):
            RulesDocument.from_json(parsed.to_json(), strict=True)
    else:
        assert RulesDocument.from_json(parsed.to_json(), strict=True) == parsed


# --- invalid documents: (change to the base document, the parser's problem paths) ---

Change = Callable[[dict[str, Any]], None]
F = ("flags", "f")
R0 = (*F, "rules", 0)
C0 = (*R0, "conditions", 0)


def _base() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "environment": "production",
        "revision": 3,
        "segments": {"eu": {"conditions": [_condition("in", values=["DE"])]}},
        "flags": {
            "f": {
                "version": 1,
                "variants": {"v1": {}, "v2": {"payload": {"model": "m2"}}},
                "off_variant": "v1",
                "default_variant": "v1",
                "cohort_attributes": ["country"],
                "schedule": {"start": "2026-11-01T00:00:00Z", "end": None},
                "rules": [
                    {
                        "id": "r0",
                        "conditions": [_condition("lt", value=500), {"segment": "eu"}],
                        "serve": {
                            "split": [
                                {"variant": "v2", "weight": 1},
                                {"variant": "v1", "weight": 9},
                            ],
                            "bucket_by": "user_id",
                        },
                    }
                ],
            }
        },
    }


def _set(path: tuple[Any, ...], value: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path
        target: Any = document
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _delete(path: tuple[Any, ...]) -> Change:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path
        target: Any = document
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _append(path: tuple[Any, ...], value: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for part in path:
            target = target[part]
        target.append(value)

    return change


def _rename_flag(new_key: str) -> Change:
    def change(document: dict[str, Any]) -> None:
        document["flags"][new_key] = document["flags"].pop("f")

    return change


def _typed(kind: str, first: Any, second: Any) -> Change:
    """Flag ``f`` as a ``kind`` flag with these values of v1 and v2."""

    def change(document: dict[str, Any]) -> None:
        document["schema_version"] = 2
        flag = document["flags"]["f"]
        flag["type"] = kind
        flag["variants"]["v1"]["value"] = first
        flag["variants"]["v2"]["value"] = second

    return change


P = "flags.f.rules[0]"
CP = f"{P}.conditions[0]"
SPLIT = f"{P}.serve.split"

INVALID = [
    pytest.param(_delete(("schema_version",)), ["schema_version"], id="no-schema-version"),
    pytest.param(_set(("schema_version",), 0), ["schema_version"], id="schema-version-0"),
    pytest.param(_set(("schema_version",), "1"), ["schema_version"], id="schema-version-string"),
    pytest.param(_set(("environment",), "prod env"), ["environment"], id="environment-space"),
    pytest.param(_delete(("environment",)), ["environment"], id="no-environment"),
    pytest.param(_set(("revision",), -1), ["revision"], id="negative-revision"),
    pytest.param(_set(("revision",), True), ["revision"], id="bool-revision"),
    pytest.param(  # a reference to a segment that could not be read is unknown too
        _set(("segments",), []), ["segments", f"{P}.conditions[1].segment"], id="segments-list"
    ),
    pytest.param(_set(("flags",), None), ["flags"], id="flags-null"),
    pytest.param(_rename_flag("bad/key"), ["flags.bad/key"], id="flag-key-slash"),
    pytest.param(_rename_flag("-dash"), ["flags.-dash"], id="flag-key-leading-dash"),
    pytest.param(_rename_flag("k" * 129), [f"flags.{'k' * 129}"], id="flag-key-129"),
    pytest.param(_rename_flag("trailing\n"), ["flags.trailing\n"], id="flag-key-newline"),
    pytest.param(_set(("segments", "é"), {}), ["segments.é"], id="segment-key-non-ascii"),
    pytest.param(_set((*F, "version"), 0), ["flags.f.version"], id="version-0"),
    pytest.param(_delete((*F, "version")), ["flags.f.version"], id="no-version"),
    pytest.param(_set((*F, "enabled"), "yes"), ["flags.f.enabled"], id="enabled-string"),
    pytest.param(_set((*F, "salt"), ""), ["flags.f.salt"], id="empty-salt"),
    pytest.param(_set((*F, "description"), 5), ["flags.f.description"], id="description-int"),
    pytest.param(
        _set((*F, "variants"), {}),
        ["flags.f.variants", f"{SPLIT}[0].variant", f"{SPLIT}[1].variant"],
        id="no-variants",
    ),
    pytest.param(
        _set((*F, "variants", "v 3"), {}), ["flags.f.variants.v 3"], id="variant-key-space"
    ),
    pytest.param(
        _set((*F, "variants", "v2"), []),
        ["flags.f.variants.v2", f"{SPLIT}[0].variant"],
        id="variant-list",
    ),
    pytest.param(_delete((*F, "off_variant")), ["flags.f.off_variant"], id="no-off-variant"),
    pytest.param(
        _set((*F, "default_variant"), 1), ["flags.f.default_variant"], id="default-variant-int"
    ),
    pytest.param(
        _set((*F, "cohort_attributes"), ["country", "country"]),
        ["flags.f.cohort_attributes[1]"],
        id="cohort-duplicate",
    ),
    pytest.param(
        _set((*F, "cohort_attributes"), [""]), ["flags.f.cohort_attributes[0]"], id="cohort-empty"
    ),
    pytest.param(_set((*F, "schedule"), "always"), ["flags.f.schedule"], id="schedule-string"),
    pytest.param(
        _set((*F, "schedule", "start"), "tomorrow"),
        ["flags.f.schedule.start"],
        id="schedule-start-not-date",
    ),
    pytest.param(
        _set((*F, "schedule", "end"), 1767225600), ["flags.f.schedule.end"], id="schedule-epoch"
    ),
    pytest.param(_set((*F, "rules"), {}), ["flags.f.rules"], id="rules-object"),
    pytest.param(_set((*R0, "id"), "r 0"), [f"{P}.id"], id="rule-id-space"),
    pytest.param(_delete((*R0, "id")), [f"{P}.id"], id="no-rule-id"),
    pytest.param(_delete((*R0, "serve")), [f"{P}.serve"], id="no-serve"),
    pytest.param(_set((*R0, "conditions"), None), [f"{P}.conditions"], id="conditions-null"),
    pytest.param(
        _set((*R0, "serve", "variant"), "v1"), [f"{P}.serve"], id="serve-variant-and-split"
    ),
    pytest.param(_set((*R0, "serve"), {}), [f"{P}.serve"], id="serve-neither"),
    pytest.param(_set((*R0, "serve", "split"), []), [SPLIT], id="split-empty"),
    pytest.param(
        _set((*R0, "serve", "bucket_by"), ""), [f"{P}.serve.bucket_by"], id="bucket-by-empty"
    ),
    pytest.param(
        _set((*R0, "serve", "bucket_by"), None), [f"{P}.serve.bucket_by"], id="bucket-by-null"
    ),
    pytest.param(
        _set((*R0, "serve", "split", 0, "weight"), -1), [f"{SPLIT}[0].weight"], id="weight-negative"
    ),
    pytest.param(
        _set((*R0, "serve", "split", 0, "weight"), 0.5), [f"{SPLIT}[0].weight"], id="weight-float"
    ),
    pytest.param(
        _set((*R0, "serve", "split", 1, "weight"), True), [f"{SPLIT}[1].weight"], id="weight-bool"
    ),
    pytest.param(
        _delete((*R0, "serve", "split", 1, "weight")), [f"{SPLIT}[1].weight"], id="no-weight"
    ),
    pytest.param(
        _set((*R0, "serve", "split", 0, "weight"), 2**32 + 1), [SPLIT], id="weight-above-2**32"
    ),
    pytest.param(_set((*R0, "serve", "split", 0), "v2"), [f"{SPLIT}[0]"], id="arm-string"),
    pytest.param(_set(C0, "amount < 500"), [CP], id="condition-string"),
    pytest.param(_delete((*C0, "attribute")), [f"{CP}.attribute"], id="no-attribute"),
    pytest.param(_set((*C0, "operator"), ""), [f"{CP}.operator"], id="empty-operator"),
    pytest.param(_set((*C0, "negate"), "no"), [f"{CP}.negate"], id="negate-string"),
    pytest.param(
        _set((*C0, "case_insensitive"), 1), [f"{CP}.case_insensitive"], id="case-insensitive-int"
    ),
    pytest.param(
        _set(C0, _condition("in", value="DE")), [f"{CP}.value", f"{CP}.values"], id="in-with-value"
    ),
    pytest.param(_set(C0, _condition("in", values="DE")), [f"{CP}.values"], id="in-values-string"),
    pytest.param(_set(C0, _condition("in", values=[1.5])), [f"{CP}.values"], id="in-float"),
    pytest.param(_set(C0, _condition("not_in", values=None)), [f"{CP}.values"], id="not-in-null"),
    pytest.param(_set(C0, _condition("eq", value=True)), [f"{CP}.value"], id="eq-bool"),
    pytest.param(_set(C0, _condition("eq", value=[1])), [f"{CP}.value"], id="eq-list"),
    pytest.param(
        _set(C0, _condition("neq", value=1, values=[1])), [f"{CP}.values"], id="neq-with-values"
    ),
    pytest.param(_set(C0, _condition("lt", value="500")), [f"{CP}.value"], id="lt-string"),
    pytest.param(_set(C0, _condition("gte")), [f"{CP}.value"], id="gte-no-value"),
    pytest.param(
        _set(C0, _condition("between", values=[0, 1, 2])), [f"{CP}.values"], id="between-3"
    ),
    pytest.param(
        _set(C0, _condition("between", values=["0", 1])), [f"{CP}.values"], id="between-string"
    ),
    pytest.param(
        _set(C0, _condition("starts_with", value=1.5)), [f"{CP}.value"], id="starts-with-float"
    ),
    pytest.param(
        _set(C0, _condition("matches", value="a" * 257)), [f"{CP}.value"], id="pattern-257"
    ),
    pytest.param(_set(C0, _condition("matches", value=5)), [f"{CP}.value"], id="pattern-int"),
    pytest.param(
        _set(C0, _condition("semver_gt", value="1.2")), [f"{CP}.value"], id="semver-two-parts"
    ),
    pytest.param(
        _set(C0, _condition("semver_eq", value="01.2.3")), [f"{CP}.value"], id="semver-leading-0"
    ),
    pytest.param(
        _set(C0, _condition("semver_lt", value="1.2.3-01")),
        [f"{CP}.value"],
        id="semver-prerelease-leading-0",
    ),
    pytest.param(
        _set(C0, _condition("semver_lt", value="1.2.3\n")), [f"{CP}.value"], id="semver-newline"
    ),
    pytest.param(_set(C0, _condition("before", value="soon")), [f"{CP}.value"], id="before-text"),
    pytest.param(_set(C0, _condition("after", value=0)), [f"{CP}.value"], id="after-epoch"),
    pytest.param(_set(C0, _condition("exists", value=True)), [f"{CP}.value"], id="exists-value"),
    pytest.param(
        _set(C0, _condition("from_the_future", values="abc")),
        [f"{CP}.values"],
        id="unknown-operator-values-not-a-list",
    ),
    pytest.param(
        _set((*R0, "conditions", 1, "segment"), "e u"),
        [f"{P}.conditions[1].segment"],
        id="segment-ref-bad-key",
    ),
    pytest.param(
        _set((*R0, "conditions", 1, "negate"), None),
        [f"{P}.conditions[1].negate"],
        id="segment-ref-negate-null",
    ),
    pytest.param(
        _set(("segments", "eu", "conditions", 0), {"segment": "eu"}),
        ["segments.eu.conditions[0].segment"],
        id="segment-in-segment",
    ),
    pytest.param(
        _set(("segments", "eu", "description"), None),
        ["segments.eu.description"],
        id="segment-description-null",
    ),
    # typed flags (schema_version 2): the type, and each variant's value against it
    pytest.param(_set((*F, "type"), "bool"), ["flags.f.type"], id="type-unknown"),
    pytest.param(_set((*F, "type"), None), ["flags.f.type"], id="type-null"),
    pytest.param(
        _set((*F, "type"), "boolean"),
        ["flags.f.variants.v1.value", "flags.f.variants.v2.value"],
        id="boolean-without-values",
    ),
    pytest.param(_typed("boolean", 1, False), ["flags.f.variants.v1.value"], id="boolean-value-1"),
    pytest.param(
        _typed("integer", 1.5, 2), ["flags.f.variants.v1.value"], id="integer-value-float"
    ),
    pytest.param(
        _typed("integer", True, 2), ["flags.f.variants.v1.value"], id="integer-value-bool"
    ),
    pytest.param(
        _typed("integer", 2**53, 2), ["flags.f.variants.v1.value"], id="integer-above-2**53"
    ),
    pytest.param(_typed("float", "0.5", 2), ["flags.f.variants.v1.value"], id="float-value-string"),
    pytest.param(_typed("json", 3, {}), ["flags.f.variants.v1.value"], id="json-value-scalar"),
    pytest.param(_typed("json", None, []), ["flags.f.variants.v1.value"], id="json-value-null"),
    pytest.param(_typed("string", 7, "x"), ["flags.f.variants.v1.value"], id="string-value-7"),
    pytest.param(_typed("string", "", "x"), ["flags.f.variants.v1.value"], id="string-value-empty"),
]


@pytest.mark.parametrize(("change", "paths"), INVALID)
def test_invalid_documents_are_rejected_by_schema_and_parser(
    change: Change, paths: list[str]
) -> None:
    document = copy.deepcopy(_base())
    assert VALIDATOR.is_valid(document)
    RulesDocument.from_json(copy.deepcopy(document))
    change(document)
    assert not VALIDATOR.is_valid(document), "the schema accepts it"
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(document)
    assert sorted({p.path for p in caught.value.problems}) == sorted(paths)


def test_a_document_that_is_not_an_object_is_rejected_by_both() -> None:
    for document in ([], "rules", 1, None):
        assert not VALIDATOR.is_valid(document)
        with pytest.raises(RulesParseError) as caught:
            RulesDocument.from_json(document)
        assert [(p.path, p.message) for p in caught.value.problems] == [("", "must be an object")]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-01", id="date"),
        pytest.param("2026-11-01T10:00", id="minutes"),
        pytest.param("2026-11-01T10:00:00", id="no-offset"),
        pytest.param("2026-11-01T10:00:00Z", id="zulu"),
        pytest.param("2026-11-01T10:00:00.5-03:30", id="fraction-offset"),
        pytest.param("2026-11-01T10:00:00.123456+14:00", id="microseconds"),
    ],
)
def test_portable_date_times_are_valid_for_both(value: str) -> None:
    document = _base()
    document["flags"]["f"]["schedule"] = {"start": value, "end": None}
    assert VALIDATOR.is_valid(document)
    assert RulesDocument.from_json(document).flags["f"].schedule is not None


def test_date_times_outside_the_portable_form_are_accepted_only_by_the_python_parser() -> None:
    # the documented one-way difference (rules.md, "The JSON Schema")
    document = _base()
    document["flags"]["f"]["schedule"] = {"start": "20261101T100000", "end": None}
    assert not VALIDATOR.is_valid(document)
    assert RulesDocument.from_json(document).flags["f"].schedule is not None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_set((*R0, "serve", "split", 0, "variant"), "v9"), id="unknown-variant"),
        pytest.param(_set((*R0, "conditions", 1, "segment"), "apac"), id="unknown-segment"),
        pytest.param(
            _append((*F, "rules"), {"id": "r0", "serve": {"variant": "v1"}}), id="duplicate-id"
        ),
        pytest.param(
            _set((*R0, "serve", "split"), [{"variant": "v2", "weight": 0}]), id="weights-sum-to-0"
        ),
        pytest.param(_set((*R0, "serve", "split", 1, "variant"), "v2"), id="variant-twice"),
        pytest.param(_set(C0, _condition("between", values=[5, 1])), id="between-lo-above-hi"),
        pytest.param(_set(C0, _condition("matches", value="(")), id="pattern-does-not-compile"),
        pytest.param(_set((*F, "schedule", "end"), "2026-01-01T00:00:00Z"), id="end-before-start"),
        pytest.param(_set((*F, "key"), "g"), id="key-field-differs"),
        pytest.param(_set((*F, "schedule", "start"), "2026-02-30"), id="no-such-day"),
    ],
)
def test_what_only_the_parser_can_check(change: Change) -> None:
    # documented in rules.md: JSON Schema cannot express these, so the schema accepts them
    document = _base()
    change(document)
    assert VALIDATOR.is_valid(document)
    with pytest.raises(RulesParseError):
        RulesDocument.from_json(document)


def test_the_schema_is_shipped_in_the_package() -> None:
    """The file sits in the package directory (the wheel takes the directory whole) and is
    what ``rules_schema()`` reads."""
    import rollwise.spec

    path = Path(rollwise.spec.__file__).with_name(RULES_SCHEMA)
    assert json.loads(path.read_text(encoding="utf-8")) == SCHEMA
    assert rules_schema() is not rules_schema()  # a fresh copy each time


def _conditions() -> Iterator[dict[str, Any]]:
    """Attribute conditions: every operator (and an unknown one) with every operand shape."""
    operators = [*OPERATORS, "from_the_future", ""]
    absent = object()
    values: list[Any] = [absent, None, "DE", 3, -2.5, True, "v1.2.3-rc.1", "2026-11-01",
                         "x" * 257, [1, 2]]  # fmt: skip
    lists: list[Any] = [absent, None, [], ["DE", 7], [0.5, 9.5], [1, 2, 3], [True], "DE"]
    for operator in operators:
        for value in values:
            for items in lists:
                condition: dict[str, Any] = {"attribute": "country", "operator": operator}
                if value is not absent:
                    condition["value"] = value
                if items is not absent:
                    condition["values"] = items
                yield condition
    yield {"operator": "in", "values": ["DE"]}
    yield {"attribute": "country", "values": ["DE"]}
    yield {"attribute": "country", "operator": "in", "values": ["DE"], "segment": "eu"}
    yield {"attribute": "country", "operator": "exists", "negate": "yes"}


def _parses(condition: dict[str, Any]) -> bool:
    try:
        RulesDocument.from_json(_rule_document(condition))
    except RulesParseError:
        return False
    return True


def test_the_operand_branches_accept_every_condition_the_parser_accepts() -> None:
    """The operand of each operator is one ``oneOf`` branch (the operator groups are disjoint,
    and one branch takes unknown operators). Over a corpus of every operator with every operand
    shape, a condition the SDK's parser accepts is valid for the schema (a schema that refused
    it would refuse documents the SDKs take), and one the schema refuses the parser refuses;
    the parser refuses more (patterns that do not compile, ``lo > hi``)."""
    verdicts = {(True, True): 0, (False, False): 0, (True, False): 0}
    for condition in _conditions():
        schema, parser = VALIDATOR.is_valid(_rule_document(condition)), _parses(condition)
        assert schema or not parser, condition
        verdicts[schema, parser] += 1
    assert verdicts[True, True] > 50, verdicts
    assert verdicts[False, False] > 50, verdicts


def _rule_document(condition: dict[str, Any]) -> dict[str, Any]:
    rule = {"id": "r", "conditions": [condition], "serve": {"variant": "a"}}
    flag = {"version": 1, "variants": {"a": {}}, "off_variant": "a", "default_variant": "a"}
    return {
        "schema_version": 1, "environment": "test", "revision": 1,
        "flags": {"f": {**flag, "rules": [rule]}},
    }  # fmt: skip

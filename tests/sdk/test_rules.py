"""Parsing and validating rules documents (docs/spec/rules.md, "Validation errors").

Every problem is reported with its JSON path in one ``RulesParseError``; references between
flags, variants, rules and segments are checked; strict mode rejects unknown fields; the
values are frozen; and ``to_json``/``from_json`` round-trip (a hypothesis property).
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rollwise import (
    Client,
    Condition,
    Flag,
    Reason,
    RulesDocument,
    RulesError,
    RulesParseError,
    Segment,
    SegmentRef,
    UnsupportedSchemaError,
)
from rollwise._parse import condition_cost
from rollwise.limits import MAX_CONDITION_COST, plain_name
from rollwise.operators import OPERATORS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "fraud-model.json"


def _example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _problems(document: Any, *, strict: bool = False) -> list[tuple[str, str]]:
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(document, strict=strict)
    return [(p.path, p.message) for p in caught.value.problems]


FM = "flags.fraud-model"
R0 = f"{FM}.rules[0]"
R1 = f"{FM}.rules[1]"


# --- every problem, in one error ---


def test_every_problem_is_reported_at_once() -> None:
    document = _example()
    document["revision"] = -1
    document["segments"]["eu"]["conditions"][0]["values"] = "DE"
    flag = document["flags"]["fraud-model"]
    flag["off_variant"] = "v0"
    flag["rules"][0]["serve"] = {"variant": "v3"}
    flag["rules"][1]["id"] = "qa-team"
    flag["rules"][1]["conditions"][1]["value"] = "500"
    flag["rules"][1]["serve"]["split"][0]["weight"] = -100
    document["flags"]["bad key"] = {}
    assert _problems(document) == [
        ("revision", "must be a non-negative integer"),
        ("segments.eu.conditions[0].values", "must be a list of strings or integers"),
        (f"{FM}.off_variant", "unknown variant 'v0'"),
        (f"{R0}.serve.variant", "unknown variant 'v3'"),
        (f"{R1}.id", "duplicate rule id 'qa-team'"),
        (f"{R1}.conditions[1].value", "must be a finite number"),
        (f"{R1}.serve.split[0].weight", "must be a non-negative integer"),
        ("flags.bad key", "must be a flag key of 1-128 letters, digits, '_', '.' or '-'"),
    ]


def test_the_message_lists_every_problem_with_its_path() -> None:
    document = _example()
    document["flags"]["fraud-model"]["rules"][1]["serve"]["split"][0]["weight"] = 1.5
    document["flags"]["fraud-model"]["version"] = 0
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(document)
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, RulesError)
    assert str(error) == (
        "invalid rules document (2 problems):\n"
        f"  {FM}.version: must be an integer >= 1\n"
        f"  {R1}.serve.split[0].weight: must be a non-negative integer"
    )
    assert [str(p) for p in error.problems] == [
        f"{FM}.version: must be an integer >= 1",
        f"{R1}.serve.split[0].weight: must be a non-negative integer",
    ]


# --- reference and consistency checks ---

Change = Callable[[dict[str, Any]], None]


def _flag(document: dict[str, Any]) -> dict[str, Any]:
    return document["flags"]["fraud-model"]  # type: ignore[no-any-return]


def _split(document: dict[str, Any]) -> list[dict[str, Any]]:
    return _flag(document)["rules"][1]["serve"]["split"]  # type: ignore[no-any-return]


def _serve(document: dict[str, Any], serve: dict[str, Any]) -> None:
    _flag(document)["rules"][0]["serve"] = serve


SPLIT = f"{R1}.serve.split"
WEIGHT_RANGE = "weights must sum to between 1 and 2**32, not {}"
ONE_OF = "must have exactly one of 'variant' or 'split'"

CHECKS = [
    pytest.param(
        lambda d: _serve(d, {"variant": "v9"}),
        [(f"{R0}.serve.variant", "unknown variant 'v9'")],
        id="unknown-serve-variant",
    ),
    pytest.param(
        lambda d: _serve(d, {"variant": 2}),
        [(f"{R0}.serve.variant", "unknown variant 2")],
        id="serve-variant-not-a-string",
    ),
    pytest.param(
        lambda d: _split(d)[1].update(variant="v9"),
        [(f"{SPLIT}[1].variant", "unknown variant 'v9'")],
        id="unknown-split-variant",
    ),
    pytest.param(
        lambda d: _flag(d).update(off_variant="v9"),
        [(f"{FM}.off_variant", "unknown variant 'v9'")],
        id="unknown-off-variant",
    ),
    pytest.param(
        lambda d: _flag(d).update(default_variant="V1"),
        [(f"{FM}.default_variant", "unknown variant 'V1'")],
        id="unknown-default-variant",
    ),
    pytest.param(
        lambda d: _flag(d)["rules"][1]["conditions"][0].update(segment="apac"),
        [(f"{R1}.conditions[0].segment", "unknown segment 'apac'")],
        id="unknown-segment",
    ),
    pytest.param(
        lambda d: _flag(d)["rules"].append(copy.deepcopy(_flag(d)["rules"][0])),
        [(f"{FM}.rules[2].id", "duplicate rule id 'qa-team'")],
        id="duplicate-rule-id",
    ),
    pytest.param(
        lambda d: [arm.update(weight=0) for arm in _split(d)],
        [(SPLIT, WEIGHT_RANGE.format(0))],
        id="weights-sum-to-0",
    ),
    pytest.param(
        lambda d: [arm.update(weight=2**31 + 1) for arm in _split(d)],
        [(SPLIT, WEIGHT_RANGE.format(2**32 + 2))],
        id="weights-above-2**32",
    ),
    pytest.param(
        lambda d: _split(d)[0].update(weight=-1),
        [(f"{SPLIT}[0].weight", "must be a non-negative integer")],
        id="negative-weight",
    ),
    pytest.param(
        lambda d: _split(d)[0].update(weight=True),
        [(f"{SPLIT}[0].weight", "must be a non-negative integer")],
        id="bool-weight",
    ),
    pytest.param(
        lambda d: _split(d)[1].update(weight=1.0),
        [(f"{SPLIT}[1].weight", "must be a non-negative integer")],
        id="float-weight",
    ),
    pytest.param(
        lambda d: _split(d)[1].update(weight="9900"),
        [(f"{SPLIT}[1].weight", "must be a non-negative integer")],
        id="string-weight",
    ),
    pytest.param(
        lambda d: _split(d)[1].update(variant="v2"),
        [(f"{SPLIT}[1].variant", "variant 'v2' appears twice")],
        id="duplicate-split-variant",
    ),
    pytest.param(
        lambda d: _serve(d, {"variant": "v2", "split": [{"variant": "v2", "weight": 1}]}),
        [(f"{R0}.serve", ONE_OF)],
        id="both-variant-and-split",
    ),
    pytest.param(lambda d: _serve(d, {}), [(f"{R0}.serve", ONE_OF)], id="neither"),
    pytest.param(
        lambda d: _serve(d, {"variant": None, "split": None}),
        [(f"{R0}.serve", ONE_OF)],
        id="both-null",
    ),
    pytest.param(
        lambda d: _serve(d, {"split": []}),
        [(f"{R0}.serve.split", "must be a non-empty list")],
        id="empty-split",
    ),
    pytest.param(
        lambda d: _flag(d)["schedule"].update(end="2026-10-01T00:00:00Z"),
        [(f"{FM}.schedule.end", "must be later than start")],
        id="schedule-end-before-start",
    ),
    pytest.param(
        lambda d: _flag(d)["schedule"].update(end="2026-11-01T01:00:00+01:00"),
        [(f"{FM}.schedule.end", "must be later than start")],
        id="schedule-empty",
    ),
    pytest.param(
        lambda d: _flag(d).update(key="other"),
        [(f"{FM}.key", "does not match the flag's key 'fraud-model'")],
        id="flag-key-field",
    ),
    pytest.param(
        lambda d: d["segments"]["eu"].update(key="us"),
        [("segments.eu.key", "does not match the segment's key 'eu'")],
        id="segment-key-field",
    ),
    pytest.param(
        lambda d: _flag(d)["cohort_attributes"].append("country"),
        [(f"{FM}.cohort_attributes[2]", "attribute 'country' appears twice")],
        id="duplicate-cohort-attribute",
    ),
    pytest.param(
        lambda d: _flag(d).update(variants={}),
        [(f"{FM}.variants", "must name at least one variant")]
        + [(f"{SPLIT}[{i}].variant", f"unknown variant '{v}'") for i, v in enumerate(["v2", "v1"])]
        + [(f"{R0}.serve.variant", "unknown variant 'v2'")],
        id="no-variants",
    ),
    pytest.param(
        lambda d: d["segments"]["eu"]["conditions"].append({"segment": "eu"}),
        [("segments.eu.conditions[1].segment", "segment references are not allowed here")],
        id="segment-references-segment",
    ),
    pytest.param(
        lambda d: _flag(d)["rules"][0]["conditions"][0].update(value="u1"),
        [(f"{R0}.conditions[0].value", "not used by operator 'in'")],
        id="operand-not-used",
    ),
    pytest.param(
        lambda d: _flag(d)["rules"][0]["conditions"][0].pop("values"),
        [(f"{R0}.conditions[0].values", "is required by operator 'in'")],
        id="operand-missing",
    ),
]


def _sorted(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(problems)


@pytest.mark.parametrize(("change", "expected"), CHECKS)
def test_reference_and_consistency_checks(change: Change, expected: list[tuple[str, str]]) -> None:
    document = _example()
    RulesDocument.from_json(copy.deepcopy(document))
    change(document)
    assert _sorted(_problems(document)) == _sorted(expected)


def test_weights_may_sum_to_exactly_2_to_the_32() -> None:
    document = _example()
    _split(document)[0]["weight"] = 2**32 - 1
    _split(document)[1]["weight"] = 1
    flag = RulesDocument.from_json(document).flags["fraud-model"]
    assert flag.rules[1].serve.split is not None
    assert sum(arm.weight for arm in flag.rules[1].serve.split) == 2**32


def test_a_zero_weight_arm_is_allowed() -> None:
    document = _example()
    _split(document)[0]["weight"] = 0
    assert RulesDocument.from_json(document).flags["fraud-model"].rules[1].serve.split is not None


# --- schema versions and JSON text ---


@pytest.mark.parametrize("version", [3, 4, 1000])
def test_a_newer_schema_version_is_unsupported(version: int) -> None:
    document = _example()
    document["schema_version"] = version
    document["revision"] = "not even valid"  # the version is checked before anything else
    with pytest.raises(UnsupportedSchemaError, match=f"schema_version {version}"):
        RulesDocument.from_json(document)
    with pytest.raises(UnsupportedSchemaError):
        Client.offline(document)
    assert not issubclass(UnsupportedSchemaError, RulesParseError)


@pytest.mark.parametrize(
    "version",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param("1", id="string"),
        pytest.param(1.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
    ],
)
def test_an_invalid_schema_version_is_a_problem(version: Any) -> None:
    document = _example()
    document["schema_version"] = version
    assert _problems(document) == [("schema_version", "must be an integer >= 1")]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("{", id="truncated"),
        pytest.param("{'single': 'quotes'}", id="single-quotes"),
        pytest.param(b"\xff\xfe\x00", id="not-utf-8"),
        pytest.param(b'{"a": 1,}', id="trailing-comma"),
    ],
)
def test_invalid_json_text_is_a_parse_error(text: str | bytes) -> None:
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_text(text)
    ((path, message),) = [(p.path, p.message) for p in caught.value.problems]
    assert path == ""
    assert message.startswith("not valid JSON: ")


def test_invalid_json_text_through_the_client() -> None:
    with pytest.raises(RulesParseError):
        Client.offline('{"schema_version": 1,')
    with pytest.raises(RulesParseError):
        Client.offline(b"{]")


def test_json_text_that_is_not_an_object() -> None:
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_text("[1, 2]")
    assert [str(p) for p in caught.value.problems] == ["must be an object"]


# --- strict mode and unknown fields ---


def _with_unknown_fields() -> tuple[dict[str, Any], list[str]]:
    document = _example()
    document["published_by"] = "server-2"
    document["segments"]["eu"]["owner"] = "risk"
    document["segments"]["eu"]["conditions"][0]["note"] = "pilot"
    flag = _flag(document)
    flag["tags"] = ["ml"]
    flag["variants"]["v1"]["weight_hint"] = 1
    flag["schedule"]["timezone"] = "UTC"
    flag["rules"][0]["priority"] = 1
    flag["rules"][0]["serve"]["sticky"] = True
    flag["rules"][1]["conditions"][0]["scope"] = "global"
    flag["rules"][1]["conditions"][1]["unit"] = "EUR"
    flag["rules"][1]["serve"]["split"][1]["label"] = "control"
    paths = [
        "published_by",
        "segments.eu.owner",
        "segments.eu.conditions[0].note",
        f"{FM}.tags",
        f"{FM}.variants.v1.weight_hint",
        f"{FM}.schedule.timezone",
        f"{R0}.priority",
        f"{R0}.serve.sticky",
        f"{R1}.conditions[0].scope",
        f"{R1}.conditions[1].unit",
        f"{SPLIT}[1].label",
    ]
    return document, paths


def test_strict_mode_rejects_unknown_fields_with_their_paths() -> None:
    document, paths = _with_unknown_fields()
    problems = _problems(document, strict=True)
    assert sorted(problems) == sorted((path, "unknown field") for path in paths)


def test_default_mode_ignores_unknown_fields() -> None:
    document, _ = _with_unknown_fields()
    assert RulesDocument.from_json(document) == RulesDocument.from_json(_example())


def test_strict_mode_accepts_the_example_and_every_known_field() -> None:
    document = _example()
    _flag(document)["key"] = "fraud-model"
    document["segments"]["eu"]["key"] = "eu"
    _flag(document)["rules"][0]["conditions"][0].update(negate=False, case_insensitive=True)
    _flag(document)["rules"][1]["conditions"][0]["negate"] = True
    RulesDocument.from_json(document, strict=True)


def test_strict_mode_refuses_unknown_operators_that_normal_mode_keeps() -> None:
    document = _example()
    _flag(document)["rules"][0]["conditions"].append(
        {"attribute": "geo", "operator": "within_km", "value": {"km": 5}}
    )
    rule = RulesDocument.from_json(document).flags["fraud-model"].rules[0]
    assert rule.conditions[1] == Condition("geo", "within_km", value={"km": 5})
    with pytest.raises(RulesParseError) as refused:  # what the server does at write time
        RulesDocument.from_json(document, strict=True)
    assert "unknown operator 'within_km'" in str(refused.value)


def test_unknown_operators_keep_their_operand() -> None:
    document = _example()
    _flag(document)["rules"][0]["conditions"] = [
        {"attribute": "geo", "operator": "within_km", "values": [1, {"km": 5}], "value": "x"}
    ]
    parsed = RulesDocument.from_json(document)
    assert (
        _flag(parsed.to_json())["rules"][0]["conditions"]
        == (_flag(document)["rules"][0]["conditions"])
    )


# --- frozen values ---


def test_values_are_frozen() -> None:
    document = RulesDocument.from_file(EXAMPLE)
    flag = document.flags["fraud-model"]
    rule = flag.rules[1]
    condition = rule.conditions[1]
    assert isinstance(condition, Condition)
    assert isinstance(rule.conditions[0], SegmentRef)
    for value, field in [
        (document, "revision"),
        (flag, "version"),
        (flag.variants["v2"], "payload"),
        (rule, "id"),
        (rule.serve, "bucket_by"),
        (condition, "value"),
        (document.segments["eu"], "conditions"),
        (flag.schedule, "end"),
    ]:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(value, field, None)


def test_collections_are_read_only() -> None:
    document = RulesDocument.from_file(EXAMPLE)
    flag = document.flags["fraud-model"]
    assert isinstance(document.flags, MappingProxyType)
    assert isinstance(document.segments, MappingProxyType)
    assert isinstance(flag.variants, MappingProxyType)
    assert isinstance(flag.rules, tuple)
    assert isinstance(flag.cohort_attributes, tuple)
    assert isinstance(flag.rules[0].conditions, tuple)
    assert isinstance(flag.rules[1].serve.split, tuple)
    values = flag.rules[0].conditions[0]
    assert isinstance(values, Condition)
    assert values.values == ("u1", "u2")
    payload = flag.variants["v1"].payload
    assert isinstance(payload, MappingProxyType)
    with pytest.raises(TypeError):
        payload["model"] = "other"
    with pytest.raises(TypeError):
        flag.variants["v3"] = flag.variants["v1"]
    with pytest.raises(TypeError):
        document.flags["other"] = flag


def test_nested_payloads_are_read_only_and_thaw_back() -> None:
    document = _example()
    payload = {"model": "m", "thresholds": [0.5, {"eu": [1, 2]}], "meta": {"owner": None}}
    _flag(document)["variants"]["v2"]["payload"] = payload
    parsed = RulesDocument.from_json(document)
    frozen = parsed.flags["fraud-model"].variants["v2"].payload
    assert isinstance(frozen["thresholds"], tuple)
    assert isinstance(frozen["thresholds"][1], MappingProxyType)
    assert frozen["thresholds"][1]["eu"] == (1, 2)
    assert isinstance(frozen["meta"], MappingProxyType)
    assert _flag(parsed.to_json())["variants"]["v2"]["payload"] == payload
    payload["model"] = "changed later"  # the parsed document holds a copy
    assert frozen["model"] == "m"


def test_the_assignment_payload_is_read_only() -> None:
    client = Client.offline(EXAMPLE, clock=lambda: 1_800_000_000.0)
    result = client.evaluate("fraud-model", {"user_id": "u1"})
    assert result.payload == {"model": "fraud-2025-11"}
    with pytest.raises(TypeError):
        result.payload["model"] = "x"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.variant = "v1"


# --- Client.offline accepts every kind of source ---

SOURCES: list[Any] = [
    pytest.param(lambda: _example(), id="mapping"),
    pytest.param(lambda: MappingProxyType(_example()), id="read-only-mapping"),
    pytest.param(lambda: EXAMPLE.read_text(encoding="utf-8"), id="json-text"),
    pytest.param(lambda: "\n  " + EXAMPLE.read_text(encoding="utf-8"), id="json-text-indented"),
    pytest.param(lambda: EXAMPLE.read_bytes(), id="bytes"),
    pytest.param(lambda: str(EXAMPLE), id="str-path"),
    pytest.param(lambda: EXAMPLE, id="pathlib-path"),
    pytest.param(lambda: RulesDocument.from_file(EXAMPLE), id="rules-document"),
]


@pytest.mark.parametrize("source", SOURCES)
def test_client_offline_accepts(source: Callable[[], Any]) -> None:
    client = Client.offline(source(), clock=lambda: 1_800_000_000.0)
    assert client.rules == RulesDocument.from_file(EXAMPLE)
    result = client.evaluate("fraud-model", {"user_id": "u2"})
    assert (result.variant, result.reason, result.rule) == ("v2", Reason.TARGETING_MATCH, "qa-team")


# --- named constructors for one flag or segment (the admin API) ---


def test_flag_and_segment_from_json() -> None:
    document = _example()
    flag_json = _flag(document)
    flag = Flag.from_json(flag_json, key="fraud-model", segments={"eu": {}})
    assert flag == RulesDocument.from_json(document).flags["fraud-model"]
    assert Flag.from_json({**flag_json, "key": "fraud-model"}, segments=["eu"]) == flag
    segment = Segment.from_json(document["segments"]["eu"], key="eu")
    assert segment == RulesDocument.from_json(document).segments["eu"]
    with pytest.raises(RulesParseError) as caught:
        Flag.from_json(flag_json, key="fraud-model", segments=[])
    assert [str(p) for p in caught.value.problems] == [
        "rules[1].conditions[0].segment: unknown segment 'eu'"
    ]
    with pytest.raises(RulesParseError) as caught:
        Flag.from_json(flag_json)
    assert [p.path for p in caught.value.problems] == ["key", "rules[1].conditions[0].segment"]


# --- round trip (hypothesis) ---

KEY_CHARS = string.ascii_letters + string.digits + "_.-"
keys = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(KEY_CHARS, max_size=12),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
payloads = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
finite = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))
string_or_int = st.one_of(st.text(max_size=6), st.integers(-1000, 1000))
versions = st.sampled_from(["1.2.3", "v0.0.1", "1.0.0-alpha.1", "2.0.0-rc.1+build.5", "10.20.30"])
date_times = st.sampled_from(
    ["2026-11-01", "2026-11-01T10:00:00Z", "2026-11-01T10:00:00.5+02:00", "2027-01-01T00:00"]
)


@st.composite
def attribute_conditions(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from([*sorted(OPERATORS), "a_future_operator"]))
    condition: dict[str, Any] = {"attribute": draw(st.text(min_size=1, max_size=8))}
    condition["operator"] = operator
    if operator in ("in", "not_in"):
        condition["values"] = draw(st.lists(string_or_int, max_size=4))
    elif operator in ("eq", "neq"):
        condition["value"] = draw(st.one_of(st.text(max_size=6), finite))
    elif operator in ("lt", "lte", "gt", "gte"):
        condition["value"] = draw(finite)
    elif operator == "between":
        condition["values"] = sorted(draw(st.lists(finite, min_size=2, max_size=2)))
    elif operator in ("starts_with", "ends_with", "contains"):
        condition["value"] = draw(string_or_int)
    elif operator == "matches":
        condition["value"] = draw(st.sampled_from(["^a", r"\d+$", "(?i)x|y", "[a-z]{2,3}"]))
    elif operator.startswith("semver_"):
        condition["value"] = draw(versions)
    elif operator in ("before", "after"):
        condition["value"] = draw(date_times)
    elif operator == "a_future_operator":
        condition["value"] = draw(payloads)
        if draw(st.booleans()):
            condition["values"] = draw(st.lists(payloads, max_size=2))
    if draw(st.booleans()):
        condition["negate"] = draw(st.booleans())
    if draw(st.booleans()):
        condition["case_insensitive"] = draw(st.booleans())
    return condition


@st.composite
def flags(
    draw: st.DrawFn, segment_keys: tuple[str, ...] = (), segment_costs: dict[str, int] | None = None
) -> dict[str, Any]:
    variant_keys = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
    variants = {
        k: ({"payload": draw(payloads)} if draw(st.booleans()) else {}) for k in variant_keys
    }
    rules = []
    for rule_id in draw(st.lists(keys, max_size=4, unique=True)):
        conditions: list[dict[str, Any]] = draw(st.lists(attribute_conditions(), max_size=3))
        if segment_keys and draw(st.booleans()):
            reference: dict[str, Any] = {"segment": draw(st.sampled_from(segment_keys))}
            if draw(st.booleans()):
                reference["negate"] = draw(st.booleans())
            conditions.append(reference)
        if draw(st.booleans()):
            serve: dict[str, Any] = {"variant": draw(st.sampled_from(variant_keys))}
        else:
            arms = draw(st.lists(st.sampled_from(variant_keys), min_size=1, unique=True))
            weights = draw(
                st.lists(st.integers(0, 2**32), min_size=len(arms), max_size=len(arms)).filter(
                    lambda w: 1 <= sum(w) <= 2**32
                )
            )
            serve = {
                "split": [{"variant": a, "weight": w} for a, w in zip(arms, weights, strict=True)]
            }
            if draw(st.booleans()):
                serve["bucket_by"] = draw(st.text(min_size=1, max_size=8))
        rule: dict[str, Any] = {"id": rule_id, "serve": serve}
        if conditions or draw(st.booleans()):
            rule["conditions"] = conditions
        rules.append(rule)
    # a flag over the condition-cost limit is refused (tests/sdk/test_limits.py covers that)
    # (a segment reference costs what its segment's conditions cost)
    cost = sum(condition_cost(r.get("conditions", []), segment_costs) for r in rules)
    assume(cost <= MAX_CONDITION_COST)
    flag: dict[str, Any] = {
        "version": draw(st.integers(1, 2**40)),
        "variants": variants,
        "off_variant": draw(st.sampled_from(variant_keys)),
        "default_variant": draw(st.sampled_from(variant_keys)),
        "rules": rules,
    }
    optional = {
        "enabled": st.booleans(),
        "salt": st.text(min_size=1, max_size=10),
        "description": st.text(max_size=10),
        "cohort_attributes": st.lists(
            st.text(min_size=1, max_size=6).filter(plain_name), max_size=3, unique=True
        ),
        "schedule": st.one_of(
            st.none(),
            st.sampled_from(
                [
                    {"start": "2026-11-01T00:00:00Z", "end": None},
                    {"start": None, "end": "2026-12-01"},
                    {"start": "2026-11-01T00:00:00.25+01:00", "end": "2026-12-01T00:00:00Z"},
                ]
            ),
        ),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            flag[name] = draw(strategy)
    return flag


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    segment_keys = tuple(draw(st.lists(keys, max_size=3, unique=True)))
    segments = {
        k: {"conditions": draw(st.lists(attribute_conditions(), max_size=2))} for k in segment_keys
    }
    costs = {k: condition_cost(body["conditions"]) for k, body in segments.items()}
    return {
        "schema_version": 1,
        "environment": draw(keys),
        "revision": draw(st.integers(0, 2**40)),
        "segments": segments,
        "flags": draw(st.dictionaries(keys, flags(segment_keys, costs), max_size=2)),
    }


@settings(max_examples=150, deadline=None)
@given(flags(segment_keys=("eu", "beta")), keys)
def test_flag_round_trip(data: dict[str, Any], key: str) -> None:
    segments = ("eu", "beta")
    flag = Flag.from_json(data, key=key, segments=segments)
    again = Flag.from_json(flag.to_json(), key=key, segments=segments)
    assert again == flag
    assert again.to_json() == flag.to_json()
    assert (
        Flag.from_json(json.loads(json.dumps(flag.to_json())), key=key, segments=segments) == flag
    )


def _strict_refusals(data: dict[str, Any]) -> bool:
    """Whether strict mode refuses what normal mode keeps: an unknown operator, or an option
    that an operator ignores."""
    try:
        RulesDocument.from_json(data, strict=True)
    except RulesParseError as exc:
        problems = exc.problems
    else:
        return False
    words = ("unknown operator", "not used by operator", "not used with")
    assert all(any(w in p.message for w in words) for p in problems), problems
    return True


@settings(max_examples=75, deadline=None)
@given(documents())
def test_document_round_trip(data: dict[str, Any]) -> None:
    document = RulesDocument.from_json(data)
    assert RulesDocument.from_json(document.to_json()) == document
    assert RulesDocument.from_text(document.to_text()) == document
    if not _strict_refusals(document.to_json()):
        assert RulesDocument.from_json(document.to_json(), strict=True) == document


@pytest.mark.parametrize("value", [{"a": 1}, ["v1"], 3, None])
def test_a_variant_reference_that_is_not_a_string_is_a_problem(value: Any) -> None:
    """Found by schemathesis: a dict as ``default_variant`` raised TypeError (unhashable)."""
    document = _example()
    _flag(document)["default_variant"] = value
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(document)
    assert "flags.fraud-model.default_variant" in str(caught.value)

"""Every condition operator's semantics, pinned as in docs/spec/rules.md ("Operators").

Each case builds a one-flag document whose only rule has the condition and serves ``on``
(default ``off``) and evaluates it through the public ``Client``. Every evaluation also checks
that the generated fast path (``client.evaluate`` and ``client.variant``) and the reference
evaluator (``CompiledFlag.evaluate``) return the same ``Assignment``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from rollwise import Assignment, Client, Reason, RulesParseError
from rollwise.operators import OPERATORS

ABSENT = object()
"""Marks a context without the attribute."""

FLAG = "f"
ON = "on"


def _document(*rules: dict[str, Any], segments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "environment": "test",
        "revision": 1,
        "segments": segments or {},
        "flags": {
            FLAG: {
                "version": 1,
                "variants": {"on": {}, "off": {}, "other": {}},
                "off_variant": "off",
                "default_variant": "off",
                "rules": list(rules),
            }
        },
    }


def _rule(*conditions: dict[str, Any], rule_id: str = "r", serve: str = ON) -> dict[str, Any]:
    return {"id": rule_id, "conditions": list(conditions), "serve": {"variant": serve}}


def _evaluate(client: Client, context: dict[str, Any]) -> Assignment:
    """``client.evaluate``, checked against the reference evaluator and ``client.variant``."""
    fast = client.evaluate(FLAG, context)
    compiled = client._store.compiled
    assert compiled is not None
    reference = compiled.flags[FLAG].evaluate(context)
    assert fast == reference, (context, fast, reference)
    assert client.variant(FLAG, context) == reference.variant
    assert not fast.is_error
    return fast


def _context(value: Any) -> dict[str, Any]:
    return {} if value is ABSENT else {"x": value}


def _matches(condition: dict[str, Any], value: Any) -> bool:
    """Whether the condition holds for a context whose attribute ``x`` is ``value``."""
    client = Client.offline(_document(_rule({"attribute": "x", **condition})))
    result = _evaluate(client, _context(value))
    if result.variant == ON:
        assert (result.reason, result.rule) == (Reason.TARGETING_MATCH, "r")
        return True
    assert (result.variant, result.reason, result.rule) == ("off", Reason.DEFAULT, None)
    return False


def _op(operator: str, **operand: Any) -> dict[str, Any]:
    return {"operator": operator, **operand}


def _cases(condition: dict[str, Any], rows: list[tuple[str, Any, bool]]) -> list[Any]:
    """Parameters for one condition: (id, attribute value, expected match)."""
    operand = condition.get("value", condition.get("values"))
    label = condition["operator"]
    if operand is not None:
        label += "=" + json.dumps(operand, separators=(",", ":"))
    if condition.get("case_insensitive"):
        label += "-folded"
    if condition.get("negate"):
        label = f"not-{label}"
    return [
        pytest.param(condition, value, expected, id=f"{label}-{id_}")
        for id_, value, expected in rows
    ]


def _negate(condition: dict[str, Any]) -> dict[str, Any]:
    return {**condition, "negate": True}


def _fold(condition: dict[str, Any]) -> dict[str, Any]:
    return {**condition, "case_insensitive": True}


# --- every operator: a sample operand and a value that matches it ---

SAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    "in": (_op("in", values=["a", "7"]), "a"),
    "not_in": (_op("not_in", values=["a"]), "b"),
    "eq": (_op("eq", value="a"), "a"),
    "neq": (_op("neq", value="a"), "b"),
    "lt": (_op("lt", value=10), 5),
    "lte": (_op("lte", value=10), 10),
    "gt": (_op("gt", value=10), 11),
    "gte": (_op("gte", value=10), 10),
    "between": (_op("between", values=[0, 10]), 0),
    "starts_with": (_op("starts_with", value="ab"), "abc"),
    "ends_with": (_op("ends_with", value="bc"), "abc"),
    "contains": (_op("contains", value="b"), "abc"),
    "matches": (_op("matches", value="^a.c$"), "abc"),
    "semver_eq": (_op("semver_eq", value="1.2.3"), "1.2.3"),
    "semver_lt": (_op("semver_lt", value="1.2.3"), "1.2.2"),
    "semver_lte": (_op("semver_lte", value="1.2.3"), "1.2.3"),
    "semver_gt": (_op("semver_gt", value="1.2.3"), "1.2.4"),
    "semver_gte": (_op("semver_gte", value="1.2.3"), "1.2.3"),
    "before": (_op("before", value="2026-11-01T00:00:00Z"), "2026-10-31T23:59:59Z"),
    "after": (_op("after", value="2026-11-01T00:00:00Z"), "2026-11-01T00:00:01Z"),
    "exists": (_op("exists"), "anything"),
}

NEGATIONS = {"not_in", "neq"}
"""Operators that are the exact negation of another, so they match what has no view."""


class Opaque:
    """A context value of no type that any operator knows."""


NO_VIEW: list[tuple[str, Any]] = [
    ("absent", ABSENT),
    ("none", None),
    ("true", True),
    ("false", False),
    ("nan", math.nan),
    ("inf", math.inf),
    ("minus-inf", -math.inf),
    ("list", ["a", 5]),
    ("dict", {"a": 5}),
    ("object", Opaque()),
]
"""Values that no operator can read (except ``exists`` for the present ones)."""


def test_every_operator_has_a_sample() -> None:
    assert set(SAMPLES) == set(OPERATORS)


@pytest.mark.parametrize("operator", sorted(SAMPLES))
def test_the_sample_matches_and_negate_inverts_it(operator: str) -> None:
    condition, value = SAMPLES[operator]
    assert _matches(condition, value)
    assert not _matches(_negate(condition), value)


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        pytest.param(operator, value, id=f"{operator}-{name}")
        for operator in sorted(SAMPLES)
        for name, value in NO_VIEW
    ],
)
def test_values_without_a_view_make_positive_operators_false(operator: str, value: Any) -> None:
    condition, _ = SAMPLES[operator]
    if operator == "exists":
        expected = value is not ABSENT and value is not None
    else:
        expected = operator in NEGATIONS
    assert _matches(condition, value) is expected
    assert _matches(_negate(condition), value) is not expected


# --- every operator against an int, a float, a numeric and a non-numeric string ---

TYPE_PROBES = [("int", 7), ("float", 7.5), ("numeric-string", "7"), ("text", "seven")]

TYPES: dict[str, tuple[dict[str, Any], tuple[bool, bool, bool, bool]]] = {
    "in": (_op("in", values=["7", "seven"]), (True, False, True, True)),
    "not_in": (_op("not_in", values=["7", "seven"]), (False, True, False, False)),
    "eq": (_op("eq", value=7), (True, False, True, False)),
    "neq": (_op("neq", value=7), (False, True, False, True)),
    "lt": (_op("lt", value=7.5), (True, False, True, False)),
    "lte": (_op("lte", value=7), (True, False, True, False)),
    "gt": (_op("gt", value=7), (False, True, False, False)),
    "gte": (_op("gte", value=7.5), (False, True, False, False)),
    "between": (_op("between", values=[7, 7.5]), (True, False, True, False)),
    "starts_with": (_op("starts_with", value="7"), (True, False, True, False)),
    "ends_with": (_op("ends_with", value="n"), (False, False, False, True)),
    "contains": (_op("contains", value=7), (True, False, True, False)),
    "matches": (_op("matches", value="^[0-9]+$"), (True, False, True, False)),
    "semver_eq": (_op("semver_eq", value="7.0.0"), (False, False, False, False)),
    "semver_lt": (_op("semver_lt", value="8.0.0"), (False, False, False, False)),
    "semver_lte": (_op("semver_lte", value="8.0.0"), (False, False, False, False)),
    "semver_gt": (_op("semver_gt", value="0.0.1"), (False, False, False, False)),
    "semver_gte": (_op("semver_gte", value="0.0.1"), (False, False, False, False)),
    "before": (_op("before", value="2999-01-01"), (False, False, False, False)),
    "after": (_op("after", value="0001-01-01"), (False, False, False, False)),
    "exists": (_op("exists"), (True, True, True, True)),
}


def test_every_operator_has_a_type_row() -> None:
    assert set(TYPES) == set(OPERATORS)


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        pytest.param(condition, value, expected, id=f"{operator}-{name}")
        for operator, (condition, row) in sorted(TYPES.items())
        for (name, value), expected in zip(TYPE_PROBES, row, strict=True)
    ],
)
def test_value_types(condition: dict[str, Any], value: Any, expected: bool) -> None:
    assert _matches(condition, value) is expected
    assert _matches(_negate(condition), value) is not expected


# --- case_insensitive: folds the string operators, is ignored by the others ---

FOLDING: dict[str, tuple[Any, bool, bool]] = {
    # operator: (value with the sample's case changed, match without, match with the option)
    "in": ("A", False, True),
    "not_in": ("A", True, False),  # sample operand ["a"]
    "eq": ("A", False, True),
    "neq": ("A", True, False),
    "lt": (5, True, True),
    "lte": (10, True, True),
    "gt": (11, True, True),
    "gte": (10, True, True),
    "between": (0, True, True),
    "starts_with": ("ABC", False, True),
    "ends_with": ("ABC", False, True),
    "contains": ("ABC", False, True),
    "matches": ("ABC", False, True),
    "semver_eq": ("1.2.3", True, True),
    "semver_lt": ("1.2.2", True, True),
    "semver_lte": ("1.2.3", True, True),
    "semver_gt": ("1.2.4", True, True),
    "semver_gte": ("1.2.3", True, True),
    "before": ("2026-10-31T23:59:59Z", True, True),
    "after": ("2026-11-01T00:00:01Z", True, True),
    "exists": ("ANYTHING", True, True),
}


def test_every_operator_has_a_folding_row() -> None:
    assert set(FOLDING) == set(OPERATORS)


@pytest.mark.parametrize("operator", sorted(FOLDING))
def test_case_insensitive(operator: str) -> None:
    condition, _ = SAMPLES[operator]
    value, plain, folded = FOLDING[operator]
    assert _matches(condition, value) is plain
    assert _matches(_fold(condition), value) is folded
    assert _matches(_negate(_fold(condition)), value) is not folded


# --- membership ---

IN = _op("in", values=["a", "7", "Straße"])
IN_INTS = _op("in", values=[7, 10])
NOT_IN = _op("not_in", values=["a", 7])

MEMBERSHIP = [
    *_cases(
        IN,
        [
            ("member", "a", True),
            ("non-member", "b", False),
            ("other-case", "A", False),
            ("prefix", "aa", False),
            ("int-as-string", 7, True),
            ("numeric-string", "7", True),
            ("other-numeric-spelling", "7.0", False),
            ("leading-zero", "07", False),
            ("float", 7.0, False),
            ("empty-string", "", False),
        ],
    ),
    *_cases(
        _fold(IN),
        [
            ("folded", "A", True),
            ("casefold", "STRASSE", True),
            ("non-member", "b", False),
            ("int", 7, True),
        ],
    ),
    *_cases(
        IN_INTS,
        [("int", 7, True), ("string", "10", True), ("other-int", 8, False), ("float", 7.0, False)],
    ),
    *_cases(_op("in", values=[]), [("empty-list", "a", False), ("empty-list-int", 0, False)]),
    *_cases(
        _op("not_in", values=[]), [("empty-list", "a", True), ("empty-list-absent", ABSENT, True)]
    ),
    *_cases(
        NOT_IN,
        [
            ("member", "a", False),
            ("int-member", "7", False),
            ("int-attribute-member", 7, False),
            ("non-member", "b", True),
            ("absent", ABSENT, True),
            ("none", None, True),
            ("float", 7.0, True),
            ("bool", True, True),
        ],
    ),
    *_cases(_fold(NOT_IN), [("folded-member", "A", False), ("non-member", "B", True)]),
    *_cases(_negate(NOT_IN), [("negated-is-in", "a", True), ("negated-absent", ABSENT, False)]),
]

# --- equality ---

EQ_TEXT = _op("eq", value="DE")
EQ_FIVE = _op("eq", value=5)

EQUALITY = [
    *_cases(
        EQ_TEXT,
        [
            ("equal", "DE", True),
            ("other-case", "de", False),
            ("padded", "DE ", False),
            ("other", "FR", False),
            ("int", 5, False),
        ],
    ),
    *_cases(_fold(EQ_TEXT), [("folded", "de", True), ("other", "fr", False)]),
    *_cases(_fold(_op("eq", value="straße")), [("casefold", "STRASSE", True)]),
    *_cases(
        EQ_FIVE,
        [
            ("int", 5, True),
            ("float", 5.0, True),
            ("string", "5", True),
            ("string-float", "5.0", True),
            ("padded-string", " 5 ", True),
            ("exponent-string", "0.5e1", True),
            ("other-int", 6, False),
            ("non-numeric-string", "five", False),
            ("bool-true", True, False),
            ("big-int", 10**400, False),
        ],
    ),
    *_cases(_op("eq", value=1), [("bool-is-not-1", True, False), ("int", 1, True)]),
    *_cases(
        _op("eq", value="5.0"),
        [("numeric-operand-int", 5, True), ("numeric-operand-string", "5", True)],
    ),
    *_cases(_op("eq", value=1.5), [("float", 1.5, True), ("string", "1.50", True)]),
    *_cases(
        _op("eq", value="1_000"),
        [("underscore", 1000, True), ("underscore-string", "1000.0", True)],
    ),
    *_cases(
        _op("eq", value="nan"),
        [("nan-is-a-string", "nan", True), ("float-nan", math.nan, False)],
    ),
    *_cases(
        _op("eq", value="inf"),
        [("inf-is-a-string", "inf", True), ("float-inf", math.inf, False)],
    ),
    *_cases(
        _op("neq", value=5),
        [
            ("equal", "5.0", False),
            ("equal-int", 5, False),
            ("other", 6, True),
            ("non-numeric", "five", True),
            ("absent", ABSENT, True),
            ("none", None, True),
            ("bool", True, True),
            ("nan", math.nan, True),
        ],
    ),
    *_cases(_fold(_op("neq", value="DE")), [("folded-equal", "de", False), ("other", "fr", True)]),
]

# --- numbers ---

NUMBERS = [
    *_cases(
        _op("lt", value=10),
        [
            ("below", 9, True),
            ("equal", 10, False),
            ("above", 11, False),
            ("float", 9.99, True),
            ("float-equal", 10.0, False),
            ("string", "9", True),
            ("string-float", "9.5", True),
            ("padded-string", " 9 ", True),
            ("exponent-string", "1e1", False),
            ("negative-string", "-20", True),
            ("non-numeric", "nine", False),
            ("empty-string", "", False),
            ("string-nan", "nan", False),
            ("string-minus-inf", "-inf", False),
            ("string-overflow", "-1e400", False),
            ("bool-false", False, False),
            ("big-int", -(10**400), True),
        ],
    ),
    *_cases(_fold(_op("lt", value=10)), [("case-insensitive-is-ignored", "9", True)]),
    *_cases(
        _op("lte", value=10),
        [("equal", 10, True), ("equal-float", "10.0", True), ("above", 10.0001, False)],
    ),
    *_cases(
        _op("gt", value=10),
        [
            ("above", 11, True),
            ("equal", 10, False),
            ("string", "10.5", True),
            ("big-int", 10**400, True),
            ("bool-true", True, False),
        ],
    ),
    *_cases(
        _op("gte", value=-2.5),
        [("equal", -2.5, True), ("below", -2.6, False), ("string", "-2.5", True)],
    ),
    *_cases(
        _op("between", values=[0, 500]),
        [
            ("lo-included", 0, True),
            ("inside", 499.99, True),
            ("hi-excluded", 500, False),
            ("below", -0.01, False),
            ("string", "250", True),
            ("string-hi", "500", False),
            ("non-numeric", "cheap", False),
        ],
    ),
    *_cases(_op("between", values=[5, 5]), [("empty-range", 5, False)]),
    *_cases(
        _op("between", values=[-1.5, 2.5]),
        [("float-lo", -1.5, True), ("float-hi", 2.5, False), ("int", 2, True)],
    ),
    *_cases(_negate(_op("between", values=[0, 500])), [("negated-hi", 500, True)]),
]

# --- strings ---

STRINGS = [
    *_cases(
        _op("starts_with", value="ab"),
        [
            ("prefix", "abc", True),
            ("equal", "ab", True),
            ("not-prefix", "xab", False),
            ("other-case", "ABC", False),
            ("float", 12.5, False),
        ],
    ),
    *_cases(_fold(_op("starts_with", value="ab")), [("folded", "ABC", True)]),
    *_cases(
        _op("starts_with", value=12),
        [("int-operand-and-value", 123, True), ("string", "124", True)],
    ),
    *_cases(
        _op("ends_with", value="bc"),
        [("suffix", "abc", True), ("not-suffix", "bca", False), ("other-case", "ABC", False)],
    ),
    *_cases(_fold(_op("ends_with", value="ße")), [("casefold", "STRASSE", True)]),
    *_cases(_op("ends_with", value="23"), [("int", 123, True)]),
    *_cases(
        _op("contains", value="b"),
        [("inside", "abc", True), ("absent-char", "ac", False), ("empty", "", False)],
    ),
    *_cases(_fold(_op("contains", value="B")), [("folded", "abc", True)]),
    *_cases(
        _op("contains", value=""), [("empty-operand", "x", True), ("empty-operand-int", 5, True)]
    ),
]

# --- regular expressions ---

LONGEST = "a" * 4096

REGEX = [
    *_cases(
        _op("matches", value="^a.c$"),
        [
            ("match", "abc", True),
            ("longer", "abcd", False),
            ("other-case", "ABC", False),
            ("float", 1.5, False),
        ],
    ),
    *_cases(_op("matches", value="b"), [("search-is-unanchored", "abc", True)]),
    *_cases(_op("matches", value=r"^[0-9]+$"), [("int", 123, True), ("negative-int", -123, False)]),
    *_cases(_fold(_op("matches", value="^a.c$")), [("ignorecase", "ABC", True)]),
    *_cases(
        _fold(_op("matches", value=r"^\S+$")),  # folding the pattern would turn \S into \s
        [("escapes-survive", "ABC", True), ("escapes-survive-space", "A B", False)],
    ),
    *_cases(
        _op("matches", value="^a+$"),
        [("4096-chars", LONGEST, True), ("4097-chars", LONGEST + "a", False)],
    ),
    *_cases(_negate(_op("matches", value="^a+$")), [("negated-4097-chars", LONGEST + "a", True)]),
]

# --- semantic versions ---

PRECEDENCE = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
]
"""semver.org section 11, in ascending precedence."""

ORDERED_PAIRS = [
    ("1.0.0", "2.0.0"),
    ("2.0.0", "2.1.0"),
    ("2.1.0", "2.1.1"),
    ("1.9.0", "1.10.0"),
    ("9.0.0", "10.0.0"),
    ("1.0.0-1", "1.0.0-alpha"),
    ("1.0.0-2", "1.0.0-10"),
    ("1.0.0-alpha", "1.0.0-alpha.0"),
    ("1.0.0-Beta", "1.0.0-alpha"),
    ("0.9.9", "1.0.0-0"),
]

INVALID_VERSIONS = [
    ("two-parts", "1.2"),
    ("one-part", "1"),
    ("leading-zero", "01.2.3"),
    ("leading-zero-minor", "1.02.3"),
    ("prerelease-leading-zero", "1.2.3-01"),
    ("empty-prerelease", "1.2.3-"),
    ("empty-build", "1.2.3+"),
    ("four-parts", "1.2.3.4"),
    ("space", " 1.2.3"),
    ("newline", "1.2.3\n"),
    ("capital-v", "V1.2.3"),
    ("double-v", "vv1.2.3"),
    ("empty", ""),
    ("int", 1),
    ("float", 1.2),
    ("non-ascii-digit", "\u0661.2.3"),
    ("huge", "9" * 5000 + ".0.0"),
]


def _semver_pairs() -> list[Any]:
    params = []
    ordered = [
        (PRECEDENCE[i], PRECEDENCE[j])
        for i in range(len(PRECEDENCE))
        for j in range(i + 1, len(PRECEDENCE))
    ]
    for low, high in ordered + ORDERED_PAIRS:
        params.append(pytest.param(low, high, id=f"{low}<{high}"))
    return params


@pytest.mark.parametrize(("low", "high"), _semver_pairs())
def test_semver_precedence(low: str, high: str) -> None:
    assert _matches(_op("semver_lt", value=high), low)
    assert _matches(_op("semver_lte", value=high), low)
    assert not _matches(_op("semver_lt", value=low), high)
    assert _matches(_op("semver_gt", value=low), high)
    assert _matches(_op("semver_gte", value=low), high)
    assert not _matches(_op("semver_gt", value=high), low)
    assert not _matches(_op("semver_eq", value=low), high)


SEMVER = [
    *_cases(
        _op("semver_eq", value="1.2.3"),
        [
            ("equal", "1.2.3", True),
            ("leading-v", "v1.2.3", True),
            ("build-metadata", "1.2.3+build.5", True),
            ("prerelease", "1.2.3-rc.1", False),
            *((f"invalid-{name}", value, False) for name, value in INVALID_VERSIONS),
        ],
    ),
    *_cases(_op("semver_eq", value="v1.2.3+a"), [("both-ignored", "1.2.3+b", True)]),
    *_cases(_op("semver_gt", value="1.2.3"), [("build-is-not-greater", "1.2.3+zzz", False)]),
    *_cases(
        _op("semver_lte", value="1.2.3"), [("equal", "1.2.3", True), ("above", "1.2.4", False)]
    ),
    *_cases(
        _op("semver_gte", value="1.2.3"), [("equal", "v1.2.3", True), ("below", "1.2.2", False)]
    ),
    *_cases(
        _fold(_op("semver_eq", value="1.0.0-alpha")),
        [("case-insensitive-is-ignored", "1.0.0-ALPHA", False)],
    ),
    *_cases(
        _negate(_op("semver_lt", value="2.0.0")),
        [("negated-invalid", "1.2", True), ("negated-lower", "1.0.0", False)],
    ),
    *_cases(
        _op("semver_lt", value="2.0.0"),
        [(f"invalid-{name}", value, False) for name, value in INVALID_VERSIONS],
    ),
]

# --- dates ---

BEFORE = _op("before", value="2026-11-01T00:00:00Z")
AFTER = _op("after", value="2026-11-01T00:00:00Z")

DATES = [
    *_cases(
        BEFORE,
        [
            ("earlier", "2026-10-31T23:59:59Z", True),
            ("equal-is-not-before", "2026-11-01T00:00:00Z", False),
            ("later", "2026-11-01T00:00:01Z", False),
            ("equal-with-offset", "2026-11-01T00:00:00+00:00", False),
            ("offset-earlier-in-utc", "2026-11-01T01:00:00+02:00", True),
            ("offset-later-in-utc", "2026-10-31T23:00:00-02:00", False),
            ("no-offset-is-utc", "2026-11-01T00:00:00", False),
            ("no-offset-earlier", "2026-10-31T23:59:59.999999", True),
            ("date-is-midnight-utc", "2026-11-01", False),
            ("date-earlier", "2026-10-31", True),
            ("datetime", datetime(2026, 10, 31, tzinfo=UTC), True),
            ("naive-datetime-is-utc", datetime(2026, 11, 1), False),
            ("date", date(2026, 10, 31), True),
            ("date-equal", date(2026, 11, 1), False),
            ("epoch-seconds", 0, False),
            ("text", "yesterday", False),
            ("empty", "", False),
            ("no-such-day", "2026-02-30", False),
            ("overflow", "0001-01-01T00:00:00+23:59", False),
            ("too-long", "2026-10-31T00:00:00" + "0" * 60, False),
        ],
    ),
    *_cases(
        AFTER,
        [
            ("later", "2026-11-01T00:00:01Z", True),
            ("equal-is-not-after", "2026-11-01T00:00:00Z", False),
            ("offset-later-in-utc", "2026-11-01T00:00:00-01:00", True),
            ("date-later", "2026-11-02", True),
            ("overflow", "9999-12-31T23:59:59-23:59", False),
            ("aware-datetime-elsewhere", datetime.fromisoformat("2026-11-01T00:30:00-00:30"), True),
        ],
    ),
    *_cases(
        _op("before", value="2026-11-01T02:00:00+02:00"),
        [
            ("operand-offset", "2026-10-31T23:59:59Z", True),
            ("operand-offset-equal", "2026-11-01", False),
        ],
    ),
    *_cases(
        _op("after", value="2026-11-01"),
        [
            ("operand-date-equal", "2026-11-01T00:00:00Z", False),
            ("operand-date-later", "2026-11-01T00:00:00.000001Z", True),
        ],
    ),
    *_cases(_negate(AFTER), [("negated-overflow", "9999-12-31T23:59:59-23:59", True)]),
]

# --- presence ---

EXISTS = _cases(
    _op("exists"),
    [
        ("string", "x", True),
        ("empty-string", "", True),
        ("zero", 0, True),
        ("false", False, True),
        ("empty-list", [], True),
        ("empty-dict", {}, True),
        ("none", None, False),
        ("absent", ABSENT, False),
    ],
) + _cases(_negate(_op("exists")), [("negated-absent", ABSENT, True), ("negated-zero", 0, False)])


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    MEMBERSHIP + EQUALITY + NUMBERS + STRINGS + REGEX + SEMVER + DATES + EXISTS,
)
def test_operator(condition: dict[str, Any], value: Any, expected: bool) -> None:
    assert _matches(condition, value) is expected


# --- operands checked at parse time ---


def _parse_problems(condition: dict[str, Any]) -> list[str]:
    with pytest.raises(RulesParseError) as caught:
        Client.offline(_document(_rule({"attribute": "x", **condition})))
    return [str(problem) for problem in caught.value.problems]


VALUE = "flags.f.rules[0].conditions[0].value"


def test_pattern_of_256_characters_is_accepted() -> None:
    assert _matches(_op("matches", value="a" * 256), "a" * 256)


def test_pattern_of_257_characters_is_rejected() -> None:
    assert _parse_problems(_op("matches", value="a" * 257)) == [
        f"{VALUE}: must be at most 256 characters"
    ]


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("(", id="unbalanced"),
        pytest.param("[a-", id="unterminated-set"),
        pytest.param("a**", id="multiple-repeat"),
        pytest.param(r"(?<=a+)b", id="variable-lookbehind"),
        pytest.param("a{1001}", id="repeat-over-1000"),
        pytest.param(r"(a)\1", id="backreference"),
        pytest.param(r"a(?=b)", id="lookahead"),
    ],
)
def test_invalid_pattern_is_rejected(pattern: str) -> None:
    (problem,) = _parse_problems(_op("matches", value=pattern))
    assert problem.startswith(f"{VALUE}: invalid regular expression: ")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        pytest.param(_op("semver_eq", value="1.2"), "must be a semantic version", id="semver"),
        pytest.param(_op("before", value="soon"), "must be an ISO 8601 date-time", id="date"),
        pytest.param(
            _op("after", value="9999-12-31T23:59:59-23:59"),
            "must be an ISO 8601 date-time",
            id="date-overflow",
        ),
        pytest.param(_op("lt", value="5"), "must be a finite number", id="lt-string"),
        pytest.param(_op("eq", value=False), "must be a string or a number", id="eq-bool"),
        pytest.param(_op("between", values=[2, 1]), "lo must not be greater than hi", id="range"),
        pytest.param(_op("in", values=[None]), "must be a list of strings", id="in-null-member"),
        pytest.param(_op("contains", value=None), "is required by operator", id="required"),
    ],
)
def test_bad_operands_are_parse_errors(condition: dict[str, Any], message: str) -> None:
    (problem,) = _parse_problems(condition)
    assert problem.startswith("flags.f.rules[0].conditions[0].value")
    assert message in problem


# --- unknown operators ---

FUTURE = {"attribute": "x", "operator": "within_km", "value": {"lat": 1, "km": 5}}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_unknown_operator_never_matches_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    document = _document(
        _rule(FUTURE, rule_id="future", serve="other"),
        _rule(_negate(FUTURE), rule_id="future-negated", serve="other"),
        _rule({"attribute": "x", "operator": "exists"}, rule_id="later"),
    )
    with caplog.at_level(logging.WARNING, logger="rollwise"):
        client = Client.offline(document)
        for value in ("a", 5, None, ABSENT):
            result = _evaluate(client, _context(value))
            assert result.rule == ("later" if value not in (None, ABSENT) else None)
        assert _evaluate(client, {}).reason == Reason.DEFAULT
    messages = _warnings(caplog)
    assert len(messages) == 2  # one per rule that uses it, logged once
    assert all("within_km" in m for m in messages)
    assert any("'future'" in m for m in messages)
    assert any("'future-negated'" in m for m in messages)


def test_one_rule_with_an_unknown_operator_logs_exactly_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    document = _document(
        _rule(FUTURE, {"attribute": "x", "operator": "exists"}, rule_id="future", serve="other"),
        _rule(rule_id="everyone"),
    )
    with caplog.at_level(logging.WARNING, logger="rollwise"):
        client = Client.offline(document)
        for _ in range(3):
            result = _evaluate(client, {"x": "a"})
            assert (result.variant, result.rule) == (ON, "everyone")
    (message,) = _warnings(caplog)
    assert "within_km" in message
    assert "'future'" in message


def test_unknown_operator_inside_a_segment(caplog: pytest.LogCaptureFixture) -> None:
    segments = {"future": {"conditions": [FUTURE]}}
    document = _document(
        _rule({"segment": "future"}, rule_id="in-segment", serve="other"),
        _rule({"segment": "future", "negate": True}, rule_id="not-in-segment", serve="other"),
        _rule(rule_id="everyone"),
        segments=segments,
    )
    with caplog.at_level(logging.WARNING, logger="rollwise"):
        client = Client.offline(document)
        assert _evaluate(client, {"x": "a"}).rule == "everyone"
        assert _evaluate(client, {}).rule == "everyone"
    assert len(_warnings(caplog)) == 2


# --- segment references ---

SEGMENTS = {
    "eu": {"conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR"]}]},
    "eu-small": {
        "conditions": [
            {"attribute": "country", "operator": "in", "values": ["DE", "FR"]},
            {"attribute": "amount", "operator": "lt", "value": 500},
        ]
    },
    "everyone": {"conditions": []},
}


@pytest.mark.parametrize(
    ("reference", "context", "expected"),
    [
        pytest.param({"segment": "eu"}, {"country": "DE"}, True, id="in-segment"),
        pytest.param({"segment": "eu"}, {"country": "US"}, False, id="not-in-segment"),
        pytest.param({"segment": "eu"}, {}, False, id="missing-attribute"),
        pytest.param({"segment": "eu", "negate": True}, {"country": "DE"}, False, id="negated-in"),
        pytest.param({"segment": "eu", "negate": True}, {"country": "US"}, True, id="negated-out"),
        pytest.param({"segment": "eu", "negate": True}, {}, True, id="negated-missing"),
        pytest.param({"segment": "eu-small"}, {"country": "DE", "amount": 100}, True, id="all"),
        pytest.param({"segment": "eu-small"}, {"country": "DE", "amount": 600}, False, id="one"),
        pytest.param(
            {"segment": "eu-small", "negate": True},
            {"country": "DE", "amount": 100},
            False,
            id="negated-all-hold",
        ),
        pytest.param(
            {"segment": "eu-small", "negate": True},
            {"country": "DE", "amount": 600},
            True,
            id="negated-one-fails",
        ),
        pytest.param(
            {"segment": "eu-small", "negate": True},
            {"country": "US", "amount": 600},
            True,
            id="negated-none-hold",
        ),
        pytest.param({"segment": "everyone"}, {}, True, id="empty-segment"),
        pytest.param({"segment": "everyone", "negate": True}, {"x": 1}, False, id="negated-empty"),
    ],
)
def test_segment_reference(
    reference: dict[str, Any], context: dict[str, Any], expected: bool
) -> None:
    client = Client.offline(_document(_rule(reference), segments=SEGMENTS))
    assert (_evaluate(client, context).variant == ON) is expected


def test_segment_reference_and_conditions_all_hold() -> None:
    rule = _rule({"segment": "eu"}, {"attribute": "amount", "operator": "gte", "value": 100})
    client = Client.offline(_document(rule, segments=SEGMENTS))
    assert _evaluate(client, {"country": "FR", "amount": 100}).variant == ON
    assert _evaluate(client, {"country": "FR", "amount": 99}).variant == "off"
    assert _evaluate(client, {"country": "US", "amount": 100}).variant == "off"


def test_a_segment_cannot_reference_a_segment() -> None:
    segments = {"a": {"conditions": []}, "b": {"conditions": [{"segment": "a"}]}}
    with pytest.raises(RulesParseError) as caught:
        Client.offline(_document(_rule({"segment": "b"}), segments=segments))
    assert [str(p) for p in caught.value.problems] == [
        "segments.b.conditions[0].segment: segment references are not allowed here"
    ]


# --- schedules ---

START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def _scheduled_client(schedule: dict[str, Any], now: list[float], enabled: bool = True) -> Client:
    document = _document(_rule())
    document["flags"][FLAG]["schedule"] = schedule
    document["flags"][FLAG]["enabled"] = enabled
    return Client.offline(document, clock=lambda: now[0])


BOTH = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("schedule", "moment", "active"),
    [
        pytest.param(BOTH, START - 1, False, id="before-start"),
        pytest.param(BOTH, START - 0.001, False, id="just-before-start"),
        pytest.param(BOTH, START, True, id="at-start"),
        pytest.param(BOTH, (START + END) / 2, True, id="inside"),
        pytest.param(BOTH, END - 0.001, True, id="just-before-end"),
        pytest.param(BOTH, END, False, id="at-end-excluded"),
        pytest.param(BOTH, END + 86400, False, id="after-end"),
        pytest.param({"start": None, "end": "2026-12-01"}, 0.0, True, id="open-start"),
        pytest.param({"start": None, "end": "2026-12-01"}, END, False, id="open-start-at-end"),
        pytest.param({"start": "2026-11-01", "end": None}, START - 1, False, id="open-end-before"),
        pytest.param({"start": "2026-11-01", "end": None}, 4e9, True, id="open-end-later"),
        pytest.param({"start": None, "end": None}, 0.0, True, id="both-open"),
        pytest.param(
            {"start": "2026-11-01T01:00:00+01:00", "end": None}, START, True, id="start-offset"
        ),
    ],
)
def test_schedule_is_half_open(schedule: dict[str, Any], moment: float, active: bool) -> None:
    client = _scheduled_client(schedule, [moment])
    result = _evaluate(client, {})
    if active:
        assert (result.variant, result.reason, result.rule) == (ON, Reason.TARGETING_MATCH, "r")
    else:
        assert (result.variant, result.reason, result.rule) == ("off", Reason.DISABLED, None)


def test_schedule_follows_the_clock() -> None:
    now = [START - 1]
    client = _scheduled_client(BOTH, now)
    seen = []
    for moment in (START - 1, START, END - 1, END, END + 1):
        now[0] = moment
        seen.append(_evaluate(client, {}).reason)
    assert seen == [
        Reason.DISABLED,
        Reason.TARGETING_MATCH,
        Reason.TARGETING_MATCH,
        Reason.DISABLED,
        Reason.DISABLED,
    ]


def test_a_disabled_flag_ignores_its_schedule() -> None:
    client = _scheduled_client(BOTH, [START], enabled=False)
    result = _evaluate(client, {})
    assert (result.variant, result.reason, result.rule) == ("off", Reason.DISABLED, None)


# --- the fast path and the reference agree on awkward contexts for every operator ---

AWKWARD: list[Callable[[], Any]] = [
    lambda: 10**5000,  # str() of it raises ValueError: it has no string view
    lambda: "9" * 5000,
    lambda: "\ud800",
    lambda: b"a",
    lambda: (1, 2),
    lambda: frozenset({"a"}),
    lambda: 1 + 2j,
]


@pytest.mark.parametrize("operator", sorted(SAMPLES))
@pytest.mark.parametrize(
    "make",
    AWKWARD,
    ids=["huge-int", "huge-numeric", "surrogate", "bytes", "tuple", "frozenset", "complex"],
)
def test_awkward_values_never_raise(operator: str, make: Callable[[], Any]) -> None:
    condition, _ = SAMPLES[operator]
    value = make()
    for negate in (False, True):
        client = Client.offline(_document(_rule({"attribute": "x", **condition, "negate": negate})))
        result = _evaluate(client, {"x": value})
        assert result.reason in (Reason.TARGETING_MATCH, Reason.DEFAULT)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (r"^[[:alpha:]]+$", "abc", True),  # POSIX classes, as the Unleash specification expects
        (r"^[[:alpha:]]+$", "ab1", False),
        (r"(?i)^beta", "BETA-tester", True),  # inline flags
        (r"^a$", "a\n", False),  # RE2's $ is the end of the text (Python's also before a \n)
        (r"^(a+)+$", "a" * 4096, True),
        (r"^(a+)+$", "a" * 4000 + "b", False),  # catastrophic for a backtracking engine
        (r"é", "café", True),  # UTF-8 text
    ],
)
def test_patterns_are_re2_in_linear_time(pattern: str, value: str, expected: bool) -> None:
    """``matches`` uses RE2 (issue 12): ``^(a+)+$`` on 4,000 characters took hours with Python's
    ``re``; the speed itself is measured in benchmarks/bench_matches.py."""
    assert _matches(_op("matches", value=pattern), value) is expected


def test_a_lone_surrogate_never_raises() -> None:
    assert _matches(_op("matches", value=r"^.$"), "\ud800") in (True, False)
    assert _matches(_op("matches", value=r"x"), "\ud800x") is True

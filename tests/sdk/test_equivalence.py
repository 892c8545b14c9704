"""The generated fast path (codegen.py) agrees with the reference evaluator on fuzzed input.

The reference evaluator (one closure per condition, compiler.py) is the specified behaviour.
The generated functions must return the very same pre-built Assignment for every document and
context, or raise (then the client falls back to the reference). Hypothesis writes the
documents with every operator, negation, case folding, segments, splits and schedules, and
contexts with values of every awkward type.
"""

from __future__ import annotations

import math
from collections import UserDict
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rollwise
from rollwise._parse import condition_cost
from rollwise.limits import MAX_CONDITION_COST
from rollwise.operators import OPERATORS

ATTRIBUTES = ["a", "b", "user_id"]
STRINGS = [
    "x",
    "y",
    "DE",
    "de",
    "Straße",
    "STRASSE",
    "1",
    "2",
    "2.5",
    " 3 ",
    "1e3",
    "nan",
    "inf",
    "",
]
VERSIONS = [
    "1.0.0",
    "v1.2.3",
    "1.2.3-alpha",
    "1.2.3-alpha.1",
    "1.2.3+build",
    "2.0.0",
    "1.2",
    "01.2.3",
]
DATES = ["2026-11-01", "2026-11-01T12:00:00Z", "2026-11-01T12:00:00+02:00", "2027-01-01T00:00"]
PATTERNS = ["^x", "y$", "[0-9]+", "^d", "S", "."]


class Weird:
    """An object of no known type, with a hostile equality."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class Tagged(str):
    """A str subclass."""


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 2.5, -1.5, 1000.0, math.nan, math.inf, -math.inf]),
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from(STRINGS + VERSIONS + DATES),
    st.builds(Tagged, st.sampled_from(STRINGS)),
    st.just(date(2026, 11, 1)),
    st.just(datetime(2026, 11, 1, 12, tzinfo=UTC)),
    st.just(datetime(2026, 11, 1, 12)),
    st.builds(Weird),
)
common = st.one_of(st.integers(-3, 3), st.sampled_from(STRINGS), st.sampled_from([-1.5, 2.5, 2.0]))
values = st.one_of(
    common,
    common,
    common,
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=2), scalars, max_size=1),
)
contexts = st.dictionaries(st.sampled_from(ATTRIBUTES), values, min_size=1, max_size=3)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from([*OPERATORS, "some_future_op"]))
    out: dict[str, Any] = {"attribute": draw(st.sampled_from(ATTRIBUTES)), "operator": operator}
    shape = OPERATORS[operator].shape if operator in OPERATORS else "value"
    if operator == "matches":
        out["value"] = draw(st.sampled_from(PATTERNS))
    elif operator.startswith("semver"):
        out["value"] = draw(st.sampled_from(VERSIONS[:5]))
    elif operator in ("before", "after"):
        out["value"] = draw(st.sampled_from(DATES))
    elif operator in ("lt", "lte", "gt", "gte"):
        out["value"] = draw(st.one_of(st.integers(-3, 3), st.floats(-5, 5)))
    elif shape == "range":
        lo, hi = sorted(
            draw(st.lists(st.one_of(st.integers(-3, 3), st.floats(-5, 5)), min_size=2, max_size=2))
        )
        out["values"] = [lo, hi]
    elif shape == "values":
        out["values"] = draw(
            st.lists(st.one_of(st.sampled_from(STRINGS), st.integers(-3, 3)), max_size=4)
        )
    elif shape == "value":
        out["value"] = draw(
            st.one_of(st.sampled_from(STRINGS), st.integers(-3, 3), st.floats(-5, 5))
        )
    if operator in ("starts_with", "ends_with", "contains"):
        out["value"] = draw(st.sampled_from(STRINGS[:6]))
    if draw(st.booleans()):
        out["negate"] = True
    if draw(st.booleans()):
        out["case_insensitive"] = True
    return out


TYPED_VALUES: dict[str, tuple[Any, Any, Any]] = {
    # the values of v1, v2 and v3 per flag type (None: the string flag's default, the key)
    "untyped": (None, None, None),
    "string": ("model-a", None, "model-c"),
    "boolean": (False, True, True),
    "integer": (-1, 2**53 - 1, 3),
    "float": (0.5, 1, 2.25),
    "json": ({"v": 1}, [2, {"x": None}], {}),
}
ACCESSORS = {"untyped": "string_value", "string": "string_value", "boolean": "bool_value",
             "integer": "int_value", "float": "float_value", "json": "json_value"}  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    segments = {
        name: {"conditions": draw(st.lists(conditions(), max_size=2))} for name in ("s1", "s2")
    }
    rules = []
    for i in range(draw(st.integers(0, 4))):
        conds: list[dict[str, Any]] = draw(st.lists(conditions(), max_size=3))
        if draw(st.booleans()):
            conds.append(
                {"segment": draw(st.sampled_from(["s1", "s2"])), "negate": draw(st.booleans())}
            )
        if draw(st.booleans()):
            serve: dict[str, Any] = {"variant": draw(st.sampled_from(["v1", "v2", "v3"]))}
        else:
            weights = draw(
                st.lists(st.integers(0, 5), min_size=1, max_size=3).filter(lambda w: sum(w) > 0)
            )
            serve = {
                "split": [{"variant": f"v{j + 1}", "weight": w} for j, w in enumerate(weights)],
                "bucket_by": draw(st.sampled_from(ATTRIBUTES)),
            }
        rules.append({"id": f"r{i}", "conditions": conds, "serve": serve})
    costs = {name: condition_cost(body["conditions"]) for name, body in segments.items()}
    # a flag over the condition-cost limit is refused (tests/sdk/test_limits.py covers that)
    assume(sum(condition_cost(r["conditions"], costs) for r in rules) <= MAX_CONDITION_COST)
    flag: dict[str, Any] = {
        "version": 1,
        "enabled": draw(st.booleans()) or draw(st.booleans()),
        "variants": {"v1": {}, "v2": {"payload": {"m": 2}}, "v3": {}},
        "off_variant": "v1",
        "default_variant": "v3",
        "rules": rules,
    }
    if draw(st.booleans()):
        flag["schedule"] = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
    kind = draw(st.sampled_from(sorted(TYPED_VALUES)))
    if kind != "untyped":
        if kind != "string":
            flag["type"] = kind
        for name, value in zip(("v1", "v2", "v3"), TYPED_VALUES[kind], strict=True):
            if value is not None:
                flag["variants"][name] = {**flag["variants"][name], "value": value}
    return {
        "schema_version": 1 if kind == "untyped" else 2,
        "environment": "test",
        "revision": 1,
        "segments": segments,
        "flags": {"f": flag},
    }


NOW = st.sampled_from([1_700_000_000.0, 1_780_000_000.0, 1_800_000_000.0])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.lists(contexts, min_size=1, max_size=8), NOW)
def test_fast_path_agrees_with_reference(
    document: dict[str, Any], ctxs: list[dict[str, Any]], now: float
) -> None:
    client = rollwise.Client.offline(document, clock=lambda: now)
    compiled = client._store.compiled
    assert compiled is not None
    flag = compiled.flags["f"]
    for ctx in ctxs:
        expected = flag.evaluate(ctx)
        try:
            fast = flag.fast(ctx)
        except TypeError:  # an unhashable value in an `in` test: the client falls back
            fast = expected
        assert fast is expected, (ctx, fast, expected)
        assert client.evaluate("f", ctx) is expected
        assert client.variant("f", ctx) == expected.variant
        assert client.evaluate("f", UserDict(ctx)) is expected
        # the typed accessor of the flag's type: the served variant's value, on both paths
        kind = flag.flag.type.value
        accessor = getattr(client, ACCESSORS["untyped" if kind == "string" else kind])
        assert expected.value == flag.flag.variants[str(expected.variant)].value
        for value in (accessor("f", ctx, object()), accessor("f", UserDict(ctx), object())):
            assert value == expected.value
            assert type(value) is type(expected.value)  # True is no 1, nor 1 a 1.0


@settings(max_examples=200, deadline=None)
@given(documents(), st.lists(contexts, min_size=1, max_size=5))
def test_exposures_are_the_same_on_both_paths(
    document: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    fast_log: list[rollwise.Exposure] = []
    reference_log: list[rollwise.Exposure] = []
    fast_client = rollwise.Client.offline(document, on_exposure=fast_log.append)
    reference_client = rollwise.Client.offline(document, on_exposure=reference_log.append)
    compiled = reference_client._store.compiled
    assert compiled is not None
    for ctx in ctxs:
        fast_client.evaluate("f", ctx)
        compiled.flags["f"].evaluate(ctx)

    def key(e: rollwise.Exposure) -> tuple[Any, ...]:
        return (e.flag, e.variant, e.rule, e.unit_type, e.unit, dict(e.attrs))

    assert [key(e) for e in fast_log] == [key(e) for e in reference_log]


@settings(max_examples=1500, deadline=None)
@given(conditions(), st.lists(contexts, min_size=1, max_size=10))
def test_single_condition_agrees_with_reference(
    condition: dict[str, Any], ctxs: list[dict[str, Any]]
) -> None:
    rule = {"id": "r", "conditions": [condition], "serve": {"variant": "on"}}
    flag = {
        "version": 1,
        "variants": {"on": {}, "off": {}},
        "off_variant": "off",
        "default_variant": "off",
    }
    document = {
        "schema_version": 1,
        "environment": "t",
        "revision": 1,
        "flags": {"f": {**flag, "rules": [rule]}},
    }
    compiled = rollwise.Client.offline(document)._store.compiled
    assert compiled is not None
    for ctx in ctxs:
        expected = compiled.flags["f"].evaluate(ctx)
        try:
            fast = compiled.flags["f"].fast(ctx)
        except TypeError:
            continue
        assert fast is expected, (condition, ctx)

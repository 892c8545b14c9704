"""Fuzzing evaluation: hostile contexts never raise into the application, in bounded time.

docs/sdk.md: ``variant()`` and ``evaluate()`` never raise, whatever they are given; a fault
serves the flag's ``off_variant`` with ``reason=ERROR``. The OpenFeature provider and
``track()`` promise the same. The documents are valid (every operator, segments, splits, two
``matches`` patterns that are catastrophic for a backtracking engine); the contexts are not:
nested objects, bytes, NaN and infinities, integers of 400 and 5,000 digits, lone surrogates,
4,096-character strings against ``matches``, and objects whose ``__eq__``, ``__hash__`` or
``__str__`` raise.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections import UserDict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext

import rollwise
from rollwise.openfeature import RollwiseProvider
from tests.fuzz.documents import ATTRIBUTES, KITCHEN_SINK, matches_document
from tests.fuzz.hostile import HOSTILE, bounded, fuzz_settings, json_values, texts

CLIENT = rollwise.Client.offline(KITCHEN_SINK)
FLAGS = {key: set(flag.variants) for key, flag in CLIENT.rules.flags.items()}  # type: ignore[union-attr]
PROVIDER = RollwiseProvider(CLIENT)


class Raising:
    """Every comparison, hash, conversion, truth test and ``repr`` raises."""

    def _fail(self, *args: Any) -> Any:
        raise RuntimeError("hostile object")

    __eq__ = __ne__ = __lt__ = __gt__ = __le__ = __ge__ = _fail  # type: ignore[assignment]
    __hash__ = __bool__ = __float__ = __int__ = __index__ = __len__ = __iter__ = _fail  # type: ignore[assignment]
    __repr__ = __str__ = __format__ = _fail  # type: ignore[assignment]


class RaisingStr(str):
    """Looks like a str to ``isinstance``; hashing, comparing and ``str()`` raise."""

    def __hash__(self) -> int:
        raise RuntimeError("hostile str")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("hostile str")

    def __str__(self) -> str:
        raise RuntimeError("hostile str")


class RaisingInt(int):
    def __str__(self) -> str:
        raise RuntimeError("hostile int")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("hostile int")


class RaisingMapping(Mapping[str, Any]):
    """A context whose every read raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("hostile context")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("hostile context")

    def __len__(self) -> int:
        raise RuntimeError("hostile context")


_rng = random.Random(12)  # noqa: S311 - a fixed seed, no secret
ODD_VALUES: list[Any] = [
    Decimal("NaN"),
    Decimal("1e400"),
    complex(1, 1),
    memoryview(b"x"),
    dt.datetime.max,
    dt.datetime.min,
    dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=23, minutes=59))),
    dt.date(1, 1, 1),
    "a" * 4096,
    "a" * 4095 + "!",
    "x" * 4096 + "y",
    "é" * 4096,
    "a" * 4097,
    "".join(_rng.choice("ax\u00e9\ud800") for _ in range(4096)),
    "9999-12-31T23:59:59-23:59",
    "1.2.3-" + "a." * 2000 + "a",
    "9" * 5000 + ".0.0",
    "1e400",
    "-0",
]
"""Values no JSON decoder returns, and strings at and over the ``matches`` input limit."""


def _made(*factories: Any) -> st.SearchStrategy[Any]:
    """Objects built per example (Hypothesis hashes what it samples; these refuse)."""
    return st.sampled_from(factories).map(lambda make: make())


values = st.one_of(
    json_values,
    st.sampled_from(HOSTILE).map(lambda recipe: recipe.make()),
    st.sampled_from(ODD_VALUES),
    _made(Raising, lambda: RaisingStr("DE"), lambda: RaisingInt(3)),
    st.builds(lambda n: 10**n, st.sampled_from([400, 4300, 5000])),
)
keys = st.one_of(st.sampled_from(ATTRIBUTES), texts(8))
contexts = st.one_of(
    st.dictionaries(keys, values, max_size=6),
    st.dictionaries(keys, values, max_size=6).map(UserDict),
    st.dictionaries(keys, values, max_size=6).map(MappingProxyType),
    st.sampled_from([None, [], "user_id", b"x", 7]),
    _made(RaisingMapping, Raising),
)
flag_keys = st.one_of(
    st.sampled_from(sorted(FLAGS)),
    texts(8),
    _made(lambda: None, lambda: 7, lambda: b"sink", lambda: ("sink",), lambda: ["sink"]),
)  # keys that cannot be printed: test_a_hostile_flag_key_does_not_raise


def _short(value: Any) -> str:
    try:
        return ascii(value)[:60]
    except Exception:  # noqa: BLE001 - a hostile object's repr
        return type(value).__name__


@fuzz_settings(max_examples=300)
@given(flag_keys, contexts)
def test_variant_and_evaluate_never_raise(flag_key: Any, context: Any) -> None:
    what = f"variant({_short(flag_key)}, {_short(context)})"
    with bounded(what):
        variant = CLIENT.variant(flag_key, context, default="fallback")
    with bounded(what.replace("variant", "evaluate", 1)):
        assignment = CLIENT.evaluate(flag_key, context, default="fallback")
    assert isinstance(assignment, rollwise.Assignment)
    expected = FLAGS.get(flag_key) if isinstance(flag_key, str) else None
    if expected is None:  # not a flag: the caller's default
        assert variant == assignment.variant == "fallback"
    else:
        assert variant in expected
        assert assignment.variant == variant


@fuzz_settings(max_examples=150)
@given(st.dictionaries(keys, values, max_size=6), st.one_of(st.none(), texts(8), values))
def test_the_openfeature_provider_never_raises(attributes: dict[str, Any], unit: Any) -> None:
    context = EvaluationContext(unit, attributes)
    for key in FLAGS:
        with bounded(f"resolve_string_details({key!r})"):
            details = PROVIDER.resolve_string_details(key, "fallback", context)
        assert details.value in FLAGS[key] | {"fallback"}
        with bounded(f"resolve_object_details({key!r})"):
            PROVIDER.resolve_object_details(key, {"fallback": True}, context)


@fuzz_settings(max_examples=100)
@given(
    st.one_of(texts(8), values), st.one_of(texts(8), values), values, st.one_of(st.none(), contexts)
)
def test_track_never_raises(metric: Any, unit: Any, value: Any, attrs: Any) -> None:
    with bounded("track"):
        CLIENT.track(metric, unit, value, attrs=attrs)


# -- bugs found by this fuzzing, kept as examples (fixed) --


@pytest.mark.parametrize("make", [lambda: 10**5000, Raising, lambda: RaisingStr("sink")],
                         ids=["5000-digit-int", "object", "str-subclass"])  # fmt: skip
@pytest.mark.parametrize("call", ["variant", "evaluate"])
def test_a_hostile_flag_key_does_not_raise(make: Any, call: str) -> None:
    result = getattr(CLIENT, call)(make(), {}, default="fallback")
    assert getattr(result, "variant", result) == "fallback"


SLOW_PATTERNS = [
    (".{1000}.{1000}.{1000}", "ab"), ("(?s).{1000}z", "éàü漢字🚀ab"), ("(a?){1000}a{1000}", "a"),
    ("(" * 126 + "." + ")" * 126 + "*", "x"), ("(x*)" * 60, "x"), ("((a*)*)*" * 20, "ab"),
    ("(?i)" + "(" * 120 + "." + ")" * 120 + "*", "xé"),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "alphabet"), SLOW_PATTERNS)
def test_every_accepted_pattern_is_fast_on_any_4096_character_attribute(
    pattern: str, alphabet: str
) -> None:
    try:
        client = rollwise.Client.offline(matches_document(pattern))
    except rollwise.RulesParseError:
        return  # refusing the pattern is a fix too
    rng = random.Random(4096)  # noqa: S311 - a fixed seed, no secret
    times = []
    for _ in range(5):  # a fresh attribute each call, as a hostile caller would send
        attribute = "".join(rng.choice(alphabet) for _ in range(4096))
        start = time.perf_counter()
        client.variant("f", {"a": attribute})
        times.append(time.perf_counter() - start)
    # 20 ms: twenty times what issue 12 asks, so that a loaded machine cannot fail a fix
    assert statistics.median(times) < 0.020, f"median {statistics.median(times) * 1e3:.1f} ms"

"""Condition operators: how each one reads its operand and how it tests a context.

Each operator has a *normalizer*, run when a document is parsed (a bad operand is a problem
with a JSON path), and a *factory*, run when a document is compiled, that returns a predicate
over the whole evaluation context. Predicates never raise on any attribute value and a missing
attribute (absent or ``None``) makes every positive operator false. ``not_in`` and ``neq`` are the
exact negations of ``in`` and ``eq``. The semantics are specified in ``docs/spec/rules.md``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs
import re2

from rollwise.context import as_datetime, as_number, as_string, parse_datetime, parse_semver
from rollwise.rules import Condition

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_PATTERN_PROGRAM_SIZE",
    "MAX_REGEX_INPUT_LENGTH",
    "OPERATORS",
    "OperatorSpec",
    "Predicate",
    "UnknownOperatorError",
    "condition_predicate",
]

Predicate = Callable[[Mapping[str, Any]], bool]
Shape = Literal["values", "range", "value", "none"]

MAX_PATTERN_LENGTH = 256
MAX_REGEX_INPUT_LENGTH = 4096
MAX_PATTERN_PROGRAM_SIZE = 400
"""The most instructions a pattern's compiled RE2 program may have. RE2 runs in time linear in
the input, times a factor that grows with the program: ``.{1000}.{1000}.{1000}`` (24,004
instructions) takes 100 ms on 4,096 characters, anything within this bound well under 1 ms."""


@attrs.frozen
class OperatorSpec:
    """An operator: the shape of its operand, its normalizer and its predicate factory."""

    name: str
    shape: Shape
    normalize: Callable[[Any], Any]
    factory: Callable[[str, Any, bool], Predicate]
    negated: bool = False
    folds_case: bool = False
    """Whether ``case_insensitive`` changes the test; the other operators ignore it."""

    def predicate(self, attribute: str, operand: Any, case_insensitive: bool) -> Predicate:
        """The compiled test of this operator for one condition."""
        positive = self.factory(attribute, operand, case_insensitive)
        if not self.negated:
            return positive
        return lambda ctx: not positive(ctx)


# --- operand normalizers: return the operand in compiled form or raise ValueError(message) ---


def _string_like(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string or an integer")
    return str(value)


def _string_list(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise ValueError("must be a list of strings or integers")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a list of strings or integers")
        out.append(str(value))
    return tuple(out)


def _scalar(value: Any) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string or a number")
    if isinstance(value, float) and as_number(value) is None:
        raise ValueError("must be a finite number")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or as_number(value) is None:
        raise ValueError("must be a finite number")
    return value


def _range(values: Any) -> tuple[int | float, int | float]:
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError("must be a list [lo, hi] of two finite numbers")
    lo, hi = (_number(v) for v in values)
    if lo > hi:
        raise ValueError("lo must not be greater than hi")
    return (lo, hi)


def _re2(pattern: str, case_insensitive: bool = False) -> Any:
    """``pattern`` compiled by RE2 (linear time in the input: no backtracking)."""
    options = re2.Options()
    options.log_errors = False  # a bad pattern is a parse problem, not a line on stderr
    options.case_sensitive = not case_insensitive
    options.never_capture = True  # only "does it match" is asked: groups would force RE2's
    # slower engines (a pattern of 126 nested groups took 50 ms on 4,096 characters, 0.02 ms
    # without captures)
    return re2.compile(pattern, options=options)


def _pattern(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a regular expression string")
    if len(value) > MAX_PATTERN_LENGTH:
        raise ValueError(f"must be at most {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = _re2(value)
    except (re2.error, TypeError, ValueError, OverflowError) as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid regular expression: {reason} (RE2 syntax)") from None
    size = max(compiled.programsize, _re2(value, case_insensitive=True).programsize)
    if size > MAX_PATTERN_PROGRAM_SIZE:
        raise ValueError(
            f"is too complex: its RE2 program has {size} instructions, more than "
            f"{MAX_PATTERN_PROGRAM_SIZE} (large counted repetitions such as .{{1000}} make "
            "every evaluation slow)"
        )
    return compiled


def _semver(value: Any) -> tuple[Any, ...]:
    key = parse_semver(value)
    if key is None:
        raise ValueError("must be a semantic version MAJOR.MINOR.PATCH")
    return key


def _datetime(value: Any) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError("must be an ISO 8601 date-time string")
    return parsed


def _nothing(value: Any) -> None:
    return None


# --- predicate factories ---


def _in(attribute: str, values: tuple[str, ...], case_insensitive: bool) -> Predicate:
    if case_insensitive:
        folded = frozenset(v.casefold() for v in values)

        def in_folded(ctx: Mapping[str, Any]) -> bool:
            text = as_string(ctx.get(attribute))
            return text is not None and text.casefold() in folded

        return in_folded
    members = frozenset(values)

    def in_(ctx: Mapping[str, Any]) -> bool:
        text = as_string(ctx.get(attribute))
        return text is not None and text in members

    return in_


def _eq(attribute: str, operand: str | int | float, case_insensitive: bool) -> Predicate:
    number = as_number(operand)
    if number is not None:

        def eq_number(ctx: Mapping[str, Any]) -> bool:
            value = as_number(ctx.get(attribute))
            return value is not None and value == number

        return eq_number
    return _string_test(attribute, str(operand), case_insensitive, str.__eq__)


def _string_test(
    attribute: str, operand: str, case_insensitive: bool, test: Callable[[str, str], bool]
) -> Predicate:
    if case_insensitive:
        operand = operand.casefold()

        def test_folded(ctx: Mapping[str, Any]) -> bool:
            text = as_string(ctx.get(attribute))
            return text is not None and test(text.casefold(), operand)

        return test_folded

    def test_exact(ctx: Mapping[str, Any]) -> bool:
        text = as_string(ctx.get(attribute))
        return text is not None and test(text, operand)

    return test_exact


def _string_factory(test: Callable[[str, str], bool]) -> Callable[[str, Any, bool], Predicate]:
    def factory(attribute: str, operand: str, case_insensitive: bool) -> Predicate:
        return _string_test(attribute, operand, case_insensitive, test)

    return factory


def _matches(attribute: str, pattern: Any, case_insensitive: bool) -> Predicate:
    """RE2's unanchored search on the UTF-8 bytes of the string view. The compiled object's
    own ``Match`` is called directly (about 0.5 us on a short input; the public ``search``
    maps offsets back to characters and costs 3-10 us); the public call is the fallback."""
    if case_insensitive:
        pattern = _re2(pattern.pattern, case_insensitive=True)
    raw = getattr(pattern, "_regexp", None)
    match = getattr(raw, "Match", None)
    anchor = getattr(getattr(getattr(re2, "_re2", None), "RE2", None), "Anchor", None)
    if match is None or anchor is None:  # another google-re2 layout: the public API
        search = pattern.search

        def matches_public(ctx: Mapping[str, Any]) -> bool:
            text = as_string(ctx.get(attribute))
            if text is None or len(text) > MAX_REGEX_INPUT_LENGTH:
                return False
            try:
                return search(text) is not None
            except (UnicodeError, re2.error):  # a lone surrogate, say
                return False

        return matches_public
    unanchored = anchor.UNANCHORED

    def matches(ctx: Mapping[str, Any]) -> bool:
        text = as_string(ctx.get(attribute))
        if text is None or len(text) > MAX_REGEX_INPUT_LENGTH:
            return False
        data = text.encode("utf-8", "surrogatepass")
        return bool(match(unanchored, data, 0, len(data))[0][0] >= 0)

    return matches


def _ordering(test: Callable[[Any, Any], bool]) -> Callable[[str, Any, bool], Predicate]:
    def factory(attribute: str, bound: float, case_insensitive: bool) -> Predicate:
        def compare(ctx: Mapping[str, Any]) -> bool:
            value = as_number(ctx.get(attribute))
            return value is not None and test(value, bound)

        return compare

    return factory


def _between(attribute: str, bounds: tuple[float, float], case_insensitive: bool) -> Predicate:
    lo, hi = bounds

    def between(ctx: Mapping[str, Any]) -> bool:
        value = as_number(ctx.get(attribute))
        return value is not None and lo <= value < hi

    return between


def _semver_factory(test: Callable[[Any, Any], bool]) -> Callable[[str, Any, bool], Predicate]:
    def factory(attribute: str, operand: Any, case_insensitive: bool) -> Predicate:
        def semver(ctx: Mapping[str, Any]) -> bool:
            key = parse_semver(ctx.get(attribute))
            return key is not None and test(key, operand)

        return semver

    return factory


def _date_factory(test: Callable[[Any, Any], bool]) -> Callable[[str, Any, bool], Predicate]:
    def factory(attribute: str, operand: datetime, case_insensitive: bool) -> Predicate:
        def date_test(ctx: Mapping[str, Any]) -> bool:
            moment = as_datetime(ctx.get(attribute))
            return moment is not None and test(moment, operand)

        return date_test

    return factory


def _exists(attribute: str, operand: None, case_insensitive: bool) -> Predicate:
    return lambda ctx: ctx.get(attribute) is not None


def _spec(
    name: str,
    shape: Shape,
    normalize: Callable[[Any], Any],
    factory: Callable[[str, Any, bool], Predicate],
    negated: bool = False,
    folds_case: bool = False,
) -> tuple[str, OperatorSpec]:
    return name, OperatorSpec(name, shape, normalize, factory, negated, folds_case)


OPERATORS: Mapping[str, OperatorSpec] = dict(
    [
        _spec("in", "values", _string_list, _in, folds_case=True),
        _spec("not_in", "values", _string_list, _in, negated=True, folds_case=True),
        _spec("eq", "value", _scalar, _eq, folds_case=True),
        _spec("neq", "value", _scalar, _eq, negated=True, folds_case=True),
        _spec("lt", "value", _number, _ordering(operator.lt)),
        _spec("lte", "value", _number, _ordering(operator.le)),
        _spec("gt", "value", _number, _ordering(operator.gt)),
        _spec("gte", "value", _number, _ordering(operator.ge)),
        _spec("between", "range", _range, _between),
        _spec(
            "starts_with", "value", _string_like, _string_factory(str.startswith), folds_case=True
        ),
        _spec("ends_with", "value", _string_like, _string_factory(str.endswith), folds_case=True),
        _spec(
            "contains", "value", _string_like, _string_factory(str.__contains__), folds_case=True
        ),
        _spec("matches", "value", _pattern, _matches, folds_case=True),
        _spec("semver_eq", "value", _semver, _semver_factory(lambda a, b: a == b)),
        _spec("semver_lt", "value", _semver, _semver_factory(lambda a, b: a < b)),
        _spec("semver_lte", "value", _semver, _semver_factory(lambda a, b: a <= b)),
        _spec("semver_gt", "value", _semver, _semver_factory(lambda a, b: a > b)),
        _spec("semver_gte", "value", _semver, _semver_factory(lambda a, b: a >= b)),
        _spec("before", "value", _datetime, _date_factory(lambda a, b: a < b)),
        _spec("after", "value", _datetime, _date_factory(lambda a, b: a > b)),
        _spec("exists", "none", _nothing, _exists),
    ]
)
"""Every operator this SDK knows, by name."""


class UnknownOperatorError(Exception):
    """A condition uses an operator this SDK does not know."""

    def __init__(self, operator: str) -> None:
        self.operator = operator


def condition_predicate(condition: Condition, *, ignore_negate: bool = True) -> Predicate:
    """The operator's test for one condition; with ``ignore_negate=False`` also its ``negate``.

    Raises ``UnknownOperatorError`` for an operator this SDK does not know.
    """
    spec = OPERATORS.get(condition.operator)
    if spec is None:
        raise UnknownOperatorError(condition.operator)
    raw = condition.values if spec.shape in ("values", "range") else condition.value
    operand = spec.normalize(list(raw) if isinstance(raw, tuple) else raw)
    test = spec.predicate(condition.attribute, operand, condition.case_insensitive)
    if condition.negate and not ignore_negate:
        return lambda ctx: not test(ctx)
    return test

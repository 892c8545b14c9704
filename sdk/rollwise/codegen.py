"""Generates one flat Python function per flag: the fast path of evaluation.

``compiler.py`` builds the *reference* evaluator of a flag out of small closures, one per
condition. Calling a closure costs tens of nanoseconds on CPython, and a rule of two conditions
costs several, so this module also writes the same logic as a single function with the hot
operators (``in``, the numeric comparisons and ``between``) inlined, and compiles it with
``exec``. The source never contains a value from the document: every attribute name, operand and
result is bound by a generated identifier in the function's namespace, so a document cannot
inject code.

The fast function may raise on inputs the reference evaluator handles (an unhashable attribute
value in an ``in`` test, say); the client then evaluates the reference closure, whose result is
the specified one. Tests check that both agree on fuzzed documents and contexts.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any

import mmh3

from rollwise._types import Clock, Recorder
from rollwise.assignment import Assignment
from rollwise.context import as_string
from rollwise.operators import OPERATORS, condition_predicate
from rollwise.rules import Condition, Flag, Rule, Segment, SegmentRef

__all__ = ["FastFunctions", "generate"]

FastFunctions = tuple[
    Callable[[Mapping[str, Any]], Assignment],
    Callable[[Mapping[str, Any]], Any],
    Callable[[Mapping[str, Any]], Any],
]
Projection = Callable[[Assignment], Any] | None
"""What a generated function returns of each pre-built result: all of it (``None``), or a part."""


def _variant(assignment: Assignment) -> Any:
    return assignment.variant


def _value(assignment: Assignment) -> Any:
    return assignment.value


_ORDERING = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class _Source:
    """Accumulates lines and binds constants to generated names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "_hash": mmh3.hash,
            "_bisect": bisect_right,
            "_unit": as_string,
        }

    def const(self, value: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


_MAX_NESTING = 60  # the tokenizer allows 100 indentation levels


def _condition_test(src: _Source, condition: Condition) -> tuple[str | None, str]:
    """The statement that loads the attribute (if any) and the test of one condition."""
    spec = OPERATORS[condition.operator]
    key = src.const(condition.attribute)
    load = f"v = ctx.get({key})"
    if not condition.case_insensitive and spec.name in ("in", "not_in"):
        operand = OPERATORS["in"].normalize(list(condition.values or ()))
        positive = OPERATORS["in"].predicate(condition.attribute, operand, False)
        members = src.const(frozenset(operand))
        fallback = src.const(positive)
        test = f"(v in {members} if v.__class__ is str else v is not None and {fallback}(ctx))"
        if spec.negated:
            test = f"not {test}"
    elif not condition.case_insensitive and spec.name in _ORDERING:
        op, bound = _ORDERING[spec.name], src.const(spec.normalize(condition.value))
        fallback = src.const(condition_predicate(condition))
        test = (
            f"((v {op} {bound} and v - v == 0) if v.__class__ is float"
            f" else v {op} {bound} if v.__class__ is int else v is not None and {fallback}(ctx))"
        )
    elif spec.name == "between":
        lo, hi = (src.const(x) for x in spec.normalize(list(condition.values or ())))
        fallback = src.const(condition_predicate(condition))
        test = (
            f"({lo} <= v < {hi} if v.__class__ is float or v.__class__ is int"
            f" else v is not None and {fallback}(ctx))"
        )
    else:
        return None, ("not " if condition.negate else "") + (
            f"{src.const(condition_predicate(condition))}(ctx)"
        )
    return load, f"not ({test})" if condition.negate else test


def _rule_tests(
    src: _Source, rule: Rule, segments: Mapping[str, Segment]
) -> list[tuple[str | None, str]]:
    tests: list[tuple[str | None, str]] = []
    for item in rule.conditions:
        if not isinstance(item, SegmentRef):
            tests.append(_condition_test(src, item))
        elif not item.negate:
            tests.extend(_condition_test(src, c) for c in segments[item.segment].conditions)
        else:
            inner = [
                condition_predicate(c, ignore_negate=False)
                for c in segments[item.segment].conditions
            ]
            everything = src.const(tuple(inner))
            tests.append((None, f"not all(p(ctx) for p in {everything})"))
    if len(tests) > _MAX_NESTING:  # too deep to nest: one test calling every predicate
        every = src.const(tuple(_test_function(src, load, test) for load, test in tests))
        return [(None, f"all(p(ctx) for p in {every})")]
    return tests


def _test_function(
    src: _Source, load: str | None, test: str
) -> Callable[[Mapping[str, Any]], bool]:
    lines = ["def test(ctx):", f"    {load}" if load else "    pass", f"    return bool({test})"]
    namespace = dict(src.namespace)
    exec(compile("\n".join(lines), "<rollwise condition>", "exec"), namespace)  # noqa: S102
    return namespace["test"]  # type: ignore[no-any-return]


def _function(
    flag: Flag,
    rules: list[tuple[Rule, tuple[Assignment, ...], tuple[int, ...]]],
    segments: Mapping[str, Segment],
    default: Assignment,
    disabled: Assignment,
    clock: Clock,
    record: Recorder | None,
    project: Projection,
) -> Callable[[Mapping[str, Any]], Any]:
    src = _Source()

    def result(assignment: Assignment) -> str:
        return src.const(assignment if project is None else project(assignment))

    src.emit(0, "def evaluate(ctx):")
    if not flag.enabled:
        src.emit(1, f"return {result(disabled)}")
    else:
        if flag.schedule is not None:
            start = flag.schedule.start.timestamp() if flag.schedule.start else float("-inf")
            end = flag.schedule.end.timestamp() if flag.schedule.end else float("inf")
            src.emit(
                1,
                f"if not {src.const(start)} <= {src.const(clock)}() < {src.const(end)}: "
                f"return {result(disabled)}",
            )
        for rule, arms, bounds in rules:
            depth = 1
            for load, test in _rule_tests(src, rule, segments):
                if load is not None:
                    src.emit(depth, load)
                src.emit(depth, f"if {test}:")
                depth += 1
            if rule.serve.split is None:
                src.emit(depth, f"return {result(arms[0])}")
                continue
            bucket_by = src.const(rule.serve.bucket_by)
            src.emit(depth, f"u = ctx.get({bucket_by})")
            src.emit(depth, "if u.__class__ is not str:")
            src.emit(depth + 1, "u = _unit(u)")
            src.emit(depth, "if u:")
            prefix = src.const(flag.salt + ":")
            # encode() first: mmh3 crashes the process on a lone surrogate; encoding raises
            # instead, and the reference evaluator then treats the unit as missing
            hashed = f"_hash(({prefix} + u).encode(), 0, False)"
            if len(bounds) == 2:  # the common canary: one comparison instead of a bisection
                src.emit(depth + 1, f"i = 0 if {hashed} < {src.const(bounds[0])} else 1")
            else:
                src.emit(depth + 1, f"i = _bisect({src.const(bounds)}, {hashed})")
            if record is not None:
                src.emit(
                    depth + 1, f"{src.const(record)}({src.const(arms)}[i], {bucket_by}, u, ctx)"
                )
            values = arms if project is None else tuple(project(a) for a in arms)
            src.emit(depth + 1, f"return {src.const(values)}[i]")
        src.emit(1, f"return {result(default)}")
    code = compile("\n".join(src.lines), f"<rollwise flag {flag.key!r}>", "exec")
    exec(code, src.namespace)  # noqa: S102 - generated from trusted templates, values bound by name
    return src.namespace["evaluate"]  # type: ignore[no-any-return]


def generate(
    flag: Flag,
    rules: list[tuple[Rule, tuple[Assignment, ...], tuple[int, ...]]],
    segments: Mapping[str, Segment],
    default: Assignment,
    disabled: Assignment,
    clock: Clock,
    record: Recorder | None,
) -> FastFunctions:
    """The fast ``(context) -> Assignment``, ``(context) -> variant`` and ``(context) -> value``
    functions of a flag (the last is the second when every value is its variant's key).

    ``rules`` are the rules that compiled (unknown operators already dropped), each with its
    pre-built results (one per split arm, or the single fixed result) and split boundaries.
    """
    args = (flag, rules, segments, default, disabled, clock, record)
    variant = _function(*args, project=_variant)
    keys = all(v.value == k and isinstance(v.value, str) for k, v in flag.variants.items())
    value = variant if keys else _function(*args, project=_value)
    return _function(*args, project=None), variant, value

"""Compiles a rules document into evaluators per flag, with every result built in advance.

Each flag gets a *reference* evaluator made of one closure per condition, the specified
behaviour, and the *fast* functions that ``codegen.py`` generates from the same plan. Both return
pre-built ``Assignment`` values: evaluating allocates nothing except on a split, where the unit is
hashed. A non-negated segment reference is flattened into the rule's own conditions. A rule that
uses an operator this SDK does not know never matches (``warnings`` says so).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import mmh3

from rollwise import codegen
from rollwise._types import Clock, Evaluator, Recorder
from rollwise.assignment import Assignment, ErrorCode, Reason
from rollwise.bucketing import boundaries
from rollwise.context import as_string
from rollwise.operators import OPERATORS, Predicate, UnknownOperatorError, condition_predicate
from rollwise.rules import Condition, Flag, FlagType, Rule, RulesDocument, Segment, SegmentRef

__all__ = [
    "CompiledFlag",
    "CompiledRules",
    "Evaluator",
    "Recorder",
    "compile_rules",
]

RuleFn = Callable[[Mapping[str, Any]], Assignment | None]
RecorderFactory = Callable[[Flag], Recorder]

_hash = mmh3.hash


@attrs.frozen
class CompiledFlag:
    """A flag ready to evaluate: the reference evaluator, the fast functions, error results."""

    flag: Flag
    evaluate: Evaluator
    """The reference evaluator, built of one closure per condition; never raises on a mapping."""
    fast: Evaluator
    """The generated flat function (``codegen.py``); may raise, then ``evaluate`` decides."""
    fast_variant: Callable[[Mapping[str, Any]], str | None]
    """Like ``fast`` but returns only the variant key."""
    fast_value: Callable[[Mapping[str, Any]], Any]
    """Like ``fast`` but returns only the variant's value (``fast_variant`` itself when every
    value is its variant's key)."""
    error: Assignment
    invalid_context: Assignment


@attrs.frozen
class CompiledRules:
    """A compiled document: one ``CompiledFlag`` per key, and the compile-time warnings."""

    document: RulesDocument
    flags: Mapping[str, CompiledFlag]
    fast: Mapping[str, Evaluator]
    fast_variant: Mapping[str, Callable[[Mapping[str, Any]], str | None]]
    fast_value: Mapping[FlagType, Mapping[str, Callable[[Mapping[str, Any]], Any]]]
    """Per flag type, the value functions of the flags of that type only: a typed accessor's
    one lookup also checks the type (a flag of another type is not there)."""
    warnings: tuple[str, ...] = ()


def _condition(condition: Condition) -> Predicate:
    return condition_predicate(condition, ignore_negate=False)


def _all(predicates: Sequence[Predicate]) -> Predicate:
    """Every predicate holds (an empty list holds for everyone)."""
    return lambda ctx: all(p(ctx) for p in predicates)


def _negation(predicate: Predicate) -> Predicate:
    return lambda ctx: not predicate(ctx)


def _predicates(rule: Rule, segments: Mapping[str, Segment]) -> list[Predicate]:
    out: list[Predicate] = []
    for item in rule.conditions:
        if isinstance(item, SegmentRef):
            inner = [_condition(c) for c in segments[item.segment].conditions]
            if not item.negate:
                out.extend(inner)
            else:
                out.append(_negation(_all(inner)))
        else:
            out.append(_condition(item))
    return out


def _serve_fixed(preds: list[Predicate], result: Assignment) -> RuleFn:
    if not preds:
        return lambda ctx: result
    if len(preds) == 1:
        (first,) = preds

        def one(ctx: Mapping[str, Any]) -> Assignment | None:
            return result if first(ctx) else None

        return one
    if len(preds) == 2:
        first, second = preds

        def two(ctx: Mapping[str, Any]) -> Assignment | None:
            return result if first(ctx) and second(ctx) else None

        return two

    def many(ctx: Mapping[str, Any]) -> Assignment | None:
        for pred in preds:
            if not pred(ctx):
                return None
        return result

    return many


def _serve_split(
    preds: list[Predicate],
    salt: str,
    bucket_by: str,
    arms: tuple[Assignment, ...],
    bounds: tuple[int, ...],
    record: Recorder | None,
) -> RuleFn:
    prefix = salt + ":"
    conditions = tuple(preds)

    def split(ctx: Mapping[str, Any]) -> Assignment | None:
        for pred in conditions:
            if not pred(ctx):
                return None
        unit = as_string(ctx.get(bucket_by))
        if not unit:
            return None
        try:
            key = (prefix + unit).encode()
        except UnicodeEncodeError:  # a lone surrogate is no unit (and would crash mmh3)
            return None
        result = arms[bisect_right(bounds, _hash(key, 0, False))]
        if record is not None:
            record(result, bucket_by, unit, ctx)
        return result

    return split


_Plan = tuple[Rule, tuple[Assignment, ...], tuple[int, ...]]


def _compile_rule(
    flag: Flag, rule: Rule, segments: Mapping[str, Segment], record: Recorder | None
) -> tuple[RuleFn, _Plan]:
    preds = _predicates(rule, segments)
    serve = rule.serve

    def result(variant: str, reason: Reason) -> Assignment:
        return Assignment(
            flag=flag.key,
            variant=variant,
            reason=reason,
            flag_version=flag.version,
            rule=rule.id,
            payload=flag.variants[variant].payload,
            value=flag.variants[variant].value,
        )

    if serve.split is None:
        fixed = result(serve.variant or flag.default_variant, Reason.TARGETING_MATCH)
        return _serve_fixed(preds, fixed), (rule, (fixed,), ())
    arms = tuple(result(arm.variant, Reason.SPLIT) for arm in serve.split)
    bounds = boundaries([arm.weight for arm in serve.split])
    split = _serve_split(preds, flag.salt, serve.bucket_by, arms, bounds, record)
    return split, (rule, arms, bounds)


def _evaluator(
    rules: tuple[RuleFn, ...], default: Assignment, disabled: Assignment, flag: Flag, clock: Clock
) -> Evaluator:
    if not flag.enabled:
        return lambda ctx: disabled
    start = end = 0.0
    if flag.schedule is not None:
        start = flag.schedule.start.timestamp() if flag.schedule.start else float("-inf")
        end = flag.schedule.end.timestamp() if flag.schedule.end else float("inf")
    scheduled = flag.schedule is not None

    def evaluate(ctx: Mapping[str, Any]) -> Assignment:
        if scheduled and not start <= clock() < end:
            return disabled
        for rule in rules:
            result = rule(ctx)
            if result is not None:
                return result
        return default

    return evaluate


def _compile_flag(
    flag: Flag,
    segments: Mapping[str, Segment],
    clock: Clock,
    recorder: RecorderFactory | None,
) -> CompiledFlag:
    def fixed(variant: str, reason: Reason, code: ErrorCode | None = None) -> Assignment:
        return Assignment(
            flag=flag.key,
            variant=variant,
            reason=reason,
            flag_version=flag.version,
            payload=flag.variants[variant].payload,
            error_code=code,
            value=flag.variants[variant].value,
        )

    record = recorder(flag) if recorder is not None else None
    rule_fns: list[RuleFn] = []
    plans: list[_Plan] = []
    for rule in flag.rules:
        try:
            rule_fn, plan = _compile_rule(flag, rule, segments, record)
        except UnknownOperatorError:  # never matches; ``_unknown_operators`` reported it
            continue
        rule_fns.append(rule_fn)
        plans.append(plan)
    default = fixed(flag.default_variant, Reason.DEFAULT)
    disabled = fixed(flag.off_variant, Reason.DISABLED)
    fast, fast_variant, fast_value = codegen.generate(
        flag, plans, segments, default, disabled, clock, record
    )
    return CompiledFlag(
        flag=flag,
        evaluate=_evaluator(tuple(rule_fns), default, disabled, flag, clock),
        fast=fast,
        fast_variant=fast_variant,
        fast_value=fast_value,
        error=fixed(flag.off_variant, Reason.ERROR, ErrorCode.GENERAL),
        invalid_context=fixed(flag.off_variant, Reason.ERROR, ErrorCode.INVALID_CONTEXT),
    )


def _unknown_operators(document: RulesDocument) -> list[str]:
    """The compile-time warnings, found without compiling: rules using an unknown operator."""
    warnings = []
    for flag in document.flags.values():
        for rule in flag.rules:
            for item in rule.conditions:
                inner = (
                    document.segments[item.segment].conditions
                    if isinstance(item, SegmentRef)
                    else (item,)
                )
                unknown = next((c.operator for c in inner if c.operator not in OPERATORS), None)
                if unknown is not None:
                    warnings.append(
                        f"flag {flag.key!r} rule {rule.id!r} uses operator {unknown!r}, which "
                        "this SDK does not know; the rule never matches (upgrade rollwise)"
                    )
                    break
    return warnings


class _CompiledFlags(Mapping[str, CompiledFlag]):
    """Each flag compiled the first time it is asked for, once: compiling (above all generating
    the fast functions) costs far more than validating, so loading a large document only
    validates it, and a flag that is never evaluated is never compiled."""

    def __init__(self, build: Callable[[Flag], CompiledFlag], flags: Mapping[str, Flag]):
        self._build = build
        self._flags = flags
        self._done: dict[str, CompiledFlag] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> CompiledFlag:
        done = self._done.get(key)
        if done is not None:
            return done
        flag = self._flags[key]
        with self._lock:
            done = self._done.get(key)
            if done is None:
                done = self._done[key] = self._build(flag)
        return done

    def __iter__(self) -> Iterator[str]:
        return iter(self._flags)

    def __len__(self) -> int:
        return len(self._flags)


Fn = Callable[[Mapping[str, Any]], Any]


def _first_call(
    key: str, flags: _CompiledFlags, fast: dict[str, Evaluator], fast_variant: dict[str, Fn],
    fast_value: dict[str, Fn],
) -> tuple[Evaluator, Fn, Fn]:  # fmt: skip
    """Stand-ins for a flag's fast functions: the first call compiles the flag and puts its
    real functions in their place (a plain dict item swap, safe beside readers)."""

    def install() -> CompiledFlag:
        compiled = flags[key]
        fast[key], fast_variant[key] = compiled.fast, compiled.fast_variant
        fast_value[key] = compiled.fast_value
        return compiled

    def evaluate(ctx: Mapping[str, Any]) -> Assignment:
        return install().fast(ctx)

    def variant(ctx: Mapping[str, Any]) -> str | None:
        return install().fast_variant(ctx)

    def value(ctx: Mapping[str, Any]) -> Any:
        return install().fast_value(ctx)

    return evaluate, variant, value


def compile_rules(
    document: RulesDocument,
    *,
    clock: Clock = time.time,
    recorder: RecorderFactory | None = None,
) -> CompiledRules:
    """Compile ``document``'s flags (each on first use); ``recorder(flag)`` gives each flag's
    exposure hook."""

    def build(flag: Flag) -> CompiledFlag:
        return _compile_flag(flag, document.segments, clock, recorder)

    flags = _CompiledFlags(build, document.flags)
    fast: dict[str, Evaluator] = {}
    fast_variant: dict[str, Fn] = {}
    fast_value: dict[FlagType, dict[str, Fn]] = {kind: {} for kind in FlagType}
    for key, flag in document.flags.items():
        values = fast_value[flag.type]
        fast[key], fast_variant[key], values[key] = _first_call(
            key, flags, fast, fast_variant, values
        )
    return CompiledRules(
        document=document,
        flags=flags,
        fast=fast,
        fast_variant=fast_variant,
        fast_value=fast_value,
        warnings=tuple(_unknown_operators(document)),
    )

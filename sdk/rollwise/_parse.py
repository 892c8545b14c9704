"""Validation of rules JSON into ``rollwise.rules`` values, reporting every problem by JSON path.

Each ``_read_*`` function appends problems to a list and returns a value or ``None``; the public
``parse_*`` functions raise one ``RulesParseError`` with all problems, so an admin sees everything
that is wrong in one round trip. Nothing here evaluates; that is ``compiler.py``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from rollwise import limits
from rollwise.context import parse_datetime
from rollwise.errors import Problem, RulesParseError, UnsupportedSchemaError
from rollwise.operators import OPERATORS, OperatorSpec
from rollwise.rules import (
    SCHEMA_VERSION,
    Condition,
    Flag,
    FlagType,
    Rule,
    RulesDocument,
    Schedule,
    Segment,
    SegmentRef,
    Serve,
    Shadow,
    SplitArm,
    Variant,
)

__all__ = [
    "KEY_PATTERN",
    "condition_cost",
    "load_json",
    "parse_document",
    "parse_flag",
    "parse_segment",
]

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
"""Flag, segment, variant and rule identifiers: 1-128 characters, no spaces or slashes."""

MAX_WEIGHT_TOTAL = 2**32

MAX_SAFE_INTEGER = 2**53 - 1
"""An integer flag's values lie within ±this: every language's JSON reads them exactly."""

_TYPE_NAMES = frozenset(t.value for t in FlagType)
_TYPES = ", ".join(t.value for t in FlagType)

_DOCUMENT_KEYS = {"schema_version", "environment", "revision", "segments", "flags"}
_FLAG_KEYS = {
    "key", "version", "enabled", "salt", "variants", "off_variant", "default_variant",
    "cohort_attributes", "schedule", "rules", "description", "shadow", "type",
}  # fmt: skip
_RULE_KEYS = {"id", "conditions", "serve"}
_SERVE_KEYS = {"variant", "split", "bucket_by"}
_CONDITION_KEYS = {"attribute", "operator", "value", "values", "negate", "case_insensitive"}

Problems = list[Problem]


def _shown(value: Any) -> str:
    """``value`` as a problem message quotes it: short, and never failing to print (an integer
    too long for ``str``, an object nested too deep for ``repr``)."""
    if isinstance(value, str):
        return repr(value[:60]) + ("…" if len(value) > 60 else "")
    if isinstance(value, bool | float) or value is None:
        return repr(value)
    if isinstance(value, int):
        digits = int(value.bit_length() * 0.30103) + 1
        return repr(value) if digits <= 40 else f"an integer of about {digits} digits"
    return f"a {type(value).__name__}"


def _name(key: Any) -> str:
    """A key as a path shows it: the string itself (cut at 200 characters), or ``_shown``."""
    if isinstance(key, str):
        return key if len(key) <= 200 else key[:200] + "…"
    return _shown(key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def load_json(text: str | bytes) -> Any:
    """Decode a rules document's JSON text, turning a decoding error, a text longer than
    ``limits.MAX_DOCUMENT_BYTES`` or nesting too deep to decode into a ``RulesParseError``."""
    size = len(text)
    if isinstance(text, str) and 4 * size > limits.MAX_DOCUMENT_BYTES:  # could pass it in UTF-8
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_DOCUMENT_BYTES:
        raise RulesParseError([Problem("", _over("max_document_bytes", size, "bytes"))])
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RulesParseError([Problem("", f"not valid JSON: {exc}")]) from None
    except RecursionError:
        raise RulesParseError([Problem("", "nests too deep to be a rules document")]) from None


def _over(limit: str, actual: int, unit: str) -> str:
    """The message of a broken limit, naming it (``limits.MAX_<NAME>``)."""
    allowed = getattr(limits, limit.upper())
    return f"has {actual} {unit}, more than the limit {limit} = {allowed}"


def _too_deep(limit: str) -> str:
    return f"nests deeper than the limit {limit} = {getattr(limits, limit.upper())}"


def _count(items: Collection[Any], limit: str, unit: str, path: str, out: Problems) -> bool:
    """Whether ``items`` are within ``limits.<LIMIT>``; a problem at ``path`` if not."""
    if len(items) > getattr(limits, limit.upper()):
        out.append(Problem(path, _over(limit, len(items), unit)))
        return False
    return True


def _segment_cost(segments: Mapping[str, Any] | None, key: str) -> int:
    cost = None if segments is None else segments.get(key)
    return max(cost, 1) if type(cost) is int else 1  # a reference is never free


def condition_cost(conditions: Any, segments: Mapping[str, int] | None = None) -> int:
    """What evaluating ``conditions`` (JSON or parsed) costs in ``limits.MAX_CONDITION_COST``
    units: 1 a condition, ``MATCHES_COST`` a ``matches``, a segment reference its segment's
    cost (``segments``: key → cost; 1 if unknown)."""
    cost = 0
    for item in conditions if isinstance(conditions, list | tuple) else ():
        if isinstance(item, SegmentRef):
            cost += _segment_cost(segments, item.segment)
        elif isinstance(item, Condition):
            cost += limits.MATCHES_COST if item.operator == "matches" else 1
        elif isinstance(item, Mapping) and isinstance(item.get("segment"), str):
            cost += _segment_cost(segments, item["segment"])
        else:
            matches = isinstance(item, Mapping) and item.get("operator") == "matches"
            cost += limits.MATCHES_COST if matches else 1
    return cost


def _unknown_keys(
    data: Mapping[str, Any], known: Collection[str], path: str, out: Problems
) -> None:
    for key in data:
        if key not in known:
            out.append(Problem(_join(path, _name(key)), "unknown field"))


def _object(data: Any, path: str, out: Problems) -> Mapping[str, Any] | None:
    if type(data) is dict:  # the usual case, without the ABC check's cost
        return data
    if not isinstance(data, Mapping):
        out.append(Problem(path, "must be an object"))
        return None
    return data


def _key(value: Any, path: str, out: Problems, what: str = "key") -> str | None:
    if not isinstance(value, str) or KEY_PATTERN.fullmatch(value) is None:
        out.append(Problem(path, f"must be a {what} of 1-128 letters, digits, '_', '.' or '-'"))
        return None
    return value


def _text(value: Any, path: str, out: Problems, *, allow_empty: bool = False) -> str | None:
    if not isinstance(value, str) or (not value and not allow_empty):
        out.append(
            Problem(path, "must be a string" if allow_empty else "must be a non-empty string")
        )
        return None
    return value


def _boolean(data: Mapping[str, Any], key: str, path: str, out: Problems, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        out.append(Problem(_join(path, key), "must be true or false"))
        return default
    return value


def _integer(value: Any, path: str, out: Problems, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        noun = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        out.append(Problem(path, f"must be {noun}"))
        return None
    return value


def _list(data: Mapping[str, Any], key: str, path: str, out: Problems) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        out.append(Problem(_join(path, key), "must be a list"))
        return []
    return value


def _refuse_ignored_operator_options(
    operator: str, spec: OperatorSpec | None, case_insensitive: bool, path: str, out: Problems
) -> None:
    """Strict mode: what the SDK would not evaluate as written is a problem, not a no-op.

    A default-mode parse keeps an unknown operator (its rule never matches, with one warning)
    and a ``case_insensitive`` that the operator ignores; the server must refuse both.
    """
    if spec is None:
        known = ", ".join(OPERATORS)
        out.append(
            Problem(
                _join(path, "operator"), f"unknown operator {operator!r}; known operators: {known}"
            )
        )
    elif case_insensitive and not spec.folds_case:
        folding = ", ".join(name for name, s in OPERATORS.items() if s.folds_case)
        out.append(
            Problem(
                _join(path, "case_insensitive"),
                f"not used by operator {operator!r} (only by {folding})",
            )
        )


def _read_condition(
    data: Any, path: str, out: Problems, segments: Collection[str] | None, strict: bool
) -> Condition | SegmentRef | None:
    obj = _object(data, path, out)
    if obj is None:
        return None
    negate = _boolean(obj, "negate", path, out, False)
    if "segment" in obj:
        if strict:
            _unknown_keys(obj, {"segment", "negate"}, path, out)
        name = _key(obj["segment"], _join(path, "segment"), out, "segment key")
        if name is None:
            return None
        if segments is None:
            out.append(Problem(_join(path, "segment"), "segment references are not allowed here"))
            return None
        if name not in segments:
            out.append(Problem(_join(path, "segment"), f"unknown segment {name!r}"))
            return None
        return SegmentRef(name, negate)
    if strict:
        _unknown_keys(obj, _CONDITION_KEYS, path, out)
    start = len(out)
    attribute = _attribute(obj.get("attribute"), _join(path, "attribute"), out)
    operator = _text(obj.get("operator"), _join(path, "operator"), out)
    if not _operand_within_limits(obj, path, out):
        return None
    case_insensitive = _boolean(obj, "case_insensitive", path, out, False)
    spec = OPERATORS.get(operator) if operator is not None else None
    if strict and operator is not None:
        _refuse_ignored_operator_options(operator, spec, case_insensitive, path, out)
    if spec is not None:
        field = {"values": "values", "range": "values", "value": "value", "none": None}[spec.shape]
        for other in ("value", "values"):
            if other != field and obj.get(other) is not None:
                out.append(Problem(_join(path, other), f"not used by operator {operator!r}"))
        if field is not None:
            if obj.get(field) is None:
                out.append(Problem(_join(path, field), f"is required by operator {operator!r}"))
            else:
                try:
                    spec.normalize(obj[field])
                except ValueError as exc:
                    out.append(Problem(_join(path, field), str(exc)))
    elif obj.get("values") is not None and not isinstance(obj["values"], list):
        # an operator this SDK does not know: its operand is kept, but `values` is always a list
        out.append(Problem(_join(path, "values"), "must be a list"))
    if len(out) > start or attribute is None or operator is None:
        return None
    return Condition(
        attribute=attribute,
        operator=operator,
        value=obj.get("value"),
        values=obj.get("values"),
        negate=negate,
        case_insensitive=case_insensitive,
    )


def _attribute(value: Any, path: str, out: Problems) -> str | None:
    name = _text(value, path, out)
    if name is not None and len(name) > limits.MAX_ATTRIBUTE_LENGTH:
        out.append(Problem(path, _over("max_attribute_length", len(name), "characters")))
        return None
    return name


def _operand_within_limits(obj: Mapping[str, Any], path: str, out: Problems) -> bool:
    """A condition's ``value``/``values`` within the limits, checked before anything reads them
    (an unknown operator's operand is kept as written, so its depth is bounded here too)."""
    start = len(out)
    for field in ("value", "values"):
        operand = obj.get(field)
        if operand is None:
            continue
        fpath = _join(path, field)
        depth = limits.json_depth(operand, limits.MAX_OPERAND_DEPTH)
        if depth > limits.MAX_OPERAND_DEPTH:
            out.append(Problem(fpath, _too_deep("max_operand_depth")))
            continue
        if isinstance(operand, list) and not _count(operand, "max_values", "values", fpath, out):
            continue
        for i, item in enumerate(operand if isinstance(operand, list) else [operand]):
            if isinstance(item, str) and len(item) > limits.MAX_STRING_LENGTH:
                ipath = f"{fpath}[{i}]" if isinstance(operand, list) else fpath
                out.append(Problem(ipath, _over("max_string_length", len(item), "characters")))
                break
    return len(out) == start


def _read_conditions(
    data: Mapping[str, Any],
    path: str,
    out: Problems,
    segments: Collection[str] | None,
    strict: bool,
) -> list[Any]:
    items = _list(data, "conditions", path, out)
    base = _join(path, "conditions")
    if not _count(items, "max_conditions", "conditions", base, out):
        return [None]
    return [_read_condition(c, f"{base}[{i}]", out, segments, strict) for i, c in enumerate(items)]


def _read_serve(
    data: Any, path: str, out: Problems, variants: Collection[str], strict: bool
) -> Serve | None:
    obj = _object(data, path, out)
    if obj is None:
        return None
    if strict:
        _unknown_keys(obj, _SERVE_KEYS, path, out)
    has_variant, has_split = obj.get("variant") is not None, obj.get("split") is not None
    if has_variant == has_split:
        out.append(Problem(path, "must have exactly one of 'variant' or 'split'"))
        return None
    if has_variant:
        if strict and "bucket_by" in obj:
            out.append(
                Problem(_join(path, "bucket_by"), "not used with 'variant', only with 'split'")
            )
        name = obj["variant"]
        if not isinstance(name, str) or name not in variants:
            out.append(Problem(_join(path, "variant"), f"unknown variant {_shown(name)}"))
            return None
        return Serve(variant=name)
    start = len(out)
    bucket_by = _attribute(obj.get("bucket_by", "user_id"), _join(path, "bucket_by"), out)
    arms = obj["split"]
    if not isinstance(arms, list) or not arms:
        out.append(Problem(_join(path, "split"), "must be a non-empty list"))
        return None
    if not _count(arms, "max_variants", "arms", _join(path, "split"), out):
        return None
    seen: set[str] = set()
    parsed: list[SplitArm] = []
    split_path = _join(path, "split")
    for i, arm in enumerate(arms):
        arm_path = f"{split_path}[{i}]"
        arm_obj = _object(arm, arm_path, out)
        if arm_obj is None:
            continue
        if strict:
            _unknown_keys(arm_obj, {"variant", "weight"}, arm_path, out)
        name = arm_obj.get("variant")
        if not isinstance(name, str) or name not in variants:
            out.append(Problem(_join(arm_path, "variant"), f"unknown variant {_shown(name)}"))
        elif name in seen:
            out.append(Problem(_join(arm_path, "variant"), f"variant {_shown(name)} appears twice"))
        weight = arm_obj.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            out.append(Problem(_join(arm_path, "weight"), "must be a non-negative integer"))
        elif isinstance(name, str):
            seen.add(name)
            parsed.append(SplitArm(name, weight))
    if len(out) > start:
        return None
    total = sum(a.weight for a in parsed)
    if not 1 <= total <= MAX_WEIGHT_TOTAL:
        out.append(
            Problem(
                _join(path, "split"),
                f"weights must sum to between 1 and 2**32, not {_shown(total)}",
            )
        )
        return None
    return Serve(split=tuple(parsed), bucket_by=bucket_by or "user_id")


def _read_schedule(data: Any, path: str, out: Problems, strict: bool) -> Schedule | None:
    if data is None:
        return None
    obj = _object(data, path, out)
    if obj is None:
        return None
    if strict:
        _unknown_keys(obj, {"start", "end"}, path, out)
    ends = []
    for name in ("start", "end"):
        raw = obj.get(name)
        moment = None if raw is None else parse_datetime(raw) if isinstance(raw, str) else None
        if raw is not None and moment is None:
            out.append(Problem(_join(path, name), "must be an ISO 8601 date-time or null"))
        ends.append(moment)
    start, end = ends
    if start is not None and end is not None and not start < end:
        out.append(Problem(_join(path, "end"), "must be later than start"))
    return Schedule(start, end)


def _description(obj: Mapping[str, Any], path: str, out: Problems) -> str | None:
    text = _text(obj.get("description", ""), _join(path, "description"), out, allow_empty=True)
    if text is not None and len(text) > limits.MAX_DESCRIPTION_LENGTH:
        out.append(
            Problem(
                _join(path, "description"), _over("max_description_length", len(text), "characters")
            )
        )
    return text


def _payload_within_limits(payload: Any, path: str, out: Problems) -> bool:
    """Depth first, without recursion; the size only of a value shallow enough to encode."""
    if payload is None or isinstance(payload, bool | int | float):
        return True
    depth = limits.json_depth(payload, limits.MAX_PAYLOAD_DEPTH)
    if depth > limits.MAX_PAYLOAD_DEPTH:
        out.append(Problem(path, _too_deep("max_payload_depth")))
        return False
    try:
        size = limits.json_size(payload)
    except (TypeError, ValueError) as exc:
        out.append(Problem(path, f"must be a JSON value: {exc}"))
        return False
    if size > limits.MAX_PAYLOAD_BYTES:
        out.append(Problem(path, _over("max_payload_bytes", size, "bytes of JSON")))
        return False
    return True


def _costs(segments: Collection[str] | None) -> Mapping[str, int] | None:
    """Segment costs when the caller knows them (``segment key → cost``), else ``None``."""
    return segments if isinstance(segments, Mapping) else None


def _collect(
    build: Callable[[Problems], Any],
) -> Any:
    out: Problems = []
    value = build(out)
    if out:
        raise RulesParseError(out)
    return value


def _flag(
    data: Any, key: str | None, path: str, out: Problems, segments: Collection[str] | None,
    strict: bool,
) -> Flag | None:  # fmt: skip
    obj = _object(data, path, out)
    if obj is None:
        return None
    start = len(out)
    if strict:
        _unknown_keys(obj, _FLAG_KEYS, path, out)
    if key is None:
        key = _key(obj.get("key"), _join(path, "key"), out, "flag key")
    elif "key" in obj and obj["key"] != key:
        out.append(Problem(_join(path, "key"), f"does not match the flag's key {key!r}"))
    version = _integer(obj.get("version"), _join(path, "version"), out, 1)
    enabled = _boolean(obj, "enabled", path, out, True)
    salt = _text(obj.get("salt", key or ""), _join(path, "salt"), out)
    description = _description(obj, path, out)

    kind = _flag_type(obj.get("type", "string"), _join(path, "type"), out)
    variants: dict[str, Variant] = {}
    raw_variants = _object(obj.get("variants"), _join(path, "variants"), out)
    if raw_variants is not None and not _count(
        raw_variants, "max_variants", "variants", _join(path, "variants"), out
    ):
        raw_variants = None
    if raw_variants is not None:
        if not raw_variants:
            out.append(Problem(_join(path, "variants"), "must name at least one variant"))
        for name, body in raw_variants.items():
            vpath = _join(_join(path, "variants"), _name(name))
            if _key(name, vpath, out, "variant key") is None:
                continue
            vobj = _object(body, vpath, out)
            if vobj is None:
                continue
            if strict:
                _unknown_keys(vobj, {"payload", "value"}, vpath, out)
            value = _value(kind, vobj, name, _join(vpath, "value"), out)
            if _payload_within_limits(vobj.get("payload"), _join(vpath, "payload"), out):
                # a bad value is reported above; the variant still exists for the references
                variants[name] = Variant(name, vobj.get("payload"), None if value is _INVALID
                                         else value)  # fmt: skip
    for field in ("off_variant", "default_variant"):
        named = obj.get(field)
        if not isinstance(named, str):
            out.append(Problem(_join(path, field), "must be the key of one of the variants"))
        elif named not in variants and raw_variants:
            out.append(Problem(_join(path, field), f"unknown variant {named!r}"))

    cohorts: list[str] = []
    raw_cohorts = _list(obj, "cohort_attributes", path, out)
    if not _count(
        raw_cohorts, "max_cohort_attributes", "attributes", _join(path, "cohort_attributes"), out
    ):
        raw_cohorts = []
    for i, name in enumerate(raw_cohorts):
        cpath = f"{_join(path, 'cohort_attributes')}[{i}]"
        if _attribute(name, cpath, out) is None:
            continue
        if not limits.plain_name(name):
            out.append(Problem(cpath, "must not hold control characters, quotes or backslashes"))
            continue
        if name in cohorts:
            out.append(Problem(cpath, f"attribute {name!r} appears twice"))
        cohorts.append(name)

    schedule = _read_schedule(obj.get("schedule"), _join(path, "schedule"), out, strict)
    shadow = _read_shadow(obj.get("shadow"), _join(path, "shadow"), out, variants, strict)

    rules: list[Rule] = []
    rule_ids: set[str] = set()
    raw_rules = _list(obj, "rules", path, out)
    if not _count(raw_rules, "max_rules", "rules", _join(path, "rules"), out):
        raw_rules = []
    for i, raw_rule in enumerate(raw_rules):
        rpath = f"{_join(path, 'rules')}[{i}]"
        robj = _object(raw_rule, rpath, out)
        if robj is None:
            continue
        if strict:
            _unknown_keys(robj, _RULE_KEYS, rpath, out)
        rule_id = _key(robj.get("id"), _join(rpath, "id"), out, "rule id")
        if rule_id is not None:
            if rule_id in rule_ids:
                out.append(Problem(_join(rpath, "id"), f"duplicate rule id {rule_id!r}"))
            rule_ids.add(rule_id)
        conditions = _read_conditions(robj, rpath, out, segments, strict)
        serve = _read_serve(robj.get("serve"), _join(rpath, "serve"), out, variants, strict)
        if rule_id is not None and serve is not None and None not in conditions:
            rules.append(Rule(rule_id, tuple(conditions), serve))

    if len(out) == start:
        cost = sum(condition_cost(rule.conditions, _costs(segments)) for rule in rules)
        if cost > limits.MAX_CONDITION_COST:
            out.append(Problem(_join(path, "rules"), _over("max_condition_cost", cost, "units")))
    if len(out) > start or key is None or version is None or salt is None:
        return None
    return Flag(
        key=key,
        version=version,
        variants=variants,
        off_variant=obj["off_variant"],
        default_variant=obj["default_variant"],
        enabled=enabled,
        salt=salt,
        rules=tuple(rules),
        cohort_attributes=tuple(cohorts),
        schedule=schedule,
        description=description or "",
        shadow=shadow,
        type=kind or FlagType.STRING,
    )


def _flag_type(value: Any, path: str, out: Problems) -> FlagType | None:
    if isinstance(value, str) and value in _TYPE_NAMES:
        return FlagType(value)
    out.append(Problem(path, f"must be one of {_TYPES}, not {_shown(value)}"))
    return None


_INVALID = object()
"""A variant's value that did not validate (``None`` is no marker: JSON has null)."""


def _value(
    kind: FlagType | None, variant: Mapping[str, Any], key: str, path: str, out: Problems
) -> Any:
    """A variant's ``value`` checked against the flag's type: required unless the flag is a
    string flag (whose variant's value is then its key)."""
    if kind is None:  # the type itself is the problem, already reported
        return _INVALID
    if "value" not in variant:
        if kind is FlagType.STRING:
            return key
        out.append(Problem(path, f"is required: the flag's type is {kind.value}"))
        return _INVALID
    value = variant["value"]
    if kind is FlagType.BOOLEAN:
        ok = isinstance(value, bool)
    elif kind is FlagType.INTEGER:
        ok = type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
        if type(value) is int and not ok:
            out.append(Problem(path, "must be an integer within ±(2**53 - 1)"))
            return _INVALID
    elif kind is FlagType.FLOAT:
        ok = type(value) in (int, float)
        if ok:
            try:
                value = float(value)  # an integer too large for a float overflows here
            except OverflowError:
                ok = False
            ok = ok and math.isfinite(value)
    elif kind is FlagType.JSON:
        ok = isinstance(value, Mapping | list)
    else:
        ok = isinstance(value, str) and value != ""
    if not ok:
        noun = {
            FlagType.STRING: "a non-empty string",
            FlagType.BOOLEAN: "true or false",
            FlagType.INTEGER: "an integer",
            FlagType.FLOAT: "a finite number",
            FlagType.JSON: "a JSON object or array",
        }[kind]
        out.append(Problem(path, f"must be {noun} (the flag's type is {kind.value}), "
                                 f"not {_shown(value)}"))  # fmt: skip
        return _INVALID
    if not _payload_within_limits(value, path, out):
        return _INVALID
    return value


def _read_shadow(
    data: Any, path: str, out: Problems, variants: Mapping[str, Variant], strict: bool
) -> Shadow | None:
    """``{"variant": key, "share": 0 < share <= 1, "bucket_by": attribute}`` or null."""
    if data is None:
        return None
    obj = _object(data, path, out)
    if obj is None:
        return None
    if strict:
        _unknown_keys(obj, {"variant", "share", "bucket_by"}, path, out)
    variant = obj.get("variant")
    ok = True
    if not isinstance(variant, str):
        out.append(Problem(_join(path, "variant"), "must be the key of one of the variants"))
        ok = False
    elif variants and variant not in variants:
        out.append(Problem(_join(path, "variant"), f"unknown variant {variant!r}"))
        ok = False
    share = obj.get("share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        out.append(Problem(_join(path, "share"), f"must be a number above 0 and at most 1, "
                                                 f"not {_shown(share)}"))  # fmt: skip
        ok = False
    bucket_by = _attribute(obj.get("bucket_by", "user_id"), _join(path, "bucket_by"), out)
    if not ok or bucket_by is None or not isinstance(variant, str):
        return None
    return Shadow(variant, float(share or 0), bucket_by)


def _segment(data: Any, key: str | None, path: str, out: Problems, strict: bool) -> Segment | None:
    obj = _object(data, path, out)
    if obj is None:
        return None
    start = len(out)
    if strict:
        _unknown_keys(obj, {"key", "conditions", "description"}, path, out)
    if key is None:
        key = _key(obj.get("key"), _join(path, "key"), out, "segment key")
    elif "key" in obj and obj["key"] != key:
        out.append(Problem(_join(path, "key"), f"does not match the segment's key {key!r}"))
    description = _description(obj, path, out)
    conditions = _read_conditions(obj, path, out, None, strict)
    if len(out) > start or key is None:
        return None
    return Segment(key, tuple(conditions), description or "")


def parse_flag(
    data: Any, *, key: str | None = None, segments: Collection[str] | None = None,
    strict: bool = False,
) -> Flag:  # fmt: skip
    """One flag, as in the admin API; ``segments`` are the segment keys it may reference."""
    return _collect(lambda out: _flag(data, key, "", out, segments, strict))  # type: ignore[no-any-return]


def parse_segment(data: Any, *, key: str | None = None, strict: bool = False) -> Segment:
    """One segment, as in the admin API."""
    return _collect(lambda out: _segment(data, key, "", out, strict))  # type: ignore[no-any-return]


def parse_document(data: Any, *, strict: bool = False) -> RulesDocument:
    """A whole rules document."""
    out: Problems = []
    obj = _object(data, "", out)
    if obj is None:
        raise RulesParseError(out)
    schema_version = obj.get("schema_version")
    if type(schema_version) is int and schema_version > SCHEMA_VERSION:
        raise UnsupportedSchemaError(
            f"schema_version {_shown(schema_version)} is newer than this SDK supports "
            f"({SCHEMA_VERSION}); upgrade rollwise"
        )
    _integer(schema_version, "schema_version", out, 1)
    if strict:
        _unknown_keys(obj, _DOCUMENT_KEYS, "", out)
    environment = _key(obj.get("environment"), "environment", out, "environment key")
    revision = _integer(obj.get("revision"), "revision", out, 0)

    segments: dict[str, Segment] = {}
    raw_segments = _object(obj.get("segments", {}), "segments", out) or {}
    if not _count(raw_segments, "max_segments", "segments", "segments", out):
        raw_segments = {}
    for name, body in raw_segments.items():
        spath = _join("segments", _name(name))
        if _key(name, spath, out, "segment key") is not None:
            segment = _segment(body, name, spath, out, strict)
            if segment is not None:
                segments[name] = segment

    flags: dict[str, Flag] = {}
    raw_flags = _object(obj.get("flags", {}), "flags", out) or {}
    if not _count(raw_flags, "max_flags", "flags", "flags", out):
        raw_flags = {}
    costs = {name: condition_cost(segment.conditions) for name, segment in segments.items()}
    known = {name: costs.get(name, 1) for name in raw_segments}
    for name, body in raw_flags.items():
        fpath = _join("flags", _name(name))
        if _key(name, fpath, out, "flag key") is not None:
            flag = _flag(body, name, fpath, out, known, strict)
            if flag is not None:
                flags[name] = flag

    if out or environment is None or revision is None:
        raise RulesParseError(out)
    return RulesDocument(
        environment=environment,
        revision=revision,
        flags=flags,
        segments=segments,
    )

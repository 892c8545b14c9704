"""The flag editor's form: a flag as form fields and back, without JSON for the rules.

A *draft* is the flag as the form holds it — text in fields, rows of variants, rules,
conditions and split arms — so that a half-finished edit can be shown again as typed (after
adding a row, or with the server's problems). ``to_body`` turns it into the API's flag body,
naming each field it cannot read; ``field_of`` finds the field a server problem's path names.
Operands are typed by their operator (``rollwise.operators.OPERATORS``): lists of strings for
``in``/``not_in``, numbers for comparisons and ``between`` (two fields, from and to), a number
or a string for ``eq``/``neq``, text for the others, nothing for ``exists``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from rollwise.limits import MAX_CONDITIONS, MAX_RULES, MAX_VARIANTS
from rollwise.operators import OPERATORS
from rollwise_server.ui.context import Form

__all__ = [
    "OPERATOR_NAMES",
    "apply_action",
    "field_of",
    "from_body",
    "from_form",
    "shown",
    "to_body",
]

OPERATOR_NAMES = tuple(OPERATORS)
Draft = dict[str, Any]
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _local_time(value: Any) -> str:
    """A stored date-time as a ``datetime-local`` field's value, in UTC."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if moment.microsecond else ""))


def blank_condition() -> dict[str, Any]:
    return {
        "type": "attribute",
        "attribute": "",
        "operator": "in",
        "values": "",
        "value": "",
        "low": "",
        "high": "",
        "negate": False,
        "case_insensitive": False,
        "segment": "",
        "numbers": False,
    }


def blank_rule(index: int) -> dict[str, Any]:
    return {
        "id": f"rule-{index + 1}",
        "serve": "variant",
        "variant": "",
        "bucket_by": "user_id",
        "split": [{"variant": "", "weight": ""}],
        "conditions": [blank_condition()],
    }


def new_draft() -> Draft:
    return {
        "key": "",
        "description": "",
        "enabled": True,
        "salt": "",
        "off_variant": "control",
        "default_variant": "control",
        "cohort_attributes": "",
        "shadow_variant": "",
        "shadow_share": "",
        "shadow_bucket_by": "user_id",
        "schedule_start": "",
        "schedule_end": "",
        "type": "string",
        "variants": [
            {"key": "control", "payload": "", "value": ""},
            {"key": "candidate", "payload": "", "value": ""},
        ],
        "rules": [],
    }


def _condition(cond: Mapping[str, Any]) -> dict[str, Any]:
    out = blank_condition()
    if "segment" in cond:
        out.update(type="segment", segment=_text(cond["segment"]), negate=bool(cond.get("negate")))
        return out
    operator = str(cond.get("operator", ""))
    out.update(
        attribute=_text(cond.get("attribute")),
        operator=operator,
        negate=bool(cond.get("negate")),
        case_insensitive=bool(cond.get("case_insensitive")),
    )
    values = cond.get("values")
    if operator == "between" and isinstance(values, list) and len(values) == 2:
        out.update(low=_text(values[0]), high=_text(values[1]))
    elif isinstance(values, list):
        out["values"] = "\n".join(_text(v) for v in values)
        out["numbers"] = bool(values) and all(_is_number(v) for v in values)
    else:
        out["value"] = _text(cond.get("value"))
        out["numbers"] = _is_number(cond.get("value"))
    return out


def from_body(key: str, body: Mapping[str, Any]) -> Draft:
    """The draft of a stored flag."""
    schedule = body.get("schedule") or {}
    shadow = body.get("shadow") or {}
    rules = []
    for rule in body.get("rules") or []:
        serve = rule.get("serve") or {}
        split = serve.get("split") or []
        rules.append(
            {
                "id": _text(rule.get("id")),
                "serve": "split" if split else "variant",
                "variant": _text(serve.get("variant")),
                "bucket_by": _text(serve.get("bucket_by", "user_id")),
                "split": [
                    {"variant": _text(a.get("variant")), "weight": _text(a.get("weight"))}
                    for a in split
                ]
                or [{"variant": "", "weight": ""}],
                "conditions": [_condition(c) for c in rule.get("conditions") or []],
            }
        )
    return {
        "key": key,
        "description": _text(body.get("description")),
        "enabled": body.get("enabled", True) is not False,
        "salt": _text(body.get("salt")),
        "off_variant": _text(body.get("off_variant")),
        "default_variant": _text(body.get("default_variant")),
        "cohort_attributes": ", ".join(str(a) for a in body.get("cohort_attributes") or []),
        "shadow_variant": _text(shadow.get("variant")),
        "shadow_share": _text(shadow.get("share")),
        "shadow_bucket_by": _text(shadow.get("bucket_by", "user_id")),
        "schedule_start": _local_time(schedule.get("start")),
        "schedule_end": _local_time(schedule.get("end")),
        "type": _text(body.get("type", "string")),
        "variants": [
            {
                "key": name,
                "payload": ""
                if (v or {}).get("payload") is None
                else json.dumps(v["payload"], ensure_ascii=False, indent=1),
                "value": _value_text(body.get("type", "string"), v or {}),
            }
            for name, v in (body.get("variants") or {}).items()
        ],
        "rules": rules,
    }


def _value_text(flag_type: Any, variant: Mapping[str, Any]) -> str:
    """A variant's value as its form field shows it: a string flag's as typed (empty: the
    key), any other type's as JSON."""
    if "value" not in variant:
        return ""
    value = variant["value"]
    if flag_type == "string" and isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


ROWS = re.compile(
    r"(?:variants-(\d{1,4})-|rules-(\d{1,4})-(?:conditions-(\d{1,4})-|split-(\d{1,4})-)?)"
)


@attrs.define
class _Layout:
    """The row numbers a form holds, found in one pass over its field names."""

    variants: set[int] = attrs.Factory(set)
    rules: dict[int, tuple[set[int], set[int]]] = attrs.Factory(dict)


def _layout(form: Form) -> _Layout:
    """Rows beyond the rules document's own limits are dropped here: the server would refuse
    them anyway, and a form of ten thousand rows must not cost the server anything."""
    layout = _Layout()
    for name in form.names():
        match = ROWS.match(name)
        if match is None:
            continue
        variant, rule, condition, arm = match.groups()
        if variant is not None:
            if int(variant) < MAX_VARIANTS:
                layout.variants.add(int(variant))
            continue
        number = int(rule)
        if number >= MAX_RULES or (number not in layout.rules and len(layout.rules) >= MAX_RULES):
            continue
        conditions, arms = layout.rules.setdefault(number, (set(), set()))
        if condition is not None and len(conditions) < MAX_CONDITIONS:
            conditions.add(int(condition))
        if arm is not None and len(arms) < MAX_VARIANTS:
            arms.add(int(arm))
    return layout


def from_form(form: Form) -> Draft:
    """The draft as submitted (rows renumbered from 0, in the order of their numbers)."""
    layout = _layout(form)
    draft: Draft = {
        "key": form.get("key").strip(),
        "description": form.get("description"),
        "enabled": form.get("enabled") == "on",
        "salt": form.get("salt"),
        "off_variant": form.get("off_variant").strip(),
        "default_variant": form.get("default_variant").strip(),
        "cohort_attributes": form.get("cohort_attributes"),
        "shadow_variant": form.get("shadow_variant").strip(),
        "shadow_share": form.get("shadow_share").strip(),
        "shadow_bucket_by": form.get("shadow_bucket_by", "user_id").strip() or "user_id",
        "schedule_start": form.get("schedule_start").strip(),
        "schedule_end": form.get("schedule_end").strip(),
        "type": form.get("type", "string").strip() or "string",
        "variants": [
            {
                "key": form.get(f"variants-{i}-key").strip(),
                "payload": form.get(f"variants-{i}-payload"),
                "value": form.get(f"variants-{i}-value"),
            }
            for i in sorted(layout.variants)
        ],
        "rules": [],
    }
    for i, (condition_rows, arm_rows) in sorted(layout.rules.items()):
        p = f"rules-{i}-"
        conditions = []
        for j in sorted(condition_rows):
            c = f"{p}conditions-{j}-"
            conditions.append(
                {
                    "type": form.get(f"{c}type", "attribute"),
                    "attribute": form.get(f"{c}attribute").strip(),
                    "operator": form.get(f"{c}operator", "in"),
                    "values": form.get(f"{c}values"),
                    "value": form.get(f"{c}value"),
                    "low": form.get(f"{c}low").strip(),
                    "high": form.get(f"{c}high").strip(),
                    "negate": form.get(f"{c}negate") == "on",
                    "case_insensitive": form.get(f"{c}case_insensitive") == "on",
                    "segment": form.get(f"{c}segment").strip(),
                    "numbers": form.get(f"{c}numbers") == "1",
                }
            )
        draft["rules"].append(
            {
                "id": form.get(f"{p}id").strip(),
                "serve": form.get(f"{p}serve", "variant"),
                "variant": form.get(f"{p}variant").strip(),
                "bucket_by": form.get(f"{p}bucket_by").strip(),
                "split": [
                    {
                        "variant": form.get(f"{p}split-{k}-variant").strip(),
                        "weight": form.get(f"{p}split-{k}-weight").strip(),
                    }
                    for k in sorted(arm_rows)
                ],
                "conditions": conditions,
            }
        )
    return draft


def apply_action(draft: Draft, action: str) -> bool:
    """Add, remove or move a row (the editor's buttons); whether ``action`` was one."""
    name, _, where = action.partition(":")
    at = [int(p) for p in where.split(":") if p.isascii() and p.isdigit() and len(p) < 6]
    rules = draft["rules"]
    try:
        if name == "add-variant":
            draft["variants"].append({"key": "", "payload": "", "value": ""})
        elif name == "remove-variant":
            del draft["variants"][at[0]]
        elif name == "add-rule":
            rules.append(blank_rule(len(rules)))
        elif name == "remove-rule":
            del rules[at[0]]
        elif name == "rule-up" and at[0] > 0:
            rules[at[0] - 1], rules[at[0]] = rules[at[0]], rules[at[0] - 1]
        elif name == "add-condition":
            rules[at[0]]["conditions"].append(blank_condition())
        elif name == "remove-condition":
            del rules[at[0]]["conditions"][at[1]]
        elif name == "add-arm":
            rules[at[0]]["split"].append({"variant": "", "weight": ""})
        elif name == "remove-arm":
            del rules[at[0]]["split"][at[1]]
        else:
            return name == "rule-up"
    except IndexError:
        return True
    return True


def _number(text: str) -> int | float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 and "." not in text else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _instant(text: str) -> str | None:
    """A ``datetime-local`` value (UTC) as RFC 3339 with ``Z``; ``None`` if unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _operand(cond: dict[str, Any], field: str, problems: dict[str, str]) -> dict[str, Any]:
    operator = cond["operator"]
    spec = OPERATORS.get(operator)
    shape = spec.shape if spec is not None else "value"
    if shape == "none":
        return {}
    if shape == "range":
        low, high = _number(cond["low"]), _number(cond["high"])
        if low is None:
            problems[f"{field}low"] = "must be a number"
        if high is None:
            problems[f"{field}high"] = "must be a number"
        return {"values": [low, high]}
    if shape == "values":
        # one value per line, exactly as typed (a value may hold commas and spaces)
        items = [v.rstrip("\r") for v in cond["values"].split("\n") if v.strip()]
        if cond.get("numbers"):  # integers stay integers (they match as decimal strings)
            whole = [_number(v) for v in items]
            if all(isinstance(n, int) for n in whole):
                return {"values": whole}
        return {"values": items}
    text = cond["value"]
    if spec is not None and spec.normalize.__name__ == "_number":
        number = _number(text)
        if number is None:
            problems[f"{field}value"] = "must be a number"
        return {"value": number}
    if operator in ("eq", "neq") and cond.get("numbers"):  # a number stays a number
        number = _number(text)
        return {"value": text if number is None else number}
    return {"value": text}


def to_body(draft: Draft) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's flag body, and the problems of fields that could not be read (by field)."""
    problems: dict[str, str] = {}
    variants: dict[str, Any] = {}
    for i, variant in enumerate(draft["variants"]):
        payload: Any = None
        if variant["payload"].strip():
            try:
                payload = json.loads(variant["payload"])
            except json.JSONDecodeError as exc:
                problems[f"variants-{i}-payload"] = f"must be JSON (or empty): {exc.msg}"
            except RecursionError:
                problems[f"variants-{i}-payload"] = "nests too deeply"
        if variant["key"] in variants:
            problems[f"variants-{i}-key"] = f"variant {variant['key']!r} is named twice"
        variants[variant["key"]] = {} if payload is None else {"payload": payload}
        text = variant.get("value", "")
        if draft["type"] == "string":
            if text and text != variant["key"]:
                variants[variant["key"]]["value"] = text
        elif text.strip():  # empty: the server says the value is required
            try:
                variants[variant["key"]]["value"] = json.loads(text)
            except json.JSONDecodeError as exc:
                problems[f"variants-{i}-value"] = (
                    f"must be JSON for a {draft['type']} flag (true, 50, 0.35, "
                    f'{{"k": 1}}): {exc.msg}'
                )
            except RecursionError:
                problems[f"variants-{i}-value"] = "nests too deeply"
    body: dict[str, Any] = {
        "description": draft["description"],
        "enabled": draft["enabled"],
        "variants": variants,
        "off_variant": draft["off_variant"],
        "default_variant": draft["default_variant"],
    }
    if draft["type"] != "string":
        body["type"] = draft["type"]
    if draft["salt"].strip():
        body["salt"] = draft["salt"].strip()
    attributes = [a.strip() for a in draft["cohort_attributes"].split(",") if a.strip()]
    if attributes:
        body["cohort_attributes"] = attributes
    if draft["shadow_variant"] or draft["shadow_share"]:
        share = _number(draft["shadow_share"])
        if share is None:
            problems["shadow_share"] = "must be a number above 0 and at most 1"
        body["shadow"] = {
            "variant": draft["shadow_variant"],
            "share": share,
            "bucket_by": draft["shadow_bucket_by"],
        }
    start, end = draft["schedule_start"], draft["schedule_end"]
    if start or end:
        body["schedule"] = {"start": None, "end": None}
        for name, text in (("start", start), ("end", end)):
            if text:
                moment = _instant(text)
                if moment is None:
                    problems[f"schedule_{name}"] = "must be a date and time (UTC)"
                body["schedule"][name] = moment
    rules = []
    for i, rule in enumerate(draft["rules"]):
        conditions: list[dict[str, Any]] = []
        for j, cond in enumerate(rule["conditions"]):
            field = f"rules-{i}-conditions-{j}-"
            if cond["type"] == "segment":
                item: dict[str, Any] = {"segment": cond["segment"]}
            else:
                item = {
                    "attribute": cond["attribute"],
                    "operator": cond["operator"],
                    **_operand(cond, field, problems),
                }
                spec = OPERATORS.get(cond["operator"])
                if cond["case_insensitive"] and spec is not None and spec.folds_case:
                    item["case_insensitive"] = True
            if cond["negate"]:
                item["negate"] = True
            conditions.append(item)
        serve: dict[str, Any]
        if rule["serve"] == "split":
            arms = []
            for k, arm in enumerate(rule["split"]):
                weight = _number(arm["weight"])
                if not isinstance(weight, int):
                    problems[f"rules-{i}-split-{k}-weight"] = "must be a whole number"
                arms.append({"variant": arm["variant"], "weight": weight})
            serve = {"split": arms, "bucket_by": rule["bucket_by"] or "user_id"}
        else:
            serve = {"variant": rule["variant"]}
        rules.append({"id": rule["id"], "conditions": conditions, "serve": serve})
    body["rules"] = rules
    return body, problems


def field_of(path: str, draft: Draft) -> str:
    """The form field a problem's JSON path names (``rules[0].serve.split[1].weight`` →
    ``rules-0-split-1-weight``), or ``""`` when no field shows it."""
    name = re.sub(r"\[(\d+)\]", r"-\1", path).replace(".serve.", "-").replace(".", "-")
    if name.startswith("schedule-"):
        return name.replace("schedule-", "schedule_", 1)
    if name.startswith("cohort_attributes"):
        return "cohort_attributes"
    if name.startswith("shadow"):
        return {"shadow-share": "shadow_share", "shadow-bucket_by": "shadow_bucket_by"}.get(
            name, "shadow_variant"
        )
    if name.startswith("variants-"):
        key = name.removeprefix("variants-").split("-", 1)[0]
        for i, variant in enumerate(draft["variants"]):
            if variant["key"] == key:
                return {"payload": f"variants-{i}-payload", "value": f"variants-{i}-value"}.get(
                    name.rsplit("-", 1)[-1], f"variants-{i}-key"
                )
        return ""
    if re.fullmatch(r"rules-\d+-conditions-\d+-values(-\d+)?", name):
        base = name.split("-values")[0]
        i, j = (int(n) for n in re.findall(r"\d+", base)[:2])
        try:
            operator = draft["rules"][i]["conditions"][j]["operator"]
        except (IndexError, KeyError):
            return base + "-values"
        return base + ("-low" if operator == "between" else "-values")
    if re.fullmatch(r"rules-\d+-split", name):
        return name + "-0-weight"
    return name


def shown(draft: Draft) -> Draft:
    """The draft with each split arm's share as a percentage (``share``), for the form."""
    for rule in draft["rules"]:
        weights = [_number(str(arm["weight"])) for arm in rule["split"]]
        total = sum(w for w in weights if isinstance(w, int) and w >= 0)
        for arm, weight in zip(rule["split"], weights, strict=True):
            usable = isinstance(weight, int) and weight >= 0 and total > 0
            arm["share"] = f"{100 * weight / total:.4g}%" if usable else "\u2013"  # type: ignore[operator]
    return draft

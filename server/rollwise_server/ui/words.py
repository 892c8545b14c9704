"""Flags, conditions and rollouts in words, for lists and summaries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rollwise_server.api.resources import is_stale
from rollwise_server.times import utc_moment
from rollwise_server.ui.countries import COUNTRIES

__all__ = ["condition", "flag_state", "serve", "shares", "stage"]


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _named(attribute: Any, value: Any) -> str:
    text = _scalar(value)
    if attribute == "country" and isinstance(value, str) and value.upper() in COUNTRIES:
        return f"{text} ({COUNTRIES[value.upper()]})"
    return text


def condition(cond: Mapping[str, Any]) -> str:
    """``country in DE (Germany), FR (France)``, ``amount from 0 to under 500``,
    ``NOT segment eu``."""
    if "segment" in cond:
        text = f"in segment {cond['segment']}"
    else:
        attribute, operator = cond.get("attribute"), cond.get("operator")
        if operator == "between" and isinstance(cond.get("values"), list):
            low, high = (cond["values"] + [None, None])[:2]
            text = f"{attribute} from {_scalar(low)} to under {_scalar(high)}"
        elif operator == "exists":
            text = f"{attribute} is present"
        elif isinstance(cond.get("values"), list):
            values = ", ".join(_named(attribute, v) for v in cond["values"]) or "(nothing)"
            text = f"{attribute} {operator} {values}"
        else:
            text = f"{attribute} {operator} {_named(attribute, cond.get('value'))}"
        if cond.get("case_insensitive"):
            text += " (any case)"
    return f"NOT ({text})" if cond.get("negate") else text


def serve(spec: Mapping[str, Any]) -> str:
    split = spec.get("split")
    if not split:
        return f"serve {spec.get('variant')}"
    return f"split by {spec.get('bucket_by', 'user_id')}: {shares(split)}"


def shares(split: list[Mapping[str, Any]]) -> str:
    total = sum(int(arm.get("weight", 0)) for arm in split) or 1
    return " / ".join(f"{arm['variant']} {100 * int(arm['weight']) / total:.4g}%" for arm in split)


def flag_state(body: Mapping[str, Any], now: datetime | None = None) -> str:
    """``killed`` (disabled), ``scheduled`` (before its start), ``ended`` (past its end: stale)
    or ``on``."""
    if body.get("enabled", True) is False:
        return "killed"
    if is_stale(body):
        return "ended"
    schedule = body.get("schedule")
    start = schedule.get("start") if isinstance(schedule, Mapping) else None
    if isinstance(start, str):
        try:
            moment = utc_moment(start)
        except OverflowError:
            return "on"
        if moment is not None and moment > (now or datetime.now(UTC)):
            return "scheduled"
    return "on"


def stage(plan: Mapping[str, Any], rollout_state: Mapping[str, Any]) -> str:
    """``stage 2/4 at 25%, running`` or the final status."""
    status = str(rollout_state.get("status", "draft"))
    stages = plan.get("stages") or []
    number = rollout_state.get("stage")
    if status in ("running", "paused", "awaiting_approval", "errored") and isinstance(number, int):
        current = stages[number - 1] if 0 < number <= len(stages) else {}
        share = current.get("share")
        at = f" at {100 * share:.4g}%" if isinstance(share, int | float) else ""
        if current.get("shadow") is not None:
            at = " in shadow"  # the candidate serves no one
        return f"stage {number}/{len(stages)}{at}, {status.replace('_', ' ')}"
    return status.replace("_", " ")

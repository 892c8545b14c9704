"""Exposure and outcome events and their JSON encoding (``docs/spec/events.md``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import attrs

from rollwise._freeze import thaw

__all__ = ["Exposure", "Outcome", "Prediction", "format_ts", "json_attrs", "json_scalar"]


def format_ts(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-25T18:07:57.123Z``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def json_scalar(value: Any) -> Any:
    """A context or attribute value as a JSON scalar: huge integers become floats (or null),
    non-finite floats null, anything else its ``str``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if -(2**53) <= value <= 2**53:  # exact in JSON everywhere
            return int(value)
        try:
            return float(value)  # a huge integer: its nearest float, or null beyond floats
        except OverflowError:
            return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def json_attrs(context: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The named context attributes as JSON scalars (other values become their ``str``)."""
    return {name: json_scalar(context.get(name)) for name in names}


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """Event attributes are JSON scalars (``json_attrs``), so a shallow read-only copy is enough."""
    return MappingProxyType(dict(value))


@attrs.frozen
class Exposure:
    """A unit was assigned a variant by a split; ``id`` makes ingestion idempotent."""

    id: str
    ts: float
    flag: str
    flag_version: int
    variant: str
    rule: str | None
    unit_type: str
    unit: str
    attrs: Mapping[str, Any] = attrs.field(factory=dict, converter=_read_only)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "flag": self.flag,
            "flag_version": self.flag_version,
            "variant": self.variant,
            "rule": self.rule,
            "unit_type": self.unit_type,
            "unit": self.unit,
            "attrs": thaw(self.attrs),
        }


@attrs.frozen
class Outcome:
    """A measured result for a unit (a metric value), from ``client.track``."""

    id: str
    ts: float
    metric: str
    unit_type: str
    unit: str
    value: float
    attrs: Mapping[str, Any] = attrs.field(factory=dict, converter=_read_only)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "metric": self.metric,
            "unit_type": self.unit_type,
            "unit": self.unit,
            "value": self.value,
            "attrs": thaw(self.attrs),
        }


@attrs.frozen
class Prediction:
    """What one model predicted for a unit in a shadow run (``client.shadow``).

    ``role`` is ``live`` (the served variant, on the request path) or ``shadow`` (the
    candidate, off it); both events of one run share ``run``, so the server pairs them per
    request. A prediction is a ``label`` (text) or a ``score`` (a number); ``status`` is ``ok``,
    ``error`` (the model raised) or ``timeout`` (slower than ``shadow_timeout``), and only an
    ``ok`` prediction carries a value.
    """

    id: str
    ts: float
    flag: str
    flag_version: int
    variant: str
    role: str
    run: str
    unit_type: str
    unit: str
    label: str | None
    score: float | None
    latency_ms: float
    status: str
    attrs: Mapping[str, Any] = attrs.field(factory=dict, converter=_read_only)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "flag": self.flag,
            "flag_version": self.flag_version,
            "variant": self.variant,
            "role": self.role,
            "run": self.run,
            "unit_type": self.unit_type,
            "unit": self.unit,
            "label": self.label,
            "score": self.score,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "attrs": thaw(self.attrs),
        }

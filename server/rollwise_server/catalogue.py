"""The metric catalogue: what each tracked metric is, declared once per environment.

It is the contract between ``client.track()`` and the guardrails of rollout plans: a metric's
kind (how a unit's events become one value) and direction (which way is better) are written
here, and plans, the results endpoint and the controller read them from here instead of
trusting each caller to restate them. Metrics are resources like flags (versions, history,
audit, ``If-Match``) but are not part of the rules document served to SDKs.
"""

from __future__ import annotations

import math
import typing
from typing import Any, Literal

import attrs
import msgspec

from rollwise.errors import Problem
from rollwise_server.models.decoding import in_field_order, problems_of, valid_fields
from rollwise_server.models.metrics import Direction, MetricEntry, MetricKind

__all__ = [
    "DIRECTIONS",
    "KINDS",
    "Metric",
    "finite_number",
    "parse_metric",
    "tolerance_sign_problem",
]

KINDS: tuple[MetricKind, ...] = typing.get_args(MetricKind)
DIRECTIONS: tuple[Direction, ...] = typing.get_args(Direction)


@attrs.frozen
class Metric:
    key: str
    kind: MetricKind
    direction: Direction
    numerator: str | None = None
    """A ratio's numerator: the tracked metric summed on top (the metric's own key if unset)."""
    denominator: str | None = None
    """A ratio's denominator: the tracked metric summed below."""
    unit: str = ""
    description: str = ""
    default_tolerance: float = 0.0
    """The change a guardrail tolerates unless its plan says otherwise, signed in the harmful
    direction: ≥ 0 for a lower-is-better metric, ≤ 0 for a higher-is-better one."""
    owner: str = ""

    @property
    def harm(self) -> Literal["increase", "decrease"]:
        """The direction in which the metric gets worse."""
        return "increase" if self.direction == "lower_is_better" else "decrease"

    @property
    def source(self) -> str:
        """The tracked metric whose events are the value (a ratio's numerator)."""
        return self.numerator or self.key

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "direction": self.direction,
            "unit": self.unit,
            "description": self.description,
            "default_tolerance": self.default_tolerance,
            "owner": self.owner,
        }
        if self.kind == "ratio":
            out["numerator"] = self.source
            out["denominator"] = self.denominator
        return out


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` for anything else (a bool, a string, NaN, an
    infinity, or a JSON integer too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def tolerance_sign_problem(harm: str, tolerance: float) -> str | None:
    """The message for a tolerance on the wrong side of zero for ``harm``, else ``None``."""
    if harm == "increase" and tolerance < 0:
        return "must be >= 0: an increase harms this metric, so the tolerated change is a rise"
    if harm == "decrease" and tolerance > 0:
        return "must be <= 0: a decrease harms this metric, so the tolerated change is a fall"
    return None


def parse_metric(key: str, data: Any) -> tuple[Metric | None, list[Problem]]:
    """Validate a catalogue entry; every problem names its field. The fields are those of
    ``models.MetricEntry``; here, the rules across them (checked on the fields that are valid,
    so that their problems come with the others)."""
    entry, out = problems_of(MetricEntry, data)
    fields = msgspec.structs.asdict(entry) if entry else valid_fields(MetricEntry, data)
    kind, direction = fields.get("kind"), fields.get("direction")
    if kind == "ratio" and "denominator" in fields and fields["denominator"] is None:
        out.append(Problem("denominator", "a ratio metric needs its denominator metric"))
    if kind is not None and kind != "ratio":
        out += [Problem(f, "only a ratio metric has one") for f in ("numerator", "denominator")
                if fields.get(f) is not None]  # fmt: skip
    if direction is not None and "default_tolerance" in fields:
        harm = "increase" if direction == "lower_is_better" else "decrease"
        problem = tolerance_sign_problem(harm, fields["default_tolerance"])
        if problem:
            out.append(Problem("default_tolerance", problem))
    if out or entry is None:
        return None, in_field_order(MetricEntry, out)
    metric = Metric(
        key=key,
        kind=entry.kind,
        direction=entry.direction,
        numerator=entry.numerator if entry.kind == "ratio" else None,
        denominator=entry.denominator,
        unit=entry.unit or "",
        description=entry.description or "",
        default_tolerance=entry.default_tolerance,
        owner=entry.owner or "",
    )
    return metric, []

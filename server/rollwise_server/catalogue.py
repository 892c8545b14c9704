"""The metric catalogue: what each tracked metric is, declared once per environment.

It is the contract between ``client.track()`` and the guardrails of rollout plans: a metric's
kind (how a unit's events become one value) and direction (which way is better) are written
here, and plans, the results endpoint and the controller read them from here instead of
trusting each caller to restate them. Metrics are resources like flags (versions, history,
audit, ``If-Match``) but are not part of the rules document served to SDKs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from rollwise._parse import KEY_PATTERN
from rollwise.errors import Problem

__all__ = [
    "DIRECTIONS",
    "KINDS",
    "Metric",
    "finite_number",
    "parse_metric",
    "tolerance_sign_problem",
]

KINDS = ("binary", "mean", "count", "ratio")
DIRECTIONS = ("higher_is_better", "lower_is_better")
_FIELDS = frozenset(
    {"kind", "direction", "numerator", "denominator", "unit", "description",
     "default_tolerance", "owner", "version"}
)  # fmt: skip


@attrs.frozen
class Metric:
    key: str
    kind: Literal["binary", "mean", "count", "ratio"]
    direction: Literal["higher_is_better", "lower_is_better"]
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


def _text(data: Mapping[str, Any], name: str, limit: int, out: list[Problem]) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        out.append(Problem(name, f"must be a string of at most {limit} characters"))
        return ""
    return value


def _metric_key(data: Mapping[str, Any], name: str, out: list[Problem]) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or KEY_PATTERN.fullmatch(value) is None:
        out.append(Problem(name, "must be a metric key (1-128 letters, digits, '_', '.', '-')"))
        return None
    return value


def parse_metric(key: str, data: Any) -> tuple[Metric | None, list[Problem]]:
    """Validate a catalogue entry; every problem names its field."""
    if not isinstance(data, Mapping):
        return None, [Problem("", "must be an object")]
    out = [Problem(str(k), "unknown field") for k in data if k not in _FIELDS]
    kind = data.get("kind")
    if kind not in KINDS:
        out.append(Problem("kind", f"is required: one of {', '.join(KINDS)}"))
    direction = data.get("direction")
    if direction not in DIRECTIONS:
        out.append(Problem("direction", f"is required: one of {', '.join(DIRECTIONS)}"))
    numerator = _metric_key(data, "numerator", out)
    denominator = _metric_key(data, "denominator", out)
    if kind == "ratio" and denominator is None and data.get("denominator") is None:
        out.append(Problem("denominator", "a ratio metric needs its denominator metric"))
    if kind in KINDS and kind != "ratio":
        out += [Problem(f, "only a ratio metric has one") for f in ("numerator", "denominator")
                if data.get(f) is not None]  # fmt: skip
    tolerance = finite_number(data.get("default_tolerance", 0.0))
    if tolerance is None:
        out.append(Problem("default_tolerance", "must be a finite number"))
        tolerance = 0.0
    elif direction in DIRECTIONS:
        harm = "increase" if direction == "lower_is_better" else "decrease"
        problem = tolerance_sign_problem(harm, float(tolerance))
        if problem:
            out.append(Problem("default_tolerance", problem))
    unit = _text(data, "unit", 50, out)
    description = _text(data, "description", 2000, out)
    owner = _text(data, "owner", 200, out)
    if out:
        return None, out
    metric = Metric(
        key=key,
        kind=kind,  # type: ignore[arg-type]
        direction=direction,  # type: ignore[arg-type]
        numerator=numerator if kind == "ratio" else None,
        denominator=denominator,
        unit=unit,
        description=description,
        default_tolerance=float(tolerance),
        owner=owner,
    )
    return metric, []

"""Durations: the one grammar of every span of time rollwise reads.

Rollout plans (``min_duration``, ``attribution_window``, ``outcome_delay``), the results'
``window``, the CLI's ``--since``/``--until``/``--expires`` spans, and the server's and the
SDK's time settings all parse with ``parse_duration`` (specified in ``docs/spec/durations.md``)::

    duration = number | part { part }      "90" (seconds), "1h30m", "2w", "1.5h", "500ms"
    part     = number unit                 units from the largest to the smallest, each once
    unit     = "w" | "d" | "h" | "m" | "s" | "ms"
    number   = digit { digit } [ "." digit { digit } ]

Units are lowercase (``M`` is neither minutes nor months), a week is 7 days and a day 86,400 s;
no sign, exponent or inner space; spaces around are ignored. A bare number is seconds (a JSON
or Python number too, not a boolean). The longest duration is 100 years (``MAX_SECONDS``):
anything longer is a typo.
"""

from __future__ import annotations

import itertools
import math
import re

from rollwise.errors import ConfigurationError

__all__ = [
    "MAX_SECONDS", "PATTERN", "UNITS", "DurationError", "format_duration", "parse_duration",
]  # fmt: skip

UNITS: dict[str, float] = {
    "w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001,
}  # fmt: skip
"""Seconds per unit, from the largest to the smallest."""
MAX_SECONDS = 100 * 365.25 * 86_400.0
"""The longest duration (100 Julian years)."""

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PART = re.compile(rf"({_NUMBER})(ms|w|d|h|m|s)")
_PARTS = re.compile(rf"(?:{_NUMBER}(?:ms|w|d|h|m|s))+")
_BARE = re.compile(_NUMBER)
PATTERN = rf"{_NUMBER}|(?:{_NUMBER}(?:ms|w|d|h|m|s))+"
"""The grammar as a regular expression (Python and ECMA 262) for schemas; it does not check
the order of the units, which ``parse_duration`` does."""
_ORDER = list(UNITS)
_LONGEST_TEXT = 100
_UNITS_TEXT = "units w d h m s ms, lowercase, largest first"
_EXAMPLES = "90s, 30m, 1h30m, 14d, 2w or 500ms"


class DurationError(ConfigurationError):
    """A value that is not a duration. The message is ``"<field>: <shown> <reason>"``, where
    ``shown`` is the value's ``repr`` (cut at 60 characters); ``detail`` is the message without
    the field (``"'5x' is not a duration: write ..."``), for callers that name it their way.
    ``hint`` says what a duration looks like; ``malformed``: the value is not in the grammar at
    all (rather than too long, negative, or with its units out of order)."""

    def __init__(
        self, field: str, value: object, reason: str, *, hint: str = "", malformed: bool = False
    ) -> None:
        self.field = field
        self.shown = _shown(value)
        self.reason = reason
        self.hint = hint
        self.malformed = malformed
        self.detail = f"{self.shown} {reason}"
        super().__init__(f"{field}: {self.detail}")


def parse_duration(
    value: object, field: str, *, positive: bool = False, bare_seconds: bool = True
) -> float:
    """Seconds of ``value`` (text in the grammar, or a number of seconds).

    Raises ``DurationError`` (a ``ConfigurationError``, so a ``ValueError``) whose message
    starts with ``field`` and says what a duration looks like. ``positive``: 0 is refused too.
    ``bare_seconds=False`` refuses a number without a unit (where it could be read as something
    else, as the CLI's ``--since 2026``)."""
    seconds = _seconds(value, field, bare_seconds)
    if seconds > MAX_SECONDS:
        raise DurationError(field, value, "is longer than 100 years")
    if positive and seconds <= 0:
        raise DurationError(field, value, "is not longer than 0: a positive duration is needed")
    return seconds


def _seconds(value: object, field: str, bare_seconds: bool) -> float:
    hint = f"write a number with a unit such as {_EXAMPLES} ({_UNITS_TEXT})" + (
        ", or a number of seconds" if bare_seconds else ""
    )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not bare_seconds:
            raise DurationError(field, value, f"needs a unit: {hint}")
        if 0 <= value <= MAX_SECONDS:  # an int too large for a float, or NaN, fails here
            return abs(float(value))  # never -0.0
        if value > MAX_SECONDS:
            raise DurationError(field, value, "is longer than 100 years")
        if value < 0:
            raise DurationError(field, value, "is negative: a duration is 0 or more")
        raise DurationError(field, value, f"is not a duration: {hint}", hint=hint, malformed=True)
    if not isinstance(value, str) or len(value) > _LONGEST_TEXT:
        raise DurationError(field, value, f"is not a duration: {hint}", hint=hint, malformed=True)
    text = value.strip()
    if _BARE.fullmatch(text):
        if bare_seconds:
            return float(text)
        raise DurationError(field, value, f"needs a unit, e.g. {text}s or {text}d")
    if _PARTS.fullmatch(text) is None:
        raise DurationError(field, value, f"is not a duration: {hint}", hint=hint, malformed=True)
    parts = [(float(number), unit) for number, unit in _PART.findall(text)]
    ranks = [_ORDER.index(unit) for _, unit in parts]
    if any(later <= earlier for earlier, later in itertools.pairwise(ranks)):
        raise DurationError(
            field, value,
            "has its units out of order: write them from the largest to the smallest, each "
            "once (1h30m, not 30m1h)",
        )  # fmt: skip
    return math.fsum(number * UNITS[unit] for number, unit in parts)


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts
        return "a number of thousands of digits"
    return text if len(text) <= 60 else f"{text[:57]}..."


def format_duration(seconds: float) -> str:
    """The shortest text of ``seconds`` in its largest exact unit, to the millisecond
    (``1209600`` → ``"2w"``, ``5400`` → ``"90m"``, ``0.25`` → ``"250ms"``); ``parse_duration``
    reads it back."""
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS):
        raise ValueError(f"format_duration: {seconds!r} is not a duration of 0 to 100 years")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = round(UNITS[unit] * 1000)
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"

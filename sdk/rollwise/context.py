"""Coercion of evaluation-context values: numbers, strings, units, semantic versions, dates.

These functions define what the operators of ``docs/spec/rules.md`` see. They never raise: a
value that cannot be coerced gives ``None``, and the condition that asked does not match.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "SemVer",
    "as_datetime",
    "as_number",
    "as_string",
    "as_unit",
    "parse_datetime",
    "parse_semver",
]

SemVer = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]
"""A precedence key: major, minor, patch, 1 for a release (0 for a pre-release), identifiers."""

_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)


def as_number(value: Any) -> float | int | None:
    """An int or finite float (not bool), or a string that ``float()`` parses to a finite value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def as_string(value: Any) -> str | None:
    """A string as itself, an int (not bool) as ``str(value)``; anything else is ``None``."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(int(value))
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return None
    return None


def as_unit(value: Any) -> str | None:
    """A bucketing unit: a non-empty string, or an int (not bool) as its decimal string."""
    unit = as_string(value)
    return unit if unit else None


def parse_semver(value: Any) -> SemVer | None:
    """Semantic Versioning 2.0.0 precedence key of ``value``; a leading ``v`` is allowed.

    Build metadata is ignored; anything but a full ``MAJOR.MINOR.PATCH`` gives ``None``.
    """
    if not isinstance(value, str):
        return None
    match = _SEMVER.fullmatch(value)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    try:  # int() refuses more digits than sys.get_int_max_str_digits() allows
        if pre is None:
            return (int(major), int(minor), int(patch), 1, ())
        identifiers = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in pre.split(".")
        )
        return (int(major), int(minor), int(patch), 0, identifiers)
    except ValueError:
        return None


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date-time as an aware UTC datetime; no offset means UTC, a date is midnight."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the offset leaves years 1-9999
        return None


def as_datetime(value: Any) -> datetime | None:
    """An evaluation value as an aware datetime: ISO 8601 strings, datetimes and dates."""
    if isinstance(value, str):
        return parse_datetime(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None

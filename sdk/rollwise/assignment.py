"""The result of evaluating a flag for a context, in the OpenFeature vocabulary."""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = ["Assignment", "ErrorCode", "Reason"]


class Reason(enum.StrEnum):
    """Why a variant was served (OpenFeature's resolution reasons)."""

    TARGETING_MATCH = "TARGETING_MATCH"
    """A rule matched and served one variant."""
    SPLIT = "SPLIT"
    """A rule matched and the unit was bucketed into one arm of a weighted split."""
    DEFAULT = "DEFAULT"
    """No rule matched: the flag's ``default_variant``."""
    DISABLED = "DISABLED"
    """The flag is disabled (killed) or outside its schedule: the flag's ``off_variant``."""
    ERROR = "ERROR"
    """Evaluation failed; see ``error_code``. The flag's ``off_variant`` or the caller's default."""
    STALE = "STALE"
    """Served from rules known to be out of date (reserved for the online client)."""


class ErrorCode(enum.StrEnum):
    """What went wrong when ``reason`` is ``ERROR`` (OpenFeature's error codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
    PARSE_ERROR = "PARSE_ERROR"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    """A typed accessor asked for another type than the flag's: the caller's default."""
    GENERAL = "GENERAL"


@attrs.frozen
class Assignment:
    """Which variant a flag serves to one context, and why.

    The evaluator returns pre-built instances, so evaluating allocates nothing; ``payload`` is a
    read-only view (mappings and tuples) for the same reason.
    """

    flag: str
    variant: str | None
    reason: Reason
    flag_version: int | None = None
    rule: str | None = None
    payload: Any = None
    error_code: ErrorCode | None = None
    value: Any = attrs.field(default=attrs.Factory(lambda self: self.variant, takes_self=True))
    """The variant's typed value (``Variant.value``; unless given, ``variant``, as a string
    flag's); the caller's default when a typed accessor could not evaluate (an unknown flag, a
    type mismatch, no rules yet)."""

    @property
    def is_error(self) -> bool:
        return self.reason is Reason.ERROR

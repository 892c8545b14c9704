"""Field types shared by the models: keys, reasons, versions, timestamps."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from rollwise._parse import KEY_PATTERN

__all__ = ["KEY_REGEX", "Key", "NullableTimestamp", "Reason", "Timestamp", "Version"]

KEY_REGEX = rf"^{KEY_PATTERN.pattern}(?![\s\S])"
"""``KEY_PATTERN`` anchored for ``re.search`` and ECMA 262 alike ($ would let a final
newline through in Python)."""

Key = Annotated[
    str,
    Meta(
        pattern=KEY_REGEX,
        description="A flag, segment, variant, rule or environment key: 1-128 ASCII letters, "
        "digits, '_', '.' or '-', starting with a letter or digit.",
    ),
]
Reason = Annotated[
    Annotated[str, Meta(max_length=2000)] | None,
    Meta(
        description="Why the change is made; stored in the history and the audit log.",
        extra={"problem": "must be a string of at most 2000 characters"},
    ),
]
MAX_VERSION = 2**62
"""Versions stay far below a 64-bit database integer: a larger one can name no version."""
Version = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_VERSION,
        description="The version this write edits (optimistic concurrency), if If-Match is "
        "absent. Ignored on create.",
        extra={"problem": "must be the integer version being edited"},
    ),
]
_RFC3339 = "RFC 3339, UTC, e.g. 2026-11-01T09:30:00.123456Z."
Timestamp = Annotated[str, Meta(description=_RFC3339, extra_json_schema={"format": "date-time"})]
NullableTimestamp = Annotated[
    str | None, Meta(description=_RFC3339, extra_json_schema={"format": "date-time"})
]

"""Reading the RFC 3339 times clients send: one rule for every endpoint.

A time without an offset is UTC. ``utc_moment`` answers ``None`` for text that is not an ISO
8601 time and raises ``OverflowError`` for one that leaves the calendar once moved to UTC
(``0001-01-01T00:00:00+01:00``), so that each caller can name the problem its own way.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_moment"]


def utc_moment(value: str) -> datetime | None:
    """``value`` as an aware datetime in UTC, ``None`` if it is no ISO 8601 time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except ValueError:
        raise OverflowError(value) from None

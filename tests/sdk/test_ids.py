"""Event ids are UUIDv7 made from the event's time (RFC 9562, section 5.7)."""

from __future__ import annotations

import uuid

from rollwise.ids import event_id


def test_an_id_is_a_version_7_uuid_that_begins_with_the_events_milliseconds() -> None:
    ts = 1_795_000_000.123_9
    parsed = uuid.UUID(event_id(ts))
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == 1_795_000_000_123
    text = event_id(ts)
    assert text == str(uuid.UUID(text))  # the canonical lowercase, hyphenated form


def test_ids_are_unique_and_later_events_sort_later() -> None:
    ids = [event_id(1_795_000_000 + i / 10) for i in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    same_millisecond = {event_id(1_795_000_000.0) for _ in range(20_000)}
    assert len(same_millisecond) == 20_000


def test_the_random_part_is_random() -> None:
    bits = [uuid.UUID(event_id(1_795_000_000.0)).int & ((1 << 62) - 1) for _ in range(2_000)]
    ones = sum(bin(b).count("1") for b in bits) / (62 * len(bits))
    assert 0.48 < ones < 0.52

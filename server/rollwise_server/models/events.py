"""Event batches: what ``POST /api/v1/sdk/exposures`` and ``…/events`` take and answer.

These models state the wire shape of an event. Ingestion does not decode through them: it runs
on the hot path and keeps each valid event of a batch while reporting each invalid one by its
index, so ``ingest.py`` checks events one by one with its own code (a canonical-form fast path,
UUIDs and times normalized, the time window, attribute names the analysis can query). What that
code accepts, these models accept (``tests/server/test_models.py`` checks it on a corpus); it
refuses more (decision 0015 lists what).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from rollwise import limits
from rollwise_server.models.common import Key, Timestamp
from rollwise_server.models.problems import ProblemItem

__all__ = [
    "MAX_ATTRS",
    "MAX_INTEGER",
    "MAX_UNIT_LENGTH",
    "EventError",
    "Exposure",
    "ExposureEvents",
    "IngestResult",
    "Outcome",
    "OutcomeEvents",
    "Prediction",
    "PredictionEvents",
]

MAX_UNIT_LENGTH = 256
MAX_ATTRS = 32
MAX_INTEGER = 2**53
"""Exact in a float, in JSON everywhere, and in a SQLite INTEGER."""
MAX_VALUE = 1e300
"""The largest magnitude of an outcome's value (sums of many stay finite)."""
DEFAULT_MAX_EVENTS = 10_000
"""``max_batch_events`` unless the operator sets it (413 above)."""

_ATTRIBUTE_NAME = Annotated[str, Meta(min_length=1, max_length=limits.MAX_ATTRIBUTE_LENGTH)]
_ATTRIBUTE_VALUE = Annotated[str, Meta(max_length=MAX_UNIT_LENGTH)] | float | bool | None
Attrs = Annotated[
    Annotated[dict[_ATTRIBUTE_NAME, _ATTRIBUTE_VALUE], Meta(max_length=MAX_ATTRS)] | None,
    Meta(
        description=f"Cohort attributes: at most {MAX_ATTRS}, each named by 1-"
        f"{limits.MAX_ATTRIBUTE_LENGTH} characters without control characters, quotes or "
        f"backslashes, and each a string of at most {MAX_UNIT_LENGTH} characters, a finite "
        "number, a boolean or null.",
    ),
]
EventId = Annotated[
    str,
    Meta(
        description="Made by the SDK; a redelivered event with the same id is a duplicate.",
        extra_json_schema={"format": "uuid"},
    ),
]
UnitType = Annotated[str, Meta(min_length=1, max_length=limits.MAX_ATTRIBUTE_LENGTH)]
Unit = Annotated[str, Meta(min_length=1, max_length=MAX_UNIT_LENGTH)]


class Exposure(msgspec.Struct, frozen=True):
    id: EventId
    ts: Timestamp
    flag: Key
    flag_version: Annotated[int, Meta(ge=1, le=MAX_INTEGER)]
    variant: Key
    unit_type: UnitType
    unit: Unit
    rule: Key | None = None
    attrs: Attrs = None


class Outcome(msgspec.Struct, frozen=True):
    id: EventId
    ts: Timestamp
    metric: Key
    unit_type: UnitType
    unit: Unit
    value: Annotated[float, Meta(ge=-MAX_VALUE, le=MAX_VALUE)]
    attrs: Attrs = None


class Prediction(msgspec.Struct, frozen=True):
    """One model's answer in a shadow run: ``label`` or ``score`` when ``status`` is ``ok``,
    neither when it is ``error`` or ``timeout``."""

    id: EventId
    ts: Timestamp
    flag: Key
    flag_version: Annotated[int, Meta(ge=1, le=MAX_INTEGER)]
    variant: Key
    role: Annotated[
        Literal["live", "shadow"],
        Meta(description="live: the served variant; shadow: the candidate, never served."),
    ]
    run: Annotated[
        str,
        Meta(
            description="The shadow run's id, shared by its live and shadow predictions.",
            extra_json_schema={"format": "uuid"},
        ),
    ]
    unit_type: UnitType
    unit: Unit
    latency_ms: Annotated[float, Meta(ge=0, le=86_400_000)]
    status: Literal["ok", "error", "timeout"]
    label: Annotated[str, Meta(min_length=1, max_length=MAX_UNIT_LENGTH)] | None = None
    score: Annotated[float, Meta(ge=-MAX_VALUE, le=MAX_VALUE)] | None = None
    attrs: Attrs = None


_BATCH = (
    f'{{"events": [...]}} or a bare array; at most {DEFAULT_MAX_EVENTS} events by default '
    "(max_batch_events; 413 above). Each event is validated on its own: invalid ones are "
    "counted and reported, the others stored."
)


class ExposureEvents(msgspec.Struct, frozen=True):
    __doc__ = _BATCH

    events: Annotated[list[Exposure], Meta(max_length=DEFAULT_MAX_EVENTS)]


class OutcomeEvents(msgspec.Struct, frozen=True):
    __doc__ = _BATCH

    events: Annotated[list[Outcome], Meta(max_length=DEFAULT_MAX_EVENTS)]


class PredictionEvents(msgspec.Struct, frozen=True):
    __doc__ = _BATCH

    events: Annotated[list[Prediction], Meta(max_length=DEFAULT_MAX_EVENTS)]


class EventError(msgspec.Struct, frozen=True):
    index: Annotated[int, Meta(ge=0)]
    id: str | None
    problems: list[ProblemItem]


class IngestResult(msgspec.Struct, frozen=True):
    accepted: Annotated[int, Meta(ge=0, description="Newly stored.")]
    duplicates: Annotated[int, Meta(ge=0, description="Already stored (same id): nothing added.")]
    rejected: Annotated[int, Meta(ge=0)]
    errors: Annotated[
        list[EventError],
        Meta(max_length=100, description="The first 100 rejected events and why."),
    ]

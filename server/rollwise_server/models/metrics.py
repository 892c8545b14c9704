"""The metric catalogue: what ``/api/v1/envs/{env}/metrics`` takes and answers.

``MetricEntry`` is a catalogue entry as stored; ``MetricWrite`` the body of a create or
replace (the entry, its key and reason, and the fields of an answer, ignored, so that an
answer can be sent back). The rules across fields (only a ratio has a numerator and a
denominator, and needs the latter; the tolerance's sign follows the direction) are checked by
``catalogue.parse_metric`` and stated for OpenAPI in ``MetricWrite.openapi``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from rollwise_server.models.common import KEY_REGEX, Key, Reason, Timestamp, Version

__all__ = ["Direction", "Metric", "MetricEntry", "MetricKind", "MetricList", "MetricWrite"]

MetricKind = Literal["binary", "mean", "count", "ratio"]
Direction = Literal["higher_is_better", "lower_is_better"]

_KIND = Annotated[
    MetricKind,
    Meta(
        description="How a unit's events become its value: binary (1 if an event has a value "
        "> 0, else 0), mean (of its values), count (of its events), ratio (the sum of the "
        "numerator over the sum of the denominator).",
        extra={"problem": "is required: one of binary, mean, count, ratio"},
    ),
]
_DIRECTION = Annotated[
    Direction,
    Meta(
        description="Which way is better; a guardrail's harm is the other way.",
        extra={"problem": "is required: one of higher_is_better, lower_is_better"},
    ),
]
_METRIC_KEY = Annotated[
    str,
    Meta(
        pattern=KEY_REGEX,
        extra={"problem": "must be a metric key (1-128 letters, digits, '_', '.', '-')"},
    ),
]
_NUMERATOR = "A ratio's numerator: the tracked metric summed on top (by default the metric's own "
_NUMERATOR += "key). Only a ratio has one."
_DENOMINATOR = "A ratio's denominator: the tracked metric summed below. A ratio needs one; only "
_DENOMINATOR += "a ratio has one."
_TOLERANCE = (
    "The change that a guardrail on the metric tolerates unless its plan says otherwise, "
    "signed as the harmful change: >= 0 for lower_is_better, <= 0 for higher_is_better."
)


_UNIT = Annotated[
    Annotated[str, Meta(max_length=50)] | None,
    Meta(
        description="The unit of a value, e.g. ms or EUR. At most 50 characters; null is ''.",
        extra={"problem": "must be a string of at most 50 characters"},
    ),
]
_WHAT = Annotated[
    Annotated[str, Meta(max_length=2000)] | None,
    Meta(
        description="What the metric measures. At most 2000 characters; null is ''.",
        extra={"problem": "must be a string of at most 2000 characters"},
    ),
]
_OWNER = Annotated[
    Annotated[str, Meta(max_length=200)] | None,
    Meta(
        description="Who answers for it (a person or a team). At most 200 characters; null is ''.",
        extra={"problem": "must be a string of at most 200 characters"},
    ),
]
_FINITE = Annotated[
    float, Meta(description=_TOLERANCE, extra={"problem": "must be a finite number"})
]
_IGNORED = Annotated[
    Any, Meta(description="Ignored: the server sets it (so that a GET answer can be sent back).")
]


class MetricEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A catalogue entry, as ``parse_metric`` reads it."""

    kind: _KIND
    direction: _DIRECTION
    numerator: Annotated[_METRIC_KEY | None, Meta(description=_NUMERATOR)] = None
    denominator: Annotated[_METRIC_KEY | None, Meta(description=_DENOMINATOR)] = None
    unit: _UNIT = ""
    description: _WHAT = ""
    default_tolerance: _FINITE = 0.0
    owner: _OWNER = ""
    version: Version | None = None


class MetricWrite(MetricEntry, frozen=True, forbid_unknown_fields=True):
    """A metric of the environment's catalogue, plus its key. Unknown fields are 422, and so
    is every problem with the fields, each with its path."""

    key: Annotated[Key, Meta(description="Required on create; ignored on replace.")] | UnsetType = (
        UNSET
    )
    reason: Reason = None
    archived: _IGNORED = None
    updated_at: _IGNORED = None
    updated_by: _IGNORED = None
    stale: _IGNORED = None

    openapi: ClassVar[dict[str, Any]] = {
        "allOf": [
            {  # only a ratio has a numerator and a denominator, and it needs the latter
                "oneOf": [
                    {
                        "required": ["denominator"],
                        "properties": {
                            "kind": {"const": "ratio"},
                            "denominator": {"$ref": "#/components/schemas/key"},
                        },
                    },
                    {
                        "properties": {
                            "kind": {"enum": ["binary", "mean", "count"]},
                            "numerator": {"type": "null"},
                            "denominator": {"type": "null"},
                        }
                    },
                ]
            },
            {  # the tolerated change is signed as the harm
                "oneOf": [
                    {
                        "properties": {
                            "direction": {"const": "lower_is_better"},
                            "default_tolerance": {"minimum": 0},
                        }
                    },
                    {
                        "properties": {
                            "direction": {"const": "higher_is_better"},
                            "default_tolerance": {"maximum": 0},
                        }
                    },
                ]
            },
        ]
    }


class Metric(msgspec.Struct, frozen=True, omit_defaults=True):
    """A metric of the catalogue, with its key, version and metadata (numerator and
    denominator for a ratio only)."""

    key: Key
    kind: _KIND
    direction: _DIRECTION
    unit: str
    description: str
    default_tolerance: float
    owner: str
    version: Annotated[int, Meta(ge=1)]
    archived: Annotated[
        bool, Meta(description="Archived (deleted): out of the rules document, history kept.")
    ]
    updated_at: Timestamp
    updated_by: Annotated[
        str, Meta(description="The actor of the change: the owner of the token used.")
    ]
    numerator: Annotated[str, Meta(description=_NUMERATOR)] | UnsetType = UNSET
    denominator: Annotated[str, Meta(description=_DENOMINATOR)] | UnsetType = UNSET


class UndefinedMetric(msgspec.Struct, frozen=True):
    key: str
    events: Annotated[int, Meta(ge=1)]
    last_seen: Annotated[str, Meta(description="The ts of its latest event.")]


class MetricList(msgspec.Struct, frozen=True):
    metrics: list[Metric]
    undefined: Annotated[
        list[UndefinedMetric],
        Meta(
            description="Metrics that outcome events were sent for in the environment but "
            "that the catalogue does not define (as a metric, or as a ratio's numerator or "
            "denominator): define them before a guardrail or a results query uses them."
        ),
    ]

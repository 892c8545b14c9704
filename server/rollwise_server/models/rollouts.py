"""Rollouts: the plan a ``PUT …/rollout`` takes, and the rollout it answers.

The models say each field's type and bounds. ``rollouts.plan.parse_plan`` decodes with them and
then checks what depends on the flag, the metric catalogue and the fields together (variants and
rule of the flag, shares that grow, cohorts of the flag, bands and values of declared cohorts,
a tolerance signed as the harm, durations in the one duration grammar, cells of a crossing).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from rollwise.analysis.reduce import MAX_BANDS
from rollwise.durations import PATTERN as DURATION_PATTERN
from rollwise_server.models.common import Key, Reason, Timestamp, Version
from rollwise_server.models.metrics import MetricKind

__all__ = [
    "MAX_GUARDRAILS",
    "MAX_STAGES",
    "MAX_VALUES",
    "Approval",
    "Guardrail",
    "Rollout",
    "RolloutPlan",
    "RolloutStage",
    "RolloutState",
    "RolloutStatus",
]

MAX_STAGES = 20
"""Stages of a plan: a ramp needs a handful; the bound keeps a plan (and each controller round
over it) small."""
MAX_GUARDRAILS = 20
"""Guardrails of a plan: each is a family of tests the controller reduces every round."""
MAX_VALUES = 64
"""Declared values (and the top K) of one categorical cohort attribute."""
_LARGEST = 1.7e308  # a bound that refuses NaN and the infinities (Python dicts can hold them)

RolloutStatus = Literal[
    "draft", "running", "paused", "awaiting_approval", "errored", "completed", "rolled_back",
    "aborted",
]  # fmt: skip
Harm = Literal["increase", "decrease"]

Duration = Annotated[
    int | float | str,
    Meta(
        # read by rollwise.durations.parse_duration, whose problems say what a duration looks
        # like; the schema states the grammar
        extra_json_schema={
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": rf"^\s*(?:{DURATION_PATTERN})\s*$", "maxLength": 100},
            ]
        },
        extra={"problem": "must be seconds or a duration such as 90s, 30m, 1h30m or 2w"},
    ),
]
Finite = Annotated[
    float, Meta(ge=-_LARGEST, le=_LARGEST, extra={"problem": "must be a finite number"})
]
_NAME = Annotated[str, Meta(min_length=1)]
_CELLS = Annotated[int, Meta(ge=2, le=10**9)]


class RolloutStage(msgspec.Struct, frozen=True):
    share: Annotated[
        float,
        Meta(
            gt=0,
            le=1,
            description="The candidate's share of the rule's traffic, growing from stage to stage.",
            extra={"problem": "must be in (0.0, 1.0]"},
        ),
    ]
    min_duration: Annotated[
        Duration,
        Meta(
            description="How long the stage lasts at least: seconds, or a duration such as "
            "90s, 1h30m, 1d or 2w (docs/spec/durations.md)."
        ),
    ] = 0
    min_units: Annotated[
        int,
        Meta(
            ge=0,
            description="Exposed units needed in each arm before the stage may end.",
            extra={"problem": "must be a non-negative integer"},
        ),
    ] = 0
    approval: Annotated[
        bool,
        Meta(
            description="Advancing past the stage needs an approver.",
            extra={"problem": "must be true or false"},
        ),
    ] = False


class Guardrail(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A metric the candidate must not harm. A new plan's guardrail names a metric of the
    environment's catalogue; its kind, harm, denominator, numerator and tolerance default to
    the catalogue's (those stated must agree with it), and its cohorts must be cohort
    attributes of the flag. Unknown fields are 422."""

    metric: Annotated[str, Meta(min_length=1, extra={"problem": "must be a metric name"})]
    kind: Annotated[
        MetricKind | None, Meta(extra={"problem": "must be binary, mean, count or ratio"})
    ] = None
    harm: Annotated[
        Harm | None,
        Meta(
            description="The direction in which the metric gets worse.",
            extra={"problem": "must be increase or decrease"},
        ),
    ] = None
    tolerance: Annotated[
        Finite | None,
        Meta(
            description="The change tolerated, signed as the harmful change: <= 0 when a "
            "decrease harms (e.g. -0.01), >= 0 when an increase harms (e.g. 0.01); 0: any harm "
            "counts. With relative, a fraction of the control's value.",
            extra={"problem": "must be a finite number"},
        ),
    ] = None
    relative: Annotated[bool, Meta(extra={"problem": "must be true or false"})] = False
    cohorts: Annotated[
        list[_NAME],
        Meta(
            description="Cohort attributes to guard fairness on: a cohort worse off beyond the "
            "tolerance, or worse off and left behind the rest beyond the gap tolerance, is a "
            "breach.",
            extra={"problem": "must be a list of attribute names"},
        ),
    ] = []
    bands: Annotated[
        dict[
            str,
            Annotated[
                list[Finite],
                Meta(
                    min_length=1,
                    max_length=MAX_BANDS,
                    extra={
                        "problem": f"must be a list of 1 to {MAX_BANDS} strictly increasing "
                        "finite numbers"
                    },
                ),
            ],
        ],
        Meta(
            description="Strictly increasing finite bin edges for numeric cohorts, by cohort "
            "attribute: the cohorts are the bands and missing."
        ),
    ] = {}
    values: Annotated[
        dict[
            str,
            Annotated[
                list[_NAME],
                Meta(
                    min_length=1,
                    max_length=MAX_VALUES,
                    extra_json_schema={"uniqueItems": True},
                    extra={
                        "problem": f"must be a list of 1 to {MAX_VALUES} distinct non-empty strings"
                    },
                ),
            ],
        ],
        Meta(
            description="Declared values of categorical cohorts, by attribute: one cohort each "
            "and (other) for the rest."
        ),
    ] = {}
    top: Annotated[
        dict[
            str,
            Annotated[
                int,
                Meta(
                    ge=1,
                    le=MAX_VALUES,
                    extra={"problem": f"must be an integer from 1 to {MAX_VALUES}"},
                ),
            ],
        ],
        Meta(
            description="For a categorical cohort without declared values: its K largest "
            "values are cohorts, the rest (other). Default 10."
        ),
    ] = {}
    gap_tolerance: Annotated[
        Finite | None,
        Meta(
            description="The widening of a cohort's gap to the rest that is tolerated, signed "
            "like tolerance; null: the tolerance.",
            extra={"problem": "must be a finite number"},
        ),
    ] = None
    crossings: Annotated[
        list[
            Annotated[
                list[_NAME],
                Meta(
                    min_length=2,
                    max_length=2,
                    extra={"problem": "must be two different attributes of its cohorts"},
                ),
            ]
        ],
        Meta(
            max_length=4,
            description="Intersectional cohorts: pairs of its cohort attributes; every cell is "
            "a cohort of the fixed family (at most 1,024 cells).",
            extra={"problem": "must be a list of at most 4 pairs of attributes"},
        ),
    ] = []
    min_units_per_cell: Annotated[
        _CELLS | None,
        Meta(
            description="Units in each arm of a crossing's cell before it can show harm; null: "
            "the plan's min_units_for_harm.",
            extra={"problem": "must be an integer from 2 to 1,000,000,000"},
        ),
    ] = None
    denominator: Annotated[
        str | None,
        Meta(
            description="A ratio's denominator metric.",
            extra={"problem": "must be a metric name"},
        ),
    ] = None
    numerator: Annotated[
        str | None,
        Meta(
            description="A ratio's numerator, when it is not the metric itself.",
            extra={"problem": "must be a metric name"},
        ),
    ] = None


class RolloutPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A rollout plan: stages that raise the candidate's share of one split rule of the flag,
    guardrails, the sample-ratio check and a deadline. Every problem is 422 with its path;
    unknown fields are 422. Read back, every default is filled in and durations are
    seconds."""

    control: Annotated[str, Meta(description="The known-good variant.")]
    candidate: Annotated[str, Meta(description="The new variant (not the control).")]
    rule: Annotated[
        str,
        Meta(
            description="The id of the flag's rule that the rollout drives: a split between "
            "control and candidate only."
        ),
    ]
    stages: Annotated[
        list[RolloutStage],
        Meta(
            min_length=1,
            extra_json_schema={"maxItems": MAX_STAGES},  # counted by parse_plan, which says so
            extra={"problem": "must be a non-empty list"},
        ),
    ]
    guardrails: Annotated[
        list[Guardrail],
        Meta(extra_json_schema={"maxItems": MAX_GUARDRAILS}, extra={"problem": "must be a list"}),
    ] = []
    srm: Annotated[
        bool,
        Meta(
            description="Check each stage's sample ratio against its weights.",
            extra={"problem": "must be true or false"},
        ),
    ] = True
    alpha: Annotated[
        float,
        Meta(
            gt=0,
            le=0.5,
            description="The false-rollback rate the whole plan may have.",
            extra={"problem": "must be in (0.0, 0.5]"},
        ),
    ] = 0.05
    tuning: Annotated[
        float,
        Meta(
            ge=1,
            le=_LARGEST,
            description="The units (both arms) at which the always-valid intervals are tightest.",
            extra={"problem": "must be in [1.0, inf)"},
        ),
    ] = 5000.0
    deadline: Annotated[
        str | None,
        Meta(
            description="The rollout must complete by then, or it is a breach.",
            extra_json_schema={"format": "date-time"},
            extra={"problem": "must be an RFC 3339 date-time or null"},
        ),
    ] = None
    on_breach: Annotated[
        Literal["rollback", "pause"], Meta(extra={"problem": "must be rollback or pause"})
    ] = "rollback"
    attribution_window: Annotated[
        Duration,
        Meta(description="Outcomes count for this long (> 0) after a unit's first exposure."),
    ] = "14d"
    outcome_delay: Annotated[
        Duration,
        Meta(description="Units first exposed more recently are left out of the evidence."),
    ] = "60s"
    min_units_for_harm: Annotated[
        int,
        Meta(
            ge=2,
            le=10**9,
            description="Units needed in each arm of a scope (overall, or a cohort) before it "
            "can show harm.",
            extra={"problem": "must be an integer from 2 to 1,000,000,000"},
        ),
    ] = 100
    reason: Reason = None
    version: Annotated[
        Version | None,
        Meta(
            description="The rollout's version this edits, if If-Match is absent; by default "
            "its current version."
        ),
    ] = None


class Approval(msgspec.Struct, frozen=True):
    stage: Annotated[int, Meta(ge=1)]
    by: str
    at: float


class RolloutState(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where the rollout is. The controller and the transitions add more members (timestamps
    in Unix seconds): an answer passes the stored state through, and this model documents the
    members clients read."""

    status: Annotated[
        RolloutStatus,
        Meta(
            description="draft -> running <-> paused; running -> awaiting_approval -> running; "
            "running, paused or awaiting_approval -> rolled_back or aborted; running or "
            "awaiting_approval -> completed (after the last stage); an ended rollout can start "
            "again. While it is running, paused or awaiting approval the rollout is active: "
            "its plan is frozen and it owns its flag."
        ),
    ]
    stage: (
        Annotated[int, Meta(ge=1, description="The current stage, counted from 1 (once started).")]
        | UnsetType
    ) = UNSET
    started_by: str | UnsetType = UNSET
    plan_by: Annotated[str | None, Meta(description="Who wrote the plan.")] | UnsetType = UNSET
    approvals: list[Approval] | UnsetType = UNSET
    end_reason: (
        Annotated[
            str | None,
            Meta(description="Why it ended: the reason given, or killed (the flag was killed)."),
        ]
        | UnsetType
    ) = UNSET
    evidence: Annotated[dict[str, Any], Meta(description="The latest evidence.")] | UnsetType = (
        UNSET
    )


class Rollout(msgspec.Struct, frozen=True):
    flag: Key
    env: Key
    version: Annotated[int, Meta(ge=1)]
    plan: RolloutPlan
    state: Annotated[
        dict[str, Any],
        Meta(extra_json_schema={"$ref": "#/components/schemas/RolloutState"}),
    ]
    updated_at: Timestamp

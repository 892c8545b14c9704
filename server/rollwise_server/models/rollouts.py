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
    "MAX_CANDIDATES",
    "MAX_GUARDRAILS",
    "MAX_SCORES",
    "MAX_STAGES",
    "MAX_VALUES",
    "Approval",
    "Guardrail",
    "Lessons",
    "LessonsWrite",
    "Rollout",
    "RolloutAction",
    "RolloutPlan",
    "RolloutRun",
    "RolloutRuns",
    "RolloutStage",
    "RolloutState",
    "RolloutStatus",
    "ShadowCriteria",
    "ShadowScore",
]

MAX_STAGES = 20
"""Stages of a plan: a ramp needs a handful; the bound keeps a plan (and each controller round
over it) small."""
MAX_GUARDRAILS = 20
"""Guardrails of a plan: each is a family of tests the controller reduces every round."""
MAX_CANDIDATES = 2
"""Candidates of a plan. The managed split lays them out as ``[first, control, second]``: the
first grows from the bottom of the hash space and the second from the top, so that raising
their shares (and dropping either) moves no unit out of a candidate. A third would sit between
two arms that both grow, and a ramp would move its units (a variant appears once per split,
docs/spec/rules.md), so the bound is 2 (docs/decisions/0021-multi-candidate-rollouts.md)."""
"""Guardrails of a plan: each is a family of tests the controller reduces every round."""
MAX_VALUES = 64
"""Declared values (and the top K) of one categorical cohort attribute."""
MAX_SCORES = 10
"""Paired score checks of a shadow stage."""
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


SCORE_RULES = ("match", "brier", "absolute_error", "squared_error")
"""How a model's prediction and a unit's outcome make the unit's score in a shadow stage."""


class ShadowScore(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A paired check of a shadow stage: each unit both models scored gets a score per model
    from its prediction and its outcome on ``metric`` (the truth, joined by unit), and the
    candidate must be shown non-inferior to the served model overall, and harm no cohort."""

    metric: Annotated[
        str,
        Meta(
            min_length=1,
            description="The catalogue metric whose outcome is the truth (binary or mean).",
            extra={"problem": "must be a metric name"},
        ),
    ]
    rule: Annotated[
        Literal["match", "brier", "absolute_error", "squared_error"],
        Meta(
            description="match: 1 when the predicted label is the outcome (higher is better); "
            "brier, absolute_error, squared_error: the score's error (lower is better).",
            extra={"problem": "must be match, brier, absolute_error or squared_error"},
        ),
    ]
    positive: Annotated[
        Annotated[str, Meta(min_length=1, extra={"problem": "must be a non-empty label"})] | None,
        Meta(
            description="match on a binary metric: the label that predicts 1 (every other "
            "label predicts 0); null: labels true/1 predict 1."
        ),
    ] = None
    tolerance: Annotated[
        Finite,
        Meta(
            description="The worsening of the mean score tolerated, signed as the harm: <= 0 "
            "for match, >= 0 for the error rules; 0: the candidate must be shown better.",
            extra={"problem": "must be a finite number"},
        ),
    ] = 0.0
    cohorts: Annotated[
        list[_NAME],
        Meta(
            description="Cohort attributes: harm in any cohort fails the stage.",
            extra={"problem": "must be a list of attribute names"},
        ),
    ] = []
    bands: Annotated[
        dict[str, Annotated[list[Finite], Meta(min_length=1, max_length=MAX_BANDS)]],
        Meta(description="Bin edges of numeric cohorts, as a guardrail's."),
    ] = {}
    values: Annotated[
        dict[str, Annotated[list[_NAME], Meta(min_length=1, max_length=MAX_VALUES)]],
        Meta(description="Declared values of categorical cohorts, as a guardrail's."),
    ] = {}


class ShadowCriteria(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a shadow stage needs before the candidate meets a customer: enough paired units,
    agreement with the served model, a latency budget, few errors, and non-inferior scores."""

    agreement: Annotated[
        Annotated[float, Meta(ge=0, le=1, extra={"problem": "must be in [0.0, 1.0] or null"})]
        | None,
        Meta(description="The least share of paired runs whose labels agree."),
    ] = None
    min_correlation: Annotated[
        Annotated[float, Meta(ge=-1, le=1, extra={"problem": "must be in [-1.0, 1.0] or null"})]
        | None,
        Meta(description="The least correlation of the two models' scores."),
    ] = None
    max_mean_abs_diff: Annotated[
        Annotated[
            float,
            Meta(ge=0, le=_LARGEST, extra={"problem": "must be a finite number >= 0 or null"}),
        ]
        | None,
        Meta(description="The largest mean absolute difference of the two models' scores."),
    ] = None
    latency_p99_ms: Annotated[
        Annotated[
            float,
            Meta(
                gt=0, le=_LARGEST, extra={"problem": "must be a number of milliseconds > 0 or null"}
            ),
        ]
        | None,
        Meta(description="The candidate's latency budget: its p99 in milliseconds."),
    ] = None
    max_error_rate: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="The largest share of the candidate's runs that raise or time out.",
            extra={"problem": "must be in [0.0, 1.0]"},
        ),
    ] = 0.01
    scores: Annotated[
        list[ShadowScore],
        Meta(
            max_length=MAX_SCORES,
            description="Paired non-inferiority checks on the units both models scored.",
            extra={"problem": f"must be a list of at most {MAX_SCORES} checks"},
        ),
    ] = []


class RolloutStage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    share: Annotated[
        Annotated[float, Meta(ge=0, le=1, extra={"problem": "must be in (0.0, 1.0]"})] | None,
        Meta(
            description="The candidate's share of the rule's traffic, growing from stage to "
            "stage; a shadow stage's is 0 (or absent)."
        ),
    ] = None
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
            description="Exposed units needed in each arm before the stage may end (a shadow "
            "stage: units both models scored).",
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
    shadow: Annotated[
        ShadowCriteria | None,
        Meta(
            description="Makes the stage (the first only) a shadow stage: the candidate runs "
            "beside the served model on the flag's shadow units and serves no one "
            "(docs/shadow.md)."
        ),
    ] = None


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


class RolloutPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A rollout plan: stages that raise the candidate's share of one split rule of the flag,
    guardrails, the sample-ratio check and a deadline. Every problem is 422 with its path;
    unknown fields are 422. Read back, every default is filled in and durations are
    seconds."""

    control: Annotated[str, Meta(description="The known-good variant.")]
    candidate: Annotated[
        str | None,
        Meta(
            description="The new variant (not the control). Exactly one of candidate and "
            "candidates."
        ),
    ] = None
    candidates: Annotated[
        Annotated[
            list[str],
            Meta(
                min_length=1,
                max_length=MAX_CANDIDATES,
                extra={"problem": f"must be a list of 1 to {MAX_CANDIDATES} variants"},
            ),
        ]
        | None,
        Meta(
            description="Several new variants, each compared with the control (distinct, "
            "none the control); the stage's share is divided equally between them. Exactly "
            "one of candidate and candidates."
        ),
    ] = None
    rule: Annotated[
        str,
        Meta(
            description="The id of the flag's rule that the rollout drives: a split between "
            "the control and the candidates only."
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


class RolloutAction(msgspec.Struct, frozen=True):
    """The optional body of a rollout action."""

    version: Version | None = None
    reason: Reason = None
    winner: Annotated[
        str | None,
        Meta(
            description="approve, at the last stage of a plan with several candidates: the "
            "surviving candidate that wins (the others are dropped and the winner gets the "
            "stage's whole share). It may be left out when one candidate survives.",
            extra={"problem": "must be a candidate of the plan"},
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
    dropped: (
        Annotated[
            list[dict[str, Any]],
            Meta(
                description="Candidates of a plan with several that were dropped this run: "
                "candidate, stage, by, at, reason (their weight went back to the control)."
            ),
        ]
        | UnsetType
    ) = UNSET
    winner: (
        Annotated[str, Meta(description="The candidate chosen when the rollout completed.")]
        | UnsetType
    ) = UNSET


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


MAX_LESSONS = 20_000
"""Characters of a run's lessons learned."""


class RolloutRun(msgspec.Struct, frozen=True):
    """One run of a flag's rollout (started again after a rollback: a new run); its id is the
    audit id of its ``rollout.start``."""

    id: Annotated[int, Meta(ge=1, description="The audit id of the run's rollout.start.")]
    status: Annotated[
        Literal["active", "completed", "rolled_back", "aborted"],
        Meta(description="active until the run ends."),
    ]
    started_at: Timestamp
    started_by: str
    ended_at: Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]
    end_reason: str | None
    control: str | None
    candidate: str | None
    candidates: (
        Annotated[list[str], Meta(description="A plan with several candidates: all of them.")]
        | UnsetType
    ) = UNSET


class RolloutRuns(msgspec.Struct, frozen=True):
    runs: Annotated[list[RolloutRun], Meta(description="Newest first.")]


class LessonsWrite(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The lessons learned of a rollout run: the whole text (Markdown), replacing the last."""

    text: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_LESSONS,
            description="What the team learned, as Markdown.",
            extra={"problem": f"must be a string of 1 to {MAX_LESSONS} characters"},
        ),
    ]
    reason: Reason = None


class Lessons(msgspec.Struct, frozen=True):
    run: Annotated[int, Meta(ge=1)]
    text: str
    by: str
    at: Timestamp
    edit: Annotated[int, Meta(ge=1, description="The audit id of this edit.")]
    edits: Annotated[int, Meta(ge=1, description="Edits of the run's lessons so far.")]

"""Monitors: the spec a ``PUT …/monitors/{name}`` takes (``monitoring/spec.py`` checks the rest
against the flag, the catalogue and the rollout), and the monitor it answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from rollwise_server.models.common import Key, Reason, Timestamp
from rollwise_server.models.rollouts import Duration, Finite, Guardrail

__all__ = ["MAX_MONITOR_METRICS", "Monitor", "MonitorBaseline", "MonitorList", "MonitorSpec"]

MAX_MONITOR_METRICS = 10
"""Metrics of one monitor: each is a family of streams checked every interval."""


class MonitorBaseline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a batch is compared with."""

    kind: Annotated[
        Literal["window", "holdout", "rollout"],
        Meta(
            description="window: the variant's units exposed between since and until; holdout: "
            "the units of another variant (a small long-term holdout on the previous version) "
            "over the trailing window; rollout: the variant's units during the flag's last "
            "completed rollout.",
            extra={"problem": "must be window, holdout or rollout"},
        ),
    ]
    since: Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})] = None
    until: Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})] = None
    variant: Annotated[str | None, Meta(description="The holdout's variant.")] = None
    window: Annotated[
        Duration, Meta(description="A holdout's trailing window (a duration, default 7d).")
    ] = "7d"


class MonitorSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A monitor of a flag's serving variant: decay of catalogue metrics (overall and per
    cohort) and drift of the traffic mix, checked every ``interval`` by a CUSUM per stream whose
    false alarms are at most ``alpha`` per ``horizon`` (docs/monitors.md)."""

    variant: Annotated[str, Meta(description="The variant watched: the one that serves.")]
    baseline: MonitorBaseline
    metrics: Annotated[
        list[Guardrail],
        Meta(
            max_length=MAX_MONITOR_METRICS,
            description="Metrics of the catalogue watched for decay, as a plan's guardrails "
            "(tolerance, cohorts, bands, values, top).",
            extra={"problem": f"must be a list of at most {MAX_MONITOR_METRICS} metrics"},
        ),
    ] = []
    drift: Annotated[
        list[Annotated[str, Meta(min_length=1)]],
        Meta(description="Cohort attributes whose traffic mix is watched for drift."),
    ] = []
    drift_bands: Annotated[
        dict[str, Annotated[list[Finite], Meta(min_length=1, max_length=64)]],
        Meta(description="Bin edges of numeric drift attributes."),
    ] = {}
    watch: Annotated[
        Literal["after_rollout", "always"],
        Meta(
            description="after_rollout (the default): no check while the flag's rollout is "
            "active; always: check from now on.",
            extra={"problem": "must be after_rollout or always"},
        ),
    ] = "after_rollout"
    drift_predictions: Annotated[
        bool,
        Meta(description="Watch the distribution of the variant's predictions (shadow runs' "
             "live predictions: labels, or scores in the baseline's deciles) for drift."),
    ] = False  # fmt: skip
    interval: Annotated[Duration, Meta(description="Time between checks (default 10m).")] = "10m"
    horizon: Annotated[
        Duration, Meta(description="The period the false-alarm rate is stated for (30d).")
    ] = "30d"
    alpha: Annotated[
        float,
        Meta(gt=0, le=0.5, description="False alarms per horizon, all streams together.",
             extra={"problem": "must be in (0.0, 0.5]"}),
    ] = 0.05  # fmt: skip
    persistence: Annotated[
        int,
        Meta(ge=1, le=20, description="Consecutive checks above the threshold before it fires.",
             extra={"problem": "must be an integer from 1 to 20"}),
    ] = 2  # fmt: skip
    outcome_delay: Annotated[
        Duration,
        Meta(description="Time for outcomes to reach the server (default 60s): a batch is read "
             "attribution_window + outcome_delay after its end."),
    ] = "60s"  # fmt: skip
    attribution_window: Annotated[
        Duration,
        Meta(description="Outcomes count this long after a unit's exposure (default 10m), on "
             "both sides."),
    ] = "10m"  # fmt: skip
    action: Annotated[
        Literal["notify", "rollback"],
        Meta(
            description="notify: alert, audit, webhook; rollback: also put the flag's rollout "
            "rule back on its control.",
            extra={"problem": "must be notify or rollback"},
        ),
    ] = "notify"
    reason: Reason = None


class Monitor(msgspec.Struct, frozen=True):
    env: Key
    flag: Key
    name: Key
    version: Annotated[int, Meta(ge=1)]
    spec: dict[str, Any]
    state: Annotated[
        dict[str, Any],
        Meta(description="status (ok or alerting), the last check, each stream's statistic, "
             "the alerts."),
    ]  # fmt: skip
    updated_at: Timestamp


class MonitorList(msgspec.Struct, frozen=True):
    monitors: list[Monitor]

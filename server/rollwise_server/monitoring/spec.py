"""A monitor's spec, checked against the flag, the metric catalogue and the flag's rollout, with
every problem named by its path; and what the checks need from it (streams, threshold)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs
import msgspec

from rollwise.analysis.monitoring import cusum_threshold
from rollwise.errors import Problem
from rollwise.rules import Flag
from rollwise_server import models
from rollwise_server.catalogue import Metric
from rollwise_server.models.decoding import in_field_order, problems_of, valid_fields
from rollwise_server.rollouts.plan import Guardrail, duration_field, parse_guardrail
from rollwise_server.rollouts.weights import candidates_of
from rollwise_server.times import utc_moment

__all__ = ["MonitorSpec", "parse_monitor"]


@attrs.frozen
class MonitorSpec:
    variant: str
    baseline: Literal["window", "holdout", "rollout"]
    since: datetime | None
    until: datetime | None
    holdout: str | None
    holdout_window: float
    metrics: tuple[Guardrail, ...]
    drift: tuple[str, ...]
    drift_bands: Mapping[str, tuple[float, ...]]
    drift_predictions: bool
    watch: Literal["after_rollout", "always"]
    interval: float
    horizon: float
    alpha: float
    persistence: int
    outcome_delay: float
    attribution_window: float
    action: Literal["notify", "rollback"]

    @property
    def checks(self) -> int:
        """Checks within the horizon: the false-alarm budget's denominator."""
        return max(int(self.horizon // self.interval), 1)

    @property
    def streams(self) -> int:
        """Detectors watched together (fixed by the spec): each metric overall and in each
        cohort of its fixed families, each drift attribute, and the predictions if watched."""
        metrics = sum(1 + sum(g.family(d) for d in g.cohorts) for g in self.metrics)
        return metrics + len(self.drift) + int(self.drift_predictions)

    @property
    def threshold(self) -> float:
        return cusum_threshold(self.checks, alpha=self.alpha, streams=max(self.streams, 1))

    def to_json(self) -> dict[str, Any]:
        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat().replace("+00:00", "Z")

        baseline: dict[str, Any] = {"kind": self.baseline}
        if self.baseline == "window":
            baseline.update(since=moment(self.since), until=moment(self.until))
        if self.baseline == "holdout":
            baseline.update(variant=self.holdout, window=self.holdout_window)
        return {
            "variant": self.variant, "baseline": baseline,
            "metrics": [g.to_json() for g in self.metrics], "drift": list(self.drift),
            "drift_bands": {k: list(v) for k, v in self.drift_bands.items()},
            "drift_predictions": self.drift_predictions, "watch": self.watch,
            "interval": self.interval, "horizon": self.horizon, "alpha": self.alpha,
            "persistence": self.persistence, "outcome_delay": self.outcome_delay,
            "attribution_window": self.attribution_window, "action": self.action,
        }  # fmt: skip


def parse_monitor(
    data: Any, flag: Flag, catalogue: Mapping[str, Metric] | None,
    rollout_plan: Mapping[str, Any] | None = None,
) -> tuple[MonitorSpec | None, list[Problem]]:  # fmt: skip
    """Validate a monitor spec for ``flag``. With the ``catalogue`` (a new spec) its metrics
    must be defined there and its cohorts and drift attributes must be cohort attributes of the
    flag; ``rollout_plan`` is the flag's rollout plan (a ``rollback`` action and a ``rollout``
    baseline need one whose candidate is the variant). Without the catalogue (a stored spec
    read back) only the shape is checked."""
    body, out = problems_of(models.MonitorSpec, data)
    fields = msgspec.structs.asdict(body) if body else valid_fields(models.MonitorSpec, data)
    fresh = catalogue is not None
    variant = fields.get("variant")
    if variant is not None and variant not in flag.variants:
        out.append(Problem("variant", f"must be a variant of flag {flag.key!r}"))
    metrics = [
        parse_guardrail(raw, f"metrics[{i}].", flag, catalogue, out)
        for i, raw in enumerate(fields.get("metrics", []))
    ]
    for i, name in enumerate(fields.get("drift", [])):
        if fresh and name not in flag.cohort_attributes:
            out.append(Problem(f"drift[{i}]", f"{name!r} is not a cohort attribute of flag "
                               f"{flag.key!r}"))  # fmt: skip
    drift_bands = {k: tuple(v) for k, v in fields.get("drift_bands", {}).items()}
    for name, edges in drift_bands.items():
        if name not in fields.get("drift", []):
            out.append(Problem(f"drift_bands.{name}", f"{name!r} is not one of its drift "
                               "attributes"))  # fmt: skip
        elif not all(a < b for a, b in itertools.pairwise(edges)):
            out.append(Problem(f"drift_bands.{name}", "must be strictly increasing"))
    if fresh and not metrics and not fields.get("drift") and not fields.get("drift_predictions"):
        out.append(Problem("metrics", "a monitor watches at least one metric or drift attribute"))
    baseline = fields.get("baseline")
    since = until = None
    holdout, holdout_window = None, 7 * 86400.0
    kind: Literal["window", "holdout", "rollout"] = "window"
    if isinstance(baseline, models.MonitorBaseline):
        kind = baseline.kind
        if kind == "window":
            since, until = utc_moment(baseline.since or ""), utc_moment(baseline.until or "")
            if since is None:
                out.append(Problem("baseline.since", "a window baseline needs an RFC 3339 start"))
            if until is None:
                out.append(Problem("baseline.until", "a window baseline needs an RFC 3339 end"))
            if since is not None and until is not None and until <= since:
                out.append(Problem("baseline.until", "must be after since"))
        if kind == "holdout":
            holdout = baseline.variant
            if holdout is None or holdout not in flag.variants or holdout == variant:
                out.append(Problem("baseline.variant", f"the holdout must be another variant "
                                   f"of flag {flag.key!r}"))  # fmt: skip
            holdout_window = duration_field(
                baseline.window, "window", "baseline.window", out, positive=True
            )
    needs_rollout = kind == "rollout" or fields.get("action") == "rollback"
    if (
        fresh
        and needs_rollout
        and (rollout_plan is None or variant not in candidates_of(rollout_plan))
    ):
        where = "baseline.kind" if kind == "rollout" else "action"
        out.append(Problem(where, f"needs the flag's rollout plan with candidate {variant!r} "
                           "(its rule is what a rollback puts back on the control)"))  # fmt: skip
    seconds = {
        name: duration_field(fields[name], name, name, out, positive=name != "outcome_delay")
        for name in ("interval", "horizon", "outcome_delay", "attribution_window")
        if name in fields
    }
    if seconds.get("horizon", 1.0) < seconds.get("interval", 0.0):
        out.append(Problem("horizon", "must be at least one interval"))
    if out or body is None:
        return None, in_field_order(models.MonitorSpec, out)
    return MonitorSpec(
        variant=body.variant, baseline=kind, since=since, until=until, holdout=holdout,
        holdout_window=holdout_window, metrics=tuple(metrics), drift=tuple(body.drift),
        drift_bands=drift_bands, drift_predictions=body.drift_predictions, watch=body.watch,
        interval=seconds["interval"], horizon=seconds["horizon"],
        alpha=body.alpha, persistence=body.persistence, outcome_delay=seconds["outcome_delay"],
        attribution_window=seconds["attribution_window"], action=body.action,
    ), []  # fmt: skip

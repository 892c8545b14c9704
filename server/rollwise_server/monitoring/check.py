"""One check of a monitor: the last interval's units (a batch) against the baseline, a score
per stream, each stream's CUSUM one step further, and the alerts that fire.

Streams: each metric overall and in each cohort of its dimensions (bucketed as a guardrail's:
bands and ``missing``, declared values or the top K and ``(other)``), scored by
``decay_score``; each drift attribute, scored by ``mix_score`` on the units per cohort. The
threshold is the spec's (``cusum_threshold`` over its horizon's checks and its streams); the
statistics live in the monitor's state between checks (``docs/monitors.md``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import attrs

from rollwise.analysis.monitoring import Cusum, decay_score, mix_score
from rollwise.analysis.reduce import ReductionResult, ReductionSpec, reduce_spec
from rollwise.analysis.suffstats import SufficientStats
from rollwise_server.monitoring.spec import MonitorSpec
from rollwise_server.rollouts.evidence import buckets, epoch, iso
from rollwise_server.rollouts.plan import Guardrail
from rollwise_server.rollouts.review import runs
from rollwise_server.storage.base import ACTIVE_ROLLOUT, MonitorRecord, Store

__all__ = ["Alert", "Checked", "check"]

MAX_ALERTS = 50
"""Alerts kept in a monitor's state (the audit log keeps every one)."""


@attrs.frozen
class Alert:
    """A stream that fired: what moved, by how much, on which units."""

    stream: str
    kind: str
    """``decay`` or ``drift``."""
    metric: str | None
    cohort: str
    """``overall``, ``country=NL`` or the drift attribute."""
    effect: float | None
    """The batch's mean minus the baseline's (decay)."""
    interval: tuple[float, float] | None
    """``effect``'s interval at the stream's level (alpha over the streams)."""
    baseline_mean: float | None
    batch_mean: float | None
    units: int
    score: float
    statistic: float
    threshold: float
    window: tuple[str, str]
    baseline: Mapping[str, Any]
    at: str

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["interval"] = None if self.interval is None else list(self.interval)
        out["window"] = list(self.window)
        return out

    def text(self, env: str, flag: str, name: str) -> str:
        if self.kind == "drift":
            return (f"rollwise: monitor {name} of {flag} in {env}: the traffic mix by "
                    f"{self.cohort} drifted (score {self.score:.1f})")  # fmt: skip
        return (
            f"rollwise: monitor {name} of {flag} in {env}: {self.metric} decayed "
            f"({self.cohort}): {self.batch_mean:.4g} against {self.baseline_mean:.4g}, effect "
            f"{self.effect:+.4g}"
        )


@attrs.frozen
class Checked:
    """A check's outcome: the state to keep and the alerts to raise."""

    state: dict[str, Any]
    alerts: tuple[Alert, ...]


def _reduce(
    store: Store, env: str, flag: str, guardrail: Guardrail | None, dim: str | None,
    bands: tuple[float, ...] | None, since: str, until: str, window: float,
) -> ReductionResult:  # fmt: skip
    spec = ReductionSpec(
        flag=flag, env=env, metric=guardrail.source if guardrail else "rollwise-units",
        kind=guardrail.kind if guardrail else "count",
        denominator_metric=guardrail.denominator if guardrail else None,
        window_seconds=window, cohort=dim, bands=bands, since=since, until=until,
    )  # fmt: skip
    return reduce_spec(store.reader(), spec, dialect=store.dialect)


def _baseline(
    store: Store, record: MonitorRecord, spec: MonitorSpec, batch_since: float
) -> tuple[str, float, float] | None:
    """The baseline's variant and window, or ``None`` when there is none yet (a ``rollout``
    baseline before the flag's rollout completed)."""
    if spec.baseline == "window" and spec.since is not None and spec.until is not None:
        return spec.variant, spec.since.timestamp(), spec.until.timestamp()
    if spec.baseline == "holdout" and spec.holdout is not None:
        return spec.holdout, batch_since - spec.holdout_window, batch_since
    for run in reversed(runs(store, record.env, record.flag)):
        end = run.end
        if run.status == "completed" and end is not None:
            start = epoch(run.start.ts)
            return spec.variant, start, epoch(end.ts)
    return None


def _interval(effect: float, var: float, n_base: int, n: int, level: float) -> tuple[float, float]:
    half = NormalDist().inv_cdf(1.0 - level / 2.0) * math.sqrt(var / n_base + var / n)
    return effect - half, effect + half


def check(store: Store, record: MonitorRecord, spec: MonitorSpec, now: float) -> Checked | None:
    """The check due at ``now``, or ``None`` when no interval has passed since the last batch."""
    state = dict(record.state)
    # a batch is read once its last units' outcomes are in: their attribution window (the
    # baseline's units get the same window, so both sides are read alike) and the delay after
    batch_until = now - spec.attribution_window - spec.outcome_delay
    batch_since = float(state.get("batch_until", batch_until - spec.interval))
    if batch_until - batch_since < spec.interval:
        return None
    if spec.watch == "after_rollout":
        rollout = store.get_rollout(record.env, record.flag)
        status = None if rollout is None else rollout.state.get("status")
        if status in ACTIVE_ROLLOUT:  # its guardrails watch it now; the monitor takes over after
            state.update(last_check_at=now, batch_until=batch_until,
                         note=f"waits for the flag's rollout to end (it is {status})")  # fmt: skip
            return Checked(state, ())
    found = _baseline(store, record, spec, batch_since)
    if found is None:
        state.update(last_check_at=now, note="no baseline yet: the flag's rollout has not "
                     "completed")  # fmt: skip
        return Checked(state, ())
    base_variant, base_since, base_until = found
    window = (iso(batch_since), iso(batch_until))
    base_window = (iso(base_since), iso(base_until))
    baseline_json = {"variant": base_variant, "since": base_window[0], "until": base_window[1]}
    threshold = spec.threshold
    level = spec.alpha / max(spec.streams, 1)
    streams: dict[str, Any] = dict(state.get("streams") or {})
    alerts: list[Alert] = []
    at = iso(now)

    def step(name: str, z: float | None, **about: Any) -> None:
        kept = streams.get(name) or {}
        detector = Cusum(threshold, persistence=spec.persistence,
                         statistic=float(kept.get("statistic", 0.0)),
                         above=int(kept.get("above", 0)))  # fmt: skip
        reading = detector.update(z)
        streams[name] = {"statistic": detector.statistic, "above": detector.above,
                         "z": z, **{k: v for k, v in about.items() if k != "kind"}}  # fmt: skip
        if reading.fired and z is not None:
            alerts.append(Alert(
                stream=name, kind=about["kind"], metric=about.get("metric"),
                cohort=about["cohort"], effect=about.get("effect"),
                interval=about.get("interval"), baseline_mean=about.get("baseline_mean"),
                batch_mean=about.get("batch_mean"), units=int(about.get("units", 0)), score=z,
                statistic=reading.statistic, threshold=threshold, window=window,
                baseline=baseline_json, at=at,
            ))  # fmt: skip

    for guardrail in spec.metrics:
        for dim in (None, *guardrail.cohorts):
            bands = guardrail.bands.get(dim) if dim else None
            args = (guardrail, dim, bands)
            base = _reduce(store, record.env, record.flag, *args, *base_window,
                           spec.attribution_window)  # fmt: skip
            batch = _reduce(store, record.env, record.flag, *args, *window,
                            spec.attribution_window)  # fmt: skip
            cells = {c: (base.stats(base_variant, c), batch.stats(spec.variant, c))
                     for c in {*base.cohorts, *batch.cohorts}}  # fmt: skip
            if dim is None:
                scopes = {"overall": (sum_stats(base, base_variant),
                                      sum_stats(batch, spec.variant))}  # fmt: skip
            else:
                scopes = {f"{dim}={c}": arms for c, arms in buckets(guardrail, dim, cells).items()}
            for scope, (b, c) in scopes.items():
                z = decay_score(b, c, harm=guardrail.harm, tolerance=guardrail.tolerance,
                                relative=guardrail.relative)  # fmt: skip
                name = guardrail.metric if scope == "overall" else f"{guardrail.metric} {scope}"
                effect = c.mean - b.mean if z is not None else None
                interval = (
                    _interval(effect, b.variance, b.n, c.n, level) if effect is not None else None
                )
                step(name, z, kind="decay", metric=guardrail.metric, cohort=scope,
                     effect=effect, interval=interval, baseline_mean=b.mean if b.n else None,
                     batch_mean=c.mean if c.n else None, units=c.n)  # fmt: skip
    for dim in spec.drift:
        bands = spec.drift_bands.get(dim)
        base = _reduce(store, record.env, record.flag, None, dim, bands, *base_window,
                       spec.attribution_window)  # fmt: skip
        batch = _reduce(store, record.env, record.flag, None, dim, bands, *window,
                        spec.attribution_window)  # fmt: skip
        counts = (
            {_label(c): float(base.stats(base_variant, c).n) for c in base.cohorts},
            {_label(c): float(batch.stats(spec.variant, c).n) for c in batch.cohorts},
        )
        units = int(sum(counts[1].values()))
        step(f"drift {dim}", mix_score(*counts) if units else None, kind="drift", cohort=dim,
             units=units)  # fmt: skip
    if spec.drift_predictions:
        base_answers = _predictions(store, record, base_variant, *base_window)
        answers = _predictions(store, record, spec.variant, *window)
        counts = _prediction_counts(base_answers, answers)
        step("drift predictions", mix_score(*counts) if answers else None, kind="drift",
             cohort="predictions", units=len(answers))  # fmt: skip
    history = [*(state.get("alerts") or []), *(a.to_json() for a in alerts)][-MAX_ALERTS:]
    state.update(
        streams=streams, batch_until=batch_until, last_check_at=now, threshold=threshold,
        checks=int(state.get("checks", 0)) + 1, alerts=history, baseline=baseline_json,
        status="alerting" if alerts else state.get("status", "ok"),
    )  # fmt: skip
    state.pop("note", None)
    return Checked(state, tuple(alerts))


def _label(cohort: str | None) -> str:
    return "missing" if cohort is None else cohort


def sum_stats(result: ReductionResult, variant: str) -> SufficientStats:
    """A variant's statistics over every cohort of an overall reduction."""
    return result.overall().get(variant, result.stats(variant))


def _predictions(
    store: Store, record: MonitorRecord, variant: str, since: str, until: str
) -> list[tuple[str | None, float | None]]:
    """The variant's served (``live``) answers in the window: ``(label, score)``."""
    rows = (
        store.reader()
        .execute(
            "SELECT label, score FROM predictions WHERE env = ? AND flag = ? AND variant = ?"
            " AND role = 'live' AND status = 'ok' AND ts >= ? AND ts < ?",
            (record.env, record.flag, variant, since, until),
        )
        .fetchall()
    )
    return [(r[0], None if r[1] is None else float(r[1])) for r in rows]


def _prediction_counts(
    base: list[tuple[str | None, float | None]], batch: list[tuple[str | None, float | None]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Both sides' answers as counts over categories: each label, and scores in the deciles of
    the baseline's scores (``score<q1``, ..., ``score>=q9``)."""
    scores = sorted(s for _, s in base if s is not None)
    edges = [scores[len(scores) * i // 10] for i in range(1, 10)] if len(scores) >= 10 else []

    def category(label: str | None, score: float | None) -> str:
        if label is not None:
            return f"label {label}"
        if score is None:
            return "no answer"
        return f"score decile {bisect.bisect_right(edges, score)}"

    def count(answers: list[tuple[str | None, float | None]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for label, score in answers:
            name = category(label, score)
            out[name] = out.get(name, 0.0) + 1.0
        return out

    return count(base), count(batch)

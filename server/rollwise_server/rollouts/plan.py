"""The rollout plan: stages with exit criteria, guardrails, the SRM check, a deadline.

A plan drives one split rule of a flag (``rule``) between a ``control`` and a ``candidate``
variant, or several ``candidates`` (each compared with the control; the stage's share divided
equally between them, ``weights``). Each stage sets the candidates' share; the controller
advances when a stage's exit criteria hold and rolls back (or pauses) on a breach. Plans are
validated here, with errors that name the JSON path of each problem, before anything is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs
import msgspec

from rollwise.analysis.reduce import MAX_BANDS, ReductionSpec
from rollwise.durations import DurationError, parse_duration
from rollwise.errors import Problem
from rollwise.rules import Flag
from rollwise_server import models
from rollwise_server.catalogue import Metric, tolerance_sign_problem
from rollwise_server.models.decoding import in_field_order, problems_of, valid_fields
from rollwise_server.models.rollouts import (
    MAX_CANDIDATES,
    MAX_GUARDRAILS,
    MAX_STAGES,
    MAX_VALUES,
)
from rollwise_server.times import utc_moment

__all__ = [
    "Guardrail",
    "RolloutPlan",
    "ScoreCheck",
    "ShadowCriteria",
    "Stage",
    "duration_field",
    "parse_guardrail",
    "parse_plan",
]


DEFAULT_TOP = 10
"""Cohorts of a categorical attribute without declared values: its 10 largest values."""
MAX_CELLS = 1024
"""The most cells a crossing may have (its family: the Bonferroni divisor of its tests)."""


@attrs.frozen
class ScoreCheck:
    """A paired check of a shadow stage: a score per unit and model from the model's prediction
    and the unit's outcome on ``metric``; the candidate's mean score must be shown no worse
    than the served model's by more than ``tolerance``, and no cohort harmed."""

    metric: str
    rule: Literal["match", "brier", "absolute_error", "squared_error"]
    kind: Literal["binary", "mean"] = "binary"
    """The metric's kind: a binary truth (0 or 1) or a number."""
    positive: str | None = None
    tolerance: float = 0.0
    """A magnitude, on the score's scale (signed in the JSON, as the harm)."""
    cohorts: tuple[str, ...] = ()
    bands: Mapping[str, tuple[float, ...]] = attrs.field(factory=dict)
    values: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def harm(self) -> Literal["increase", "decrease"]:
        """``match`` scores 1 for a right answer: a decrease harms; the error rules: a rise."""
        return "decrease" if self.rule == "match" else "increase"

    def as_guardrail(self) -> Guardrail:
        """The check's cohorts as a guardrail's (the same bands, values and top K)."""
        return Guardrail(self.metric, self.kind, self.harm, self.tolerance,
                         cohorts=self.cohorts, bands=self.bands, values=self.values)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "rule": self.rule, "positive": self.positive,
            "tolerance": (-self.tolerance if self.harm == "decrease" else self.tolerance) + 0.0,
            "cohorts": list(self.cohorts), "bands": {k: list(v) for k, v in self.bands.items()},
            "values": {k: list(v) for k, v in self.values.items()},
        }  # fmt: skip


@attrs.frozen
class ShadowCriteria:
    """The exit criteria of a shadow stage besides its duration and paired units."""

    agreement: float | None = None
    min_correlation: float | None = None
    max_mean_abs_diff: float | None = None
    latency_p99_ms: float | None = None
    max_error_rate: float = 0.01
    scores: tuple[ScoreCheck, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement, "min_correlation": self.min_correlation,
            "max_mean_abs_diff": self.max_mean_abs_diff, "latency_p99_ms": self.latency_p99_ms,
            "max_error_rate": self.max_error_rate, "scores": [c.to_json() for c in self.scores],
        }  # fmt: skip


@attrs.frozen
class Stage:
    share: float
    """The candidate's share of the rule's traffic, in (0, 1]; 0 in a shadow stage."""
    min_duration: float = 0.0
    """Seconds the stage lasts at least."""
    min_units: int = 0
    """Exposed units needed in each arm before the stage may end (a shadow stage: units both
    models scored)."""
    approval: bool = False
    """Advancing past this stage needs an approver."""
    shadow: ShadowCriteria | None = None
    """A shadow stage's criteria: the candidate serves no one, it runs beside the served model
    (``docs/shadow.md``)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"share": self.share, "min_duration": self.min_duration,
                               "min_units": self.min_units, "approval": self.approval}  # fmt: skip
        if self.shadow is not None:
            out["shadow"] = self.shadow.to_json()
        return out


@attrs.frozen
class Guardrail:
    metric: str
    kind: Literal["binary", "mean", "count", "ratio"] = "binary"
    harm: Literal["increase", "decrease"] = "decrease"
    """The direction in which the metric gets worse."""
    tolerance: float = 0.0
    """The size of the change tolerated in the harmful direction (0: any harm counts). The
    plan's JSON states it signed, as the change itself: ``-0.01`` for a metric whose decrease
    harms, ``+0.01`` for one whose increase harms."""
    relative: bool = False
    """``tolerance`` and the effect are relative to the control (0.02 = 2%)."""
    cohorts: tuple[str, ...] = ()
    """Cohort attributes for the fairness guardrail (harm in any cohort, or a widening gap)."""
    bands: Mapping[str, tuple[float, ...]] = attrs.field(factory=dict)
    """Bin edges for numeric cohort attributes, e.g. ``{"amount": [0, 100, 500]}``."""
    denominator: str | None = None
    """The denominator metric of a ratio guardrail."""
    numerator: str | None = None
    """The tracked metric summed on top of a ratio, when it is not ``metric`` itself."""
    values: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    """Declared values of categorical cohort attributes, e.g. ``{"country": ["DE", "FR"]}``:
    one cohort each, and ``(other)`` for every other value (and a missing one)."""
    top: Mapping[str, int] = attrs.field(factory=dict)
    """For a categorical cohort attribute without declared values: its K largest values (by
    units) are cohorts, the rest ``(other)``; ``DEFAULT_TOP`` when not set."""
    gap_tolerance: float | None = None
    """The widening of a cohort's gap to the rest that is tolerated, on the guardrail's scale
    (a magnitude, like ``tolerance``); ``None``: the same as ``tolerance``."""
    crossings: tuple[tuple[str, str], ...] = ()
    """Intersectional cohorts: pairs of its cohort attributes, e.g. ``(("amount", "country"),)``:
    every cell (a band or value of the first and of the second) is a cohort."""
    min_units_per_cell: int | None = None
    """Units needed in each arm of a crossing's cell before it can show harm (``None``: the
    plan's ``min_units_for_harm``)."""

    def family(self, dim: str) -> int:
        """How many cohorts ``dim`` has, fixed when the plan is accepted (the Bonferroni
        divisor of its tests): bands and ``missing``, declared values and ``(other)``, or the
        top K and ``(other)``."""
        if dim in self.bands:
            return len(self.bands[dim]) + 2
        if dim in self.values:
            return len(self.values[dim]) + 1
        return self.top.get(dim, DEFAULT_TOP) + 1

    def crossing_family(self, crossing: tuple[str, str]) -> int:
        """The cells of a crossing: the product of its two attributes' families."""
        return self.family(crossing[0]) * self.family(crossing[1])

    @property
    def gap_limit(self) -> float:
        return self.tolerance if self.gap_tolerance is None else self.gap_tolerance

    @property
    def source(self) -> str:
        """The tracked metric whose outcomes are this guardrail's values."""
        return self.numerator or self.metric

    def to_json(self) -> dict[str, Any]:
        signed = -self.tolerance if self.harm == "decrease" else self.tolerance
        return {
            "metric": self.metric,
            "kind": self.kind,
            "harm": self.harm,
            "tolerance": signed + 0.0,
            "relative": self.relative,
            "cohorts": list(self.cohorts),
            "bands": {k: list(v) for k, v in self.bands.items()},
            "denominator": self.denominator,
            **({"numerator": self.numerator} if self.numerator else {}),
            **({"values": {k: list(v) for k, v in self.values.items()}} if self.values else {}),
            **({"top": dict(self.top)} if self.top else {}),
            **({"crossings": [list(c) for c in self.crossings]} if self.crossings else {}),
            **(
                {"min_units_per_cell": self.min_units_per_cell}
                if self.min_units_per_cell is not None else {}
            ),
            **(
                {"gap_tolerance": -self.gap_tolerance if self.harm == "decrease"
                 else self.gap_tolerance + 0.0}
                if self.gap_tolerance is not None else {}
            ),
        }  # fmt: skip


def _first_only(self: RolloutPlan) -> tuple[str, ...]:
    return (self.candidate,)


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class RolloutPlan:
    control: str
    candidate: str
    """The (first) candidate."""
    rule: str
    stages: tuple[Stage, ...]
    guardrails: tuple[Guardrail, ...] = ()
    srm: bool = True
    alpha: float = 0.05
    tuning: float = 5000.0
    deadline: datetime | None = None
    on_breach: Literal["rollback", "pause"] = "rollback"
    attribution_window: float = 14 * 86400.0
    outcome_delay: float = 60.0
    """Units exposed more recently are left out: their outcomes may not have arrived yet."""
    min_units_for_harm: int = 100
    """A scope (overall, or one cohort) can show harm only with this many units in each arm:
    below it the normal approximation behind the tests is not to be trusted (a cohort arm of
    17 units without one conversion has no variance). GrowthBook waits for 150 by default."""
    candidates: tuple[str, ...] = attrs.field(
        default=attrs.Factory(_first_only, takes_self=True), converter=_names
    )
    """Every candidate, ``candidate`` first; one for a two-arm plan. Each gets the stage's
    share divided by their number, and each is compared with the control."""

    @property
    def multi(self) -> bool:
        """Several candidates: each compared with the control, dropped alone when it harms,
        and the rollout completes only with a winner chosen by an approver."""
        return len(self.candidates) > 1

    def to_json(self) -> dict[str, Any]:
        named = (
            {"candidates": list(self.candidates)} if self.multi else {"candidate": self.candidate}
        )
        return {
            "control": self.control,
            **named,
            "rule": self.rule,
            "stages": [s.to_json() for s in self.stages],
            "guardrails": [g.to_json() for g in self.guardrails],
            "srm": self.srm,
            "alpha": self.alpha,
            "tuning": self.tuning,
            "deadline": None
            if self.deadline is None
            else self.deadline.isoformat().replace("+00:00", "Z"),
            "on_breach": self.on_breach,
            "attribution_window": self.attribution_window,
            "outcome_delay": self.outcome_delay,
            "min_units_for_harm": self.min_units_for_harm,
        }


def _edges(edges: tuple[float, ...]) -> bool:
    """Strictly increasing bin edges (the model has bounded their count and finiteness)."""
    return all(a < b for a, b in itertools.pairwise(edges))


def duration_field(
    value: float | str, name: str, path: str, out: list[Problem], *, positive: bool = False
) -> float:
    """``value`` in the one duration grammar (``rollwise.durations``: seconds, or text such as
    ``"30m"``, ``"1h30m"``, ``"2w"``); a problem at ``path`` (and 0) else."""
    try:
        return parse_duration(value, name, positive=positive)
    except DurationError as exc:
        out.append(Problem(path, exc.detail))
        return 0.0


def _stages(
    stages: list[models.RolloutStage], flag: Flag, candidate: Any,
    catalogue: Mapping[str, Metric] | None, out: list[Problem],
) -> list[Stage]:  # fmt: skip
    previous = 0.0
    parsed = []
    for i, raw in enumerate(stages):
        path = f"stages[{i}]."
        criteria = None
        if raw.shadow is not None:
            criteria = _shadow(raw, i, flag, candidate, catalogue, out)
        elif raw.share is None:
            out.append(Problem(f"{path}share", "required: the candidate's share, in (0.0, 1.0]"))
        elif raw.share == 0:
            out.append(Problem(f"{path}share", "must be in (0.0, 1.0]"))
        elif raw.share <= previous:
            out.append(Problem(f"{path}share", "must grow from stage to stage"))
        share = raw.share or 0.0
        previous = max(previous, share)
        duration = duration_field(raw.min_duration, "min_duration", f"{path}min_duration", out)
        parsed.append(Stage(share, duration, raw.min_units, raw.approval, criteria))
    return parsed


_SCORED: Mapping[str, tuple[str, ...]] = {
    "match": ("binary",), "brier": ("binary",), "absolute_error": ("binary", "mean"),
    "squared_error": ("binary", "mean"),
}  # fmt: skip
"""The metric kinds each scoring rule reads as the truth."""


def _shadow(
    raw: models.RolloutStage, i: int, flag: Flag, candidate: Any,
    catalogue: Mapping[str, Metric] | None, out: list[Problem],
) -> ShadowCriteria:  # fmt: skip
    """A shadow stage's criteria: the first stage only, exposing no one, on a flag whose shadow
    variant is the candidate; its score checks read catalogue metrics and flag cohorts."""
    path = f"stages[{i}]."
    given = raw.shadow or models.ShadowCriteria()
    if i != 0:
        out.append(Problem(f"{path}shadow", "only the first stage may be a shadow stage"))
    if raw.share:
        out.append(Problem(f"{path}share", "a shadow stage serves the candidate to no one: 0"))
    if catalogue is not None and (flag.shadow is None or flag.shadow.variant != candidate):
        named = "names no shadow" if flag.shadow is None else (
            f"shadows {flag.shadow.variant!r}"
        )  # fmt: skip
        out.append(Problem(
            f"{path}shadow",
            f"flag {flag.key!r} {named}: a shadow stage needs the flag's shadow variant to be "
            f"the candidate {candidate!r} (docs/shadow.md)",
        ))  # fmt: skip
    checks = []
    for j, score in enumerate(given.scores):
        where = f"{path}shadow.scores[{j}]."
        entry = catalogue.get(score.metric) if catalogue is not None else None
        if catalogue is not None and entry is None:
            defined = ", ".join(sorted(catalogue)) or "none yet"
            out.append(Problem(
                f"{where}metric", f"unknown metric {score.metric!r}: define it in the "
                f"environment's metric catalogue first (defined: {defined})",
            ))  # fmt: skip
        kind = entry.kind if entry is not None else "binary"
        if entry is not None and kind not in _SCORED[score.rule]:
            out.append(Problem(
                f"{where}rule", f"{score.rule} reads a {' or '.join(_SCORED[score.rule])} "
                f"truth; metric {score.metric!r} is {kind}",
            ))  # fmt: skip
        if score.positive is not None and score.rule not in ("match", "brier"):
            out.append(Problem(f"{where}positive", "only the match and brier rules read labels"))
        harm = "decrease" if score.rule == "match" else "increase"
        sign = tolerance_sign_problem(harm, score.tolerance)
        if sign is not None:
            out.append(Problem(f"{where}tolerance", sign.replace("this metric", "this score")))
        for k, cohort in enumerate(score.cohorts):
            if catalogue is not None and cohort not in flag.cohort_attributes:
                out.append(Problem(
                    f"{where}cohorts[{k}]", f"{cohort!r} is not a cohort attribute of flag "
                    f"{flag.key!r}; predictions carry only those",
                ))  # fmt: skip
        declared: tuple[tuple[str, Mapping[str, Any]], ...] = (
            ("bands", score.bands), ("values", score.values),
        )  # fmt: skip
        for kind_of, listed in declared:
            for name in listed:
                if name not in score.cohorts:
                    out.append(Problem(f"{where}{kind_of}.{name}", f"{name!r} is not one of its "
                                       "cohorts"))  # fmt: skip
        for name, edges in score.bands.items():
            if not _edges(tuple(edges)):
                out.append(Problem(f"{where}bands.{name}", "must be strictly increasing"))
        checks.append(ScoreCheck(
            score.metric, score.rule, "mean" if kind == "mean" else "binary", score.positive,
            abs(score.tolerance), tuple(score.cohorts),
            {k: tuple(v) for k, v in score.bands.items()},
            {k: tuple(v) for k, v in score.values.items()},
        ))  # fmt: skip
    s = given
    return ShadowCriteria(s.agreement, s.min_correlation, s.max_mean_abs_diff,
                          s.latency_p99_ms, s.max_error_rate, tuple(checks))  # fmt: skip


def parse_guardrail(
    raw: models.Guardrail, path: str, flag: Flag, catalogue: Mapping[str, Metric] | None,
    out: list[Problem],
) -> Guardrail:  # fmt: skip
    """One guardrail: the catalogue's reading of its metric, and its cohorts checked against
    the flag and each other."""
    metric, entry = raw.metric, None
    if catalogue is not None:
        entry = catalogue.get(metric)
        if entry is None:
            defined = ", ".join(sorted(catalogue)) or "none yet"
            out.append(Problem(
                f"{path}metric",
                f"unknown metric {metric!r}: define it in the environment's metric "
                f"catalogue first (defined: {defined})",
            ))  # fmt: skip
    kind = raw.kind or (entry.kind if entry else "binary")
    if entry is not None and kind != entry.kind:
        out.append(Problem(f"{path}kind", f"metric {metric!r} is {entry.kind} in the catalogue"))
    harm = raw.harm or (entry.harm if entry else "decrease")
    if entry is not None and harm != entry.harm:
        out.append(Problem(
            f"{path}harm",
            f"metric {metric!r} is {entry.direction.replace('_', ' ')} in the catalogue, "
            f"so its harm is a {entry.harm}",
        ))  # fmt: skip
    default_tolerance = entry.default_tolerance if entry else 0.0
    tolerance = default_tolerance if raw.tolerance is None else raw.tolerance
    sign = tolerance_sign_problem(harm, tolerance)
    if sign is not None:
        out.append(Problem(f"{path}tolerance", sign))
    cohorts = raw.cohorts
    for j, cohort in enumerate(cohorts):
        if catalogue is not None and cohort not in flag.cohort_attributes:
            attributes = ", ".join(flag.cohort_attributes) or "none"
            out.append(Problem(
                f"{path}cohorts[{j}]",
                f"{cohort!r} is not a cohort attribute of flag {flag.key!r} (its "
                f"cohort_attributes: {attributes}); exposures carry only those",
            ))  # fmt: skip
    bands = {name: tuple(edges) for name, edges in raw.bands.items()}
    for name, edges in bands.items():
        if not _edges(edges):
            out.append(Problem(
                f"{path}bands.{name}",
                f"must be a list of 1 to {MAX_BANDS} strictly increasing finite numbers",
            ))  # fmt: skip
        elif name not in cohorts:
            out.append(Problem(f"{path}bands.{name}", f"{name!r} is not one of its cohorts"))
    denominator = raw.denominator if raw.denominator is not None else (
        entry.denominator if entry else None
    )  # fmt: skip
    if entry is not None and entry.kind == "ratio" and denominator != entry.denominator:
        out.append(Problem(
            f"{path}denominator",
            f"metric {metric!r} divides by {entry.denominator!r} in the catalogue",
        ))  # fmt: skip
    numerator = raw.numerator if raw.numerator is not None else (entry.source if entry else None)
    if kind == "ratio" and denominator is None:
        out.append(Problem(f"{path}denominator", "a ratio guardrail needs its denominator metric"))
    if kind != "ratio" and denominator is not None:
        out.append(Problem(f"{path}denominator", "only a ratio guardrail has one"))
    values = {name: tuple(listed) for name, listed in raw.values.items()}
    for name, listed in values.items():
        if len(set(listed)) != len(listed):
            out.append(Problem(
                f"{path}values.{name}",
                f"must be a list of 1 to {MAX_VALUES} distinct non-empty strings",
            ))  # fmt: skip
        elif name not in cohorts:
            out.append(Problem(f"{path}values.{name}", f"{name!r} is not one of its cohorts"))
        elif name in bands:
            out.append(Problem(f"{path}values.{name}", "an attribute has bands or values"))
    for name in raw.top:
        if name not in cohorts or name in bands or name in values:
            out.append(Problem(
                f"{path}top.{name}",
                f"{name!r} must be one of its cohorts without bands or values",
            ))  # fmt: skip
    crossings: list[tuple[str, str]] = []
    for j, pair in enumerate(raw.crossings):
        if not all(a in cohorts for a in pair) or pair[0] == pair[1]:
            out.append(Problem(
                f"{path}crossings[{j}]", "must be two different attributes of its cohorts"
            ))  # fmt: skip
            continue
        crossings.append((pair[0], pair[1]))
    gap_tolerance = raw.gap_tolerance
    if gap_tolerance is not None:
        sign = tolerance_sign_problem(harm, gap_tolerance)
        if sign is not None:
            out.append(Problem(f"{path}gap_tolerance", sign))
    guardrail = Guardrail(
        metric, kind, harm, abs(tolerance), raw.relative, tuple(cohorts), bands, denominator,
        numerator if numerator != metric else None, values, dict(raw.top),
        None if gap_tolerance is None else abs(gap_tolerance), tuple(crossings),
        raw.min_units_per_cell,
    )  # fmt: skip
    for j, crossing in enumerate(guardrail.crossings):
        cells = guardrail.crossing_family(crossing)
        if cells > MAX_CELLS:
            out.append(Problem(
                f"{path}crossings[{j}]",
                f"has {cells} cells, more than {MAX_CELLS}: declare fewer values or bands",
            ))  # fmt: skip
    return guardrail


def parse_plan(
    data: Any, flag: Flag, catalogue: Mapping[str, Metric] | None = None
) -> tuple[RolloutPlan | None, list[Problem]]:
    """Validate a plan for ``flag``; every problem is reported with its path.

    The fields' types and bounds are those of ``models.RolloutPlan``; here, what depends on
    the flag, the catalogue and the fields together, checked on the fields that are valid on
    their own (so that their problems come with the others). With the environment's metric
    ``catalogue`` (a new plan), each guardrail's metric must be defined there, its kind, harm
    and denominator are taken from it (and must agree if the plan states them), its
    tolerance's sign must match the harm, and its cohorts must be cohort attributes of the
    flag. Without it (a stored plan read back) only the shape is checked: the catalogue may
    have changed since the plan was frozen."""
    body, out = problems_of(models.RolloutPlan, data)
    fields = msgspec.structs.asdict(body) if body else valid_fields(models.RolloutPlan, data)
    control, rule_id = fields.get("control"), fields.get("rule")
    candidates, named = _candidates(fields, data, flag, out)
    candidate = candidates[0] if candidates else fields.get("candidate")
    if "control" in fields and control not in flag.variants:
        out.append(Problem("control", f"must be a variant of flag {flag.key!r}"))
    if "rule" in fields:
        rule = next((r for r in flag.rules if r.id == rule_id), None)
        if rule is None:
            out.append(Problem("rule", f"must be the id of a rule of flag {flag.key!r}"))
        elif rule.serve.split is None:
            out.append(Problem("rule", f"rule {rule_id!r} must serve a split"))
        elif named and {a.variant for a in rule.serve.split} - {control, *named}:
            between = "the control and the candidates" if len(named) > 1 else (
                "control and candidate"
            )  # fmt: skip
            out.append(Problem("rule", f"rule {rule_id!r} must split between {between} only"))
    stages: list[Stage] = []
    raw_stages = fields.get("stages", [])
    if len(raw_stages) > MAX_STAGES:
        out.append(Problem("stages", f"has {len(raw_stages)} stages, more than {MAX_STAGES}"))
    else:
        stages = _stages(raw_stages, flag, candidate, catalogue, out)
        if stages and stages[-1].shadow is not None:
            out.append(Problem("stages", "a shadow stage needs a live stage after it"))
        if len(candidates) > 1 and stages and stages[0].shadow is not None:
            out.append(Problem(
                "stages[0].shadow", "a plan with several candidates has no shadow stage (a "
                "flag shadows one variant): run each candidate's shadow stage on its own",
            ))  # fmt: skip
    guardrails: list[Guardrail] = []
    raw_guardrails = fields.get("guardrails", [])
    if len(raw_guardrails) > MAX_GUARDRAILS:
        message = f"has {len(raw_guardrails)} guardrails, more than {MAX_GUARDRAILS}"
        out.append(Problem("guardrails", message))
    else:
        guardrails = [
            parse_guardrail(raw, f"guardrails[{i}].", flag, catalogue, out)
            for i, raw in enumerate(raw_guardrails)
        ]
    deadline = None
    if fields.get("deadline") is not None:
        try:
            deadline = utc_moment(fields["deadline"])
        except OverflowError:
            deadline = None
        if deadline is None:
            out.append(Problem("deadline", "must be an RFC 3339 date-time or null"))
    window = delay = 0.0
    if "attribution_window" in fields:
        window = duration_field(
            fields["attribution_window"], "attribution_window", "attribution_window", out,
            positive=True,
        )  # fmt: skip
    if "outcome_delay" in fields:
        delay = duration_field(fields["outcome_delay"], "outcome_delay", "outcome_delay", out)
    if out or body is None:
        return None, in_field_order(models.RolloutPlan, out)
    plan = RolloutPlan(
        control=body.control, candidate=candidates[0], candidates=candidates, rule=body.rule,
        stages=tuple(stages),
        guardrails=tuple(guardrails), srm=body.srm, alpha=body.alpha, tuning=body.tuning,
        deadline=deadline, on_breach=body.on_breach, attribution_window=window,
        outcome_delay=delay, min_units_for_harm=body.min_units_for_harm,
    )  # fmt: skip
    problems = _statistics_refusals(plan, flag.key)
    return (None, problems) if problems else (plan, [])


def _candidates(
    fields: Mapping[str, Any], data: Any, flag: Flag, out: list[Problem]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The plan's candidates: ``candidate``, or the list ``candidates`` (exactly one of the
    two), each a variant of the flag other than the control, none twice; and the names given
    (to check the rule against, even when one of them is wrong)."""
    given = data if isinstance(data, Mapping) else {}
    single, listed = given.get("candidate"), given.get("candidates")
    if single is not None and listed is not None:
        out.append(Problem("candidates", "give candidate or candidates, not both"))
        return (), ()
    if single is None and listed is None:
        out.append(Problem("candidate", "required: the candidate (or a list of candidates)"))
        return (), ()
    if single is not None:
        if "candidate" not in fields:
            return (), ()  # its type's problem is reported already
        names, paths = [fields["candidate"]], ["candidate"]
    else:
        if "candidates" not in fields or len(fields["candidates"]) > MAX_CANDIDATES:
            return (), ()  # not a list of 1 to MAX_CANDIDATES strings: reported already
        names = list(fields["candidates"])
        paths = [f"candidates[{i}]" for i in range(len(names))]
    good = True
    for i, (name, path) in enumerate(zip(names, paths, strict=True)):
        if name not in flag.variants:
            out.append(Problem(path, f"must be a variant of flag {flag.key!r}"))
            good = False
        elif name == fields.get("control"):
            out.append(Problem(path, "must differ from control"))
            good = False
        elif name in names[:i]:
            out.append(Problem(path, f"candidate {name!r} appears twice"))
            good = False
    return (tuple(names) if good else ()), tuple(names)


def reduction_of(
    guardrail: Guardrail, dim: str | tuple[str, str] | None, flag: str, window: float,
    **extra: Any,
) -> ReductionSpec:  # fmt: skip
    """The reduction the controller runs for ``guardrail`` overall (``dim=None``), by one
    cohort attribute, or by a crossing of two."""
    cohort = dim[0] if isinstance(dim, tuple) else dim
    cross = dim[1] if isinstance(dim, tuple) else None
    return ReductionSpec(
        flag=flag, metric=guardrail.source, kind=guardrail.kind,
        denominator_metric=guardrail.denominator, window_seconds=window, cohort=cohort,
        bands=guardrail.bands.get(cohort) if cohort else None, cross=cross,
        cross_bands=guardrail.bands.get(cross) if cross else None, **extra,
    )  # fmt: skip


def _statistics_refusals(plan: RolloutPlan, flag: str) -> list[Problem]:
    """Build every reduction the controller will run for ``plan`` (``tally.slot_specs`` reads
    the same fields); whatever the statistics refuse is refused here, with its path, so that a
    stored plan can never fail the controller."""
    out = []
    try:  # the unit count every plan runs (the only reduction of a plan without guardrails)
        ReductionSpec(
            flag=flag, metric="rollwise-units", kind="count",
            window_seconds=plan.attribution_window,
        )  # fmt: skip
    except ValueError as exc:
        return [Problem("attribution_window", str(exc).partition(": ")[2] or str(exc))]
    for i, guardrail in enumerate(plan.guardrails):
        for dim in (None, *guardrail.cohorts, *guardrail.crossings):
            try:
                reduction_of(guardrail, dim, flag, plan.attribution_window)
            except ValueError as exc:
                field, _, message = str(exc).partition(": ")
                path = {"denominator_metric": "denominator", "window_seconds": None}.get(
                    field, field
                )
                where = f"guardrails[{i}].{path}" if path and message else f"guardrails[{i}]"
                out.append(Problem(where, message or str(exc)))
    return out

"""The rollout plan: stages with exit criteria, guardrails, the SRM check, a deadline.

A plan drives one split rule of a flag (``rule``) between a ``control`` and a ``candidate``
variant. Each stage sets the candidate's share; the controller advances when a stage's exit
criteria hold and rolls back (or pauses) on a breach. Plans are validated here, with errors
that name the JSON path of each problem, before anything is stored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from rollwise.analysis.reduce import MAX_BANDS, ReductionSpec
from rollwise.durations import DurationError, parse_duration
from rollwise.errors import Problem
from rollwise.rules import Flag
from rollwise_server.catalogue import Metric, finite_number, tolerance_sign_problem

__all__ = ["Guardrail", "RolloutPlan", "Stage", "parse_plan"]


_GUARDRAIL_FIELDS = frozenset(
    {"metric", "kind", "harm", "tolerance", "relative", "cohorts", "bands", "denominator",
     "numerator", "values", "top", "gap_tolerance", "crossings", "min_units_per_cell"}
)  # fmt: skip
DEFAULT_TOP = 10
"""Cohorts of a categorical attribute without declared values: its 10 largest values."""
MAX_VALUES = 64
MAX_STAGES = 20
"""Stages of a plan: a ramp needs a handful; the bound keeps a plan (and each controller round
over it) small."""
MAX_GUARDRAILS = 20
"""Guardrails of a plan: each is a family of tests the controller reduces every round."""
MAX_CELLS = 1024
"""The most cells a crossing may have (its family: the Bonferroni divisor of its tests)."""


def _duration(
    data: Mapping[str, Any], key: str, path: str, out: list[Problem], default: float,
    *, positive: bool = False,
) -> float:  # fmt: skip
    """``data[key]`` in the one duration grammar (``rollwise.durations``: seconds, or text such
    as ``"30m"``, ``"1h30m"``, ``"2w"``), or ``default``; a problem at ``path + key`` else."""
    try:
        return parse_duration(data.get(key, default), key, positive=positive)
    except DurationError as exc:
        out.append(Problem(f"{path}{key}", exc.detail))
        return default


@attrs.frozen
class Stage:
    share: float
    """The candidate's share of the rule's traffic, in (0, 1]."""
    min_duration: float = 0.0
    """Seconds the stage lasts at least."""
    min_units: int = 0
    """Exposed units needed in each arm before the stage may end."""
    approval: bool = False
    """Advancing past this stage needs an approver."""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


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


@attrs.frozen
class RolloutPlan:
    control: str
    candidate: str
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

    def to_json(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "candidate": self.candidate,
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


def _num(data: Mapping[str, Any], key: str, path: str, out: list[Problem], default: float,
         lo: float, hi: float, *, open_low: bool = False) -> float:  # fmt: skip
    value = finite_number(data.get(key, default))
    if value is None:
        out.append(Problem(f"{path}{key}", "must be a finite number"))
        return default
    if value < lo or value > hi or (open_low and value <= lo):
        bound = f"({lo}, {hi}]" if open_low else f"[{lo}, {hi}]"
        out.append(Problem(f"{path}{key}", f"must be in {bound}"))
        return default
    return float(value)


def _edges(value: Any) -> bool:
    """Strictly increasing finite bin edges, 1 to ``MAX_BANDS`` of them (what the statistics
    accept)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_BANDS:
        return False
    numbers = [finite_number(x) for x in value]
    if any(x is None for x in numbers):
        return False
    return all(a < b for a, b in itertools.pairwise(numbers))  # type: ignore[operator]


def parse_plan(
    data: Any, flag: Flag, catalogue: Mapping[str, Metric] | None = None
) -> tuple[RolloutPlan | None, list[Problem]]:
    """Validate a plan for ``flag``; every problem is reported with its path.

    With the environment's metric ``catalogue`` (a new plan), each guardrail's metric must be
    defined there, its kind, harm and denominator are taken from it (and must agree if the
    plan states them), its tolerance's sign must match the harm, and its cohorts must be
    cohort attributes of the flag. Without it (a stored plan read back) only the shape is
    checked: the catalogue may have changed since the plan was frozen."""
    out: list[Problem] = []
    if not isinstance(data, Mapping):
        return None, [Problem("", "must be an object")]
    known = {"control", "candidate", "rule", "stages", "guardrails", "srm", "alpha", "tuning",
             "deadline", "on_breach", "attribution_window", "outcome_delay", "reason",
             "version", "min_units_for_harm"}  # fmt: skip
    out += [Problem(str(k), "unknown field") for k in data if k not in known]
    control, candidate, rule_id = data.get("control"), data.get("candidate"), data.get("rule")
    for name, value in (("control", control), ("candidate", candidate)):
        if not isinstance(value, str) or value not in flag.variants:
            out.append(Problem(name, f"must be a variant of flag {flag.key!r}"))
    if control == candidate and isinstance(control, str):
        out.append(Problem("candidate", "must differ from control"))
    rule = next((r for r in flag.rules if r.id == rule_id), None)
    if rule is None:
        out.append(Problem("rule", f"must be the id of a rule of flag {flag.key!r}"))
    elif rule.serve.split is None:
        out.append(Problem("rule", f"rule {rule_id!r} must serve a split"))
    elif {a.variant for a in rule.serve.split} - {control, candidate}:
        out.append(
            Problem("rule", f"rule {rule_id!r} must split between control and candidate only")
        )
    stages: list[Stage] = []
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        out.append(Problem("stages", "must be a non-empty list"))
        raw_stages = []
    elif len(raw_stages) > MAX_STAGES:
        out.append(Problem("stages", f"has {len(raw_stages)} stages, more than {MAX_STAGES}"))
        raw_stages = []
    previous = 0.0
    for i, raw in enumerate(raw_stages):
        path = f"stages[{i}]."
        if not isinstance(raw, Mapping):
            out.append(Problem(f"stages[{i}]", "must be an object"))
            continue
        share = _num(raw, "share", path, out, 0.0, 0.0, 1.0, open_low=True)
        if share and share <= previous:
            out.append(Problem(f"{path}share", "must grow from stage to stage"))
        previous = max(previous, share)
        duration = _duration(raw, "min_duration", path, out, 0.0)
        units = raw.get("min_units", 0)
        if isinstance(units, bool) or not isinstance(units, int) or units < 0:
            out.append(Problem(f"{path}min_units", "must be a non-negative integer"))
            units = 0
        approval = raw.get("approval", False)
        if not isinstance(approval, bool):
            out.append(Problem(f"{path}approval", "must be true or false"))
        stages.append(Stage(share, duration, units, bool(approval)))
    guardrails: list[Guardrail] = []
    raw_guardrails = data.get("guardrails", [])
    if not isinstance(raw_guardrails, list):
        out.append(Problem("guardrails", "must be a list"))
        raw_guardrails = []
    elif len(raw_guardrails) > MAX_GUARDRAILS:
        message = f"has {len(raw_guardrails)} guardrails, more than {MAX_GUARDRAILS}"
        out.append(Problem("guardrails", message))
        raw_guardrails = []
    for i, raw in enumerate(raw_guardrails):
        path = f"guardrails[{i}]."
        if not isinstance(raw, Mapping):
            out.append(Problem(f"guardrails[{i}]", "must be an object"))
            continue
        out += [Problem(f"{path}{k}", "unknown field") for k in raw if k not in _GUARDRAIL_FIELDS]
        metric = raw.get("metric")
        entry = None
        if not isinstance(metric, str) or not metric:
            out.append(Problem(f"{path}metric", "must be a metric name"))
        elif catalogue is not None:
            entry = catalogue.get(metric)
            if entry is None:
                defined = ", ".join(sorted(catalogue)) or "none yet"
                out.append(Problem(
                    f"{path}metric",
                    f"unknown metric {metric!r}: define it in the environment's metric "
                    f"catalogue first (defined: {defined})",
                ))  # fmt: skip
        kind = raw.get("kind", entry.kind if entry else "binary")
        if kind not in ("binary", "mean", "count", "ratio"):
            out.append(Problem(f"{path}kind", "must be binary, mean, count or ratio"))
        elif entry is not None and kind != entry.kind:
            out.append(
                Problem(f"{path}kind", f"metric {metric!r} is {entry.kind} in the catalogue")
            )
        harm = raw.get("harm", entry.harm if entry else "decrease")
        if harm not in ("increase", "decrease"):
            out.append(Problem(f"{path}harm", "must be increase or decrease"))
        elif entry is not None and harm != entry.harm:
            out.append(Problem(
                f"{path}harm",
                f"metric {metric!r} is {entry.direction.replace('_', ' ')} in the catalogue, "
                f"so its harm is a {entry.harm}",
            ))  # fmt: skip
        default_tolerance = entry.default_tolerance if entry else 0.0
        tolerance = _num(raw, "tolerance", path, out, default_tolerance, -math.inf, math.inf)
        sign = tolerance_sign_problem(str(harm), tolerance)
        if sign is not None:
            out.append(Problem(f"{path}tolerance", sign))
        cohorts = raw.get("cohorts", [])
        if not isinstance(cohorts, list) or not all(isinstance(c, str) and c for c in cohorts):
            out.append(Problem(f"{path}cohorts", "must be a list of attribute names"))
            cohorts = []
        for j, cohort in enumerate(cohorts):
            if catalogue is not None and cohort not in flag.cohort_attributes:
                attributes = ", ".join(flag.cohort_attributes) or "none"
                out.append(Problem(
                    f"{path}cohorts[{j}]",
                    f"{cohort!r} is not a cohort attribute of flag {flag.key!r} (its "
                    f"cohort_attributes: {attributes}); exposures carry only those",
                ))  # fmt: skip
        bands = raw.get("bands", {})
        if not isinstance(bands, Mapping):
            out.append(Problem(f"{path}bands", "must map attributes to ascending bin edges"))
            bands = {}
        for name, edges in list(bands.items()):
            if not _edges(edges):
                out.append(Problem(
                    f"{path}bands.{name}",
                    f"must be a list of 1 to {MAX_BANDS} strictly increasing finite numbers",
                ))  # fmt: skip
                bands = {}
                break
            if name not in cohorts:
                out.append(Problem(f"{path}bands.{name}", f"{name!r} is not one of its cohorts"))
        denominator = raw.get("denominator", entry.denominator if entry else None)
        if entry is not None and entry.kind == "ratio" and denominator != entry.denominator:
            out.append(Problem(
                f"{path}denominator",
                f"metric {metric!r} divides by {entry.denominator!r} in the catalogue",
            ))  # fmt: skip
        numerator = raw.get("numerator", entry.source if entry else None)
        if numerator is not None and not isinstance(numerator, str):
            out.append(Problem(f"{path}numerator", "must be a metric name"))
            numerator = None
        if kind == "ratio" and not isinstance(denominator, str):
            out.append(
                Problem(f"{path}denominator", "a ratio guardrail needs its denominator metric")
            )
        if kind != "ratio" and denominator is not None:
            out.append(Problem(f"{path}denominator", "only a ratio guardrail has one"))
        relative = raw.get("relative", False)
        if not isinstance(relative, bool):
            out.append(Problem(f"{path}relative", "must be true or false"))
        values = raw.get("values", {})
        if not isinstance(values, Mapping):
            out.append(Problem(f"{path}values", "must map attributes to lists of values"))
            values = {}
        for name, listed in values.items():
            ok = isinstance(listed, list) and 1 <= len(listed) <= MAX_VALUES
            if (
                not ok
                or not all(isinstance(v, str) and v for v in listed)
                or (len(set(listed)) != len(listed))
            ):
                out.append(Problem(
                    f"{path}values.{name}",
                    f"must be a list of 1 to {MAX_VALUES} distinct non-empty strings",
                ))  # fmt: skip
            elif name not in cohorts:
                out.append(Problem(f"{path}values.{name}", f"{name!r} is not one of its cohorts"))
            elif name in bands:
                out.append(Problem(f"{path}values.{name}", "an attribute has bands or values"))
        top = raw.get("top", {})
        if not isinstance(top, Mapping):
            out.append(Problem(f"{path}top", "must map attributes to a number of cohorts"))
            top = {}
        for name, k in top.items():
            if type(k) is not int or not 1 <= k <= MAX_VALUES:
                out.append(
                    Problem(f"{path}top.{name}", f"must be an integer from 1 to {MAX_VALUES}")
                )
            elif name not in cohorts or name in bands or name in values:
                out.append(Problem(
                    f"{path}top.{name}",
                    f"{name!r} must be one of its cohorts without bands or values",
                ))  # fmt: skip
        crossings: list[tuple[str, str]] = []
        raw_crossings = raw.get("crossings", [])
        if not isinstance(raw_crossings, list) or len(raw_crossings) > 4:
            out.append(Problem(f"{path}crossings", "must be a list of at most 4 pairs"))
            raw_crossings = []
        for j, pair in enumerate(raw_crossings):
            where = f"{path}crossings[{j}]"
            if not (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(a, str) and a in cohorts for a in pair
            ) and pair[0] != pair[1]):  # fmt: skip
                out.append(Problem(where, "must be two different attributes of its cohorts"))
                continue
            crossings.append((pair[0], pair[1]))
        per_cell = raw.get("min_units_per_cell")
        if per_cell is not None and (type(per_cell) is not int or not 2 <= per_cell <= 10**9):
            out.append(
                Problem(f"{path}min_units_per_cell", "must be an integer from 2 to 1,000,000,000")
            )
            per_cell = None
        gap_tolerance = None
        if raw.get("gap_tolerance") is not None:
            gap_tolerance = _num(raw, "gap_tolerance", path, out, 0.0, -math.inf, math.inf)
            sign = tolerance_sign_problem(str(harm), gap_tolerance)
            if sign is not None:
                out.append(Problem(f"{path}gap_tolerance", sign))
        guardrails.append(
            Guardrail(
                str(metric),
                kind,
                harm,
                abs(tolerance),
                bool(relative),
                tuple(cohorts),
                {k: tuple(float(x) for x in v) for k, v in bands.items()},
                denominator if isinstance(denominator, str) else None,
                numerator if numerator != metric else None,
                {k: tuple(v) for k, v in values.items() if isinstance(v, list)},
                {k: v for k, v in top.items() if type(v) is int},
                None if gap_tolerance is None else abs(gap_tolerance),
                tuple(crossings),
                per_cell,
            )
        )
        for j, crossing in enumerate(guardrails[-1].crossings):
            cells = guardrails[-1].crossing_family(crossing)
            if cells > MAX_CELLS:
                out.append(Problem(
                    f"{path}crossings[{j}]",
                    f"has {cells} cells, more than {MAX_CELLS}: declare fewer values or bands",
                ))  # fmt: skip
    srm = data.get("srm", True)
    if not isinstance(srm, bool):
        out.append(Problem("srm", "must be true or false"))
    alpha = _num(data, "alpha", "", out, 0.05, 0.0, 0.5, open_low=True)
    tuning = _num(data, "tuning", "", out, 5000.0, 1.0, math.inf)
    deadline = None
    if data.get("deadline") is not None:
        try:
            deadline = datetime.fromisoformat(str(data["deadline"]))
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=UTC)
        except ValueError:
            out.append(Problem("deadline", "must be an RFC 3339 date-time or null"))
    on_breach = data.get("on_breach", "rollback")
    if on_breach not in ("rollback", "pause"):
        out.append(Problem("on_breach", "must be rollback or pause"))
    window = _duration(data, "attribution_window", "", out, 14 * 86400.0, positive=True)
    delay = _duration(data, "outcome_delay", "", out, 60.0)
    min_units = data.get("min_units_for_harm", 100)
    if type(min_units) is not int or not 2 <= min_units <= 10**9:
        out.append(Problem("min_units_for_harm", "must be an integer from 2 to 1,000,000,000"))
    if out:
        return None, out
    plan = RolloutPlan(
        control=str(control), candidate=str(candidate), rule=str(rule_id), stages=tuple(stages),
        guardrails=tuple(guardrails), srm=bool(srm), alpha=alpha, tuning=tuning,
        deadline=deadline, on_breach=on_breach, attribution_window=window,
        outcome_delay=delay, min_units_for_harm=min_units,
    )  # fmt: skip
    problems = _statistics_refusals(plan, flag.key)
    return (None, problems) if problems else (plan, [])


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

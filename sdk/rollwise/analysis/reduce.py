"""The unit-level join: exposures and outcomes → ``SufficientStats`` per (variant, cohort).

The reduction runs where the data lives: one ``GROUP BY`` query in SQLite or PostgreSQL
(``reduce_sql``, over any DB-API connection), or pandas for DataFrames (``reduce_frame``). All
three follow the same rules and give the same statistics:

* **Unit.** ``(unit_type, unit)``. Only the exposures of ``flag`` (in ``env``) count.
* **Variant.** A unit's variant is that of its first exposure to the flag (earliest ``ts``; a
  tie goes to the smallest ``id``). A unit exposed to more than one variant is left out of
  every statistic and counted in ``ReductionResult.multiple_variants``: its outcomes cannot be
  attributed to one arm.
* **Attribution window.** An outcome counts for a unit when it has the unit's ``unit_type`` and
  ``unit`` (and ``env``) and ``t0 <= ts < t0 + window``, ``t0`` the first exposure's ``ts``.
  ``window_seconds=None``: no upper bound. Default 14 days. Outcomes before the first exposure
  never count (the variant cannot have caused them). Times have millisecond resolution.
* **Per-unit value** ``x`` by metric kind (``n`` counts the units that have one). The kind is
  required: it changes which units count, so a missing one raises ``ConfigurationError``
  rather than being assumed (a 0/1 metric read as a ``mean`` would keep only the units with an
  outcome: n = 1,189, mean 1.0):

  ``binary``
      1 if the unit has an attributed outcome with a value > 0, else 0 (also with no outcome);
      every exposed unit is in ``n``. E.g. "a fraud was caught".
  ``count``
      The number of attributed outcome events (values are ignored); 0 without any; every
      exposed unit is in ``n``.
  ``mean``
      The average of the unit's attributed outcome values (e.g. its mean latency). A unit
      without an attributed outcome has no value and is not in ``n``. The statistic is the mean
      over units of per-unit averages: each unit weighs the same, as the unit-level variance
      requires (for a per-event mean use ``ratio``-style sums instead).
  ``ratio``
      ``x`` = Σ values of ``metric``, ``y`` = Σ values of ``denominator_metric`` (both within
      the window); the estimate is Σx/Σy with delta-method variance (e.g. errors per request).
      Units with ``y = 0`` are not in ``n``: a unit with no denominator has no ratio (leaving
      out 0/0 units changes neither Σx/Σy nor, up to n/(n−1), its delta-method variance).

* **Cohorts.** ``cohort`` names an attribute of the first exposure's ``attrs`` (e.g.
  ``"country"``). Its value is the cohort: a string as is; a number or boolean as its JSON
  text (``"3"``, ``"true"``); absent or null → cohort ``None``. With ``bands`` (increasing
  finite edges, e.g. ``[0, 100, 500]``) a numeric attribute is banded into ``"(-inf, 0)"``,
  ``"[0, 100)"``, ``"[100, 500)"``, ``"[500, inf)"``; a value that is not a JSON number → ``None``.
  Statistics add up, so the overall statistics are the sum over cohorts (``overall()``).
  Cohorts are ordered by ``cohort_sort_key`` everywhere (cells, ``cohorts``, ``by_cohort``,
  ``arms``, ``to_json``, ``to_frame``): bands by their edges, so ``"(-inf, 30)"``,
  ``"[30, 100)"``, ``"[100, inf)"``, never as text (where ``"[100, inf)"`` comes before
  ``"[30, 100)"``); cohort ``None`` last.

``ts`` must be RFC 3339 UTC text as the server writes it (``YYYY-MM-DDTHH:MM:SS.mmmZ``): SQLite
compares it as text. PostgreSQL casts it to ``timestamptz`` (a ``timestamptz`` column works
too) and ``attrs`` to ``jsonb`` (``text`` or ``jsonb``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import attrs

from rollwise.analysis.suffstats import (
    KINDS,
    Kind,
    SufficientStats,
    check_kind,
    requires_kind,
)
from rollwise.durations import MAX_SECONDS, format_duration, parse_duration
from rollwise.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_WINDOW_SECONDS",
    "KINDS",
    "MAX_BANDS",
    "Cell",
    "Dialect",
    "ReductionResult",
    "ReductionSpec",
    "band_label",
    "cohort_sort_key",
    "dialect_of",
    "format_window",
    "parse_window",
    "reduce_frame",
    "reduce_spec",
    "reduce_sql",
    "reduction_sql",
    "unit_reduction_sql",
]

Dialect = Literal["sqlite", "postgresql"]
DEFAULT_WINDOW_SECONDS: float = 14 * 86400.0
MAX_BANDS = 64
_ATTRIBUTE = re.compile(r'[^"\\\x00-\x1f\x7f]{1,256}')
_NO_LIMIT = ("none", "unbounded", "inf")


# --- time windows -------------------------------------------------------------------------


def parse_window(text: str) -> float | None:
    """``"14d"`` → 1209600.0 seconds, in the one duration grammar (``rollwise.durations``:
    ``1h30m``, ``2w``, ``500ms``, a bare number of seconds); ``"none"`` → ``None`` (no upper
    bound). Raises ``ValueError`` (a ``ConfigurationError``) naming ``window``."""
    if text.strip().lower() in _NO_LIMIT:
        return None
    try:
        seconds = parse_duration(text, "window")
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (or none: no limit)") from None
    return _check_window(seconds)


def format_window(seconds: float | None) -> str:
    """The inverse of ``parse_window``: the largest unit that is exact (``1209600`` → ``"2w"``)."""
    if seconds is None:
        return "none"
    return format_duration(_check_window(seconds))


def _check_window(seconds: float) -> float:
    if not (math.isfinite(seconds) and 0.001 <= seconds <= MAX_SECONDS):
        raise ConfigurationError("window: must be between 1 ms and 100 years, or none")
    return round(seconds * 1000) / 1000


# --- what to reduce -----------------------------------------------------------------------


def _number(value: float) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def band_label(bands: Sequence[float], index: int) -> str:
    """The label of band ``index`` of ``bands`` (0 is below the first edge)."""
    low = "-inf" if index == 0 else _number(bands[index - 1])
    high = "inf" if index == len(bands) else _number(bands[index])
    return f"{'(' if index == 0 else '['}{low}, {high})"


_BAND = re.compile(r"[\[(]\s*([^,\s]+)\s*,\s*([^,\s\])]+)\s*[\])]")
_MISSING = "missing"
_OTHER = "(other)"

CohortSortKey = tuple[int, float, float, str]


def cohort_sort_key(label: object) -> CohortSortKey:
    """The order of cohort labels, one rule for every place that lists cohorts.

    1. Numeric bands (``band_label``, ``fairness.band_labels``, e.g. ``"(-inf, 30)"``,
       ``"[30, 100)"``, ``"[100, inf)"``) by their lower edge, then their upper edge.
    2. Numbers (an ``int`` or ``float`` label, or text that is one, such as ``"3"``, a numeric
       attribute's JSON text) by value.
    3. Any other label as text, in code-point order (``"BR"`` < ``"DE"`` < ``"FR"``): a
       category has no order of its own, and a rule that depends only on the label gives every
       caller (the reduction, the report, the plots, the server's results) the same order.
    4. ``"(other)"``, the server's catch-all of undeclared values.
    5. ``"missing"``, ``None`` and NaN (no value, or not a number where bands were asked for)
       last.

    Use it as ``sorted(labels, key=cohort_sort_key)``. Keys of all labels compare with each
    other, so a mixed list sorts without error.
    """
    if label is None or label == _MISSING:
        return (5, 0.0, 0.0, "")
    if isinstance(label, int | float) and not isinstance(label, bool):
        value = float(label)
        return (5, 0.0, 0.0, "") if math.isnan(value) else (2, value, 0.0, "")
    text = str(label)
    band = _BAND.fullmatch(text.strip())
    if band is not None:
        try:
            low, high = float(band[1]), float(band[2])
        except ValueError:
            pass
        else:
            if not (math.isnan(low) or math.isnan(high)):
                return (1, low, high, text)
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isnan(value):
            return (2, value, 0.0, text)
    if text == _OTHER:
        return (4, 0.0, 0.0, "")
    return (3, 0.0, 0.0, text)


def _part_label(bands: tuple[float, ...] | None, raw: Any) -> str:
    """One attribute's part of a crossing's label (``missing`` when it has no value)."""
    if raw is None:
        return _MISSING
    if bands is not None:
        return band_label(bands, int(raw))
    return raw if isinstance(raw, str) else json.dumps(raw)


def _optional_window(value: float | None) -> float | None:
    return None if value is None else _check_window(value)


def _check_bands(value: Sequence[float] | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    edges = tuple(float(edge) for edge in value)
    if not 1 <= len(edges) <= MAX_BANDS:
        raise ValueError(f"bands: need 1 to {MAX_BANDS} edges")
    if not all(math.isfinite(edge) for edge in edges):
        raise ValueError("bands: edges must be finite numbers")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("bands: edges must be strictly increasing")
    return edges


@requires_kind
@attrs.frozen(kw_only=True)
class ReductionSpec:
    """One reduction: which flag and metric, how to read the metric, which cohorts.

    ``kind`` is required (``binary``, ``count``, ``mean`` or ``ratio``, as the server's metric
    catalogue declares the metric): it decides which units count, so it is never assumed.
    """

    flag: str
    metric: str
    kind: Kind
    env: str | None = None
    cohort: str | None = None
    bands: tuple[float, ...] | None = attrs.field(default=None, converter=_check_bands)
    window_seconds: float | None = attrs.field(
        default=DEFAULT_WINDOW_SECONDS, converter=_optional_window
    )
    denominator_metric: str | None = None
    cross: str | None = None
    """A second cohort attribute: the cohorts are the crossings (``cohort`` x ``cross``),
    labelled as a JSON array of the two labels, e.g. ``["[1000, 5000)", "DE"]``."""
    cross_bands: tuple[float, ...] | None = attrs.field(default=None, converter=_check_bands)
    """Bin edges of ``cross``, as ``bands`` are of ``cohort``."""
    since: str | None = None
    """Only exposures at or after this RFC 3339 time (a rollout's start) count."""
    until: str | None = None
    """Only exposures before this RFC 3339 time count (units whose outcomes had time to come)."""

    def __attrs_post_init__(self) -> None:
        for name in ("flag", "metric"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name}: must be a non-empty string")
        if self.kind == "ratio" and not self.denominator_metric:
            raise ValueError("denominator_metric: a ratio metric needs one")
        if self.kind != "ratio" and self.denominator_metric is not None:
            raise ValueError("denominator_metric: only a ratio metric has one")
        if self.cohort is not None and _ATTRIBUTE.fullmatch(self.cohort) is None:
            raise ValueError(
                "cohort: an attribute name of 1-256 characters without quotes, backslashes "
                "or control characters"
            )
        if self.bands is not None and self.cohort is None:
            raise ValueError("bands: need a cohort attribute to band")
        if self.cross is not None:
            if self.cohort is None or self.cross == self.cohort:
                raise ValueError("cross: needs a cohort attribute, and another one to cross it")
            if _ATTRIBUTE.fullmatch(self.cross) is None:
                raise ValueError(
                    "cross: an attribute name of 1-256 characters without quotes, backslashes "
                    "or control characters"
                )
        if self.cross_bands is not None and self.cross is None:
            raise ValueError("cross_bands: need a cross attribute to band")

    @property
    def window_ms(self) -> int | None:
        return None if self.window_seconds is None else round(self.window_seconds * 1000)

    def cohort_label(self, raw: Any) -> str | None:
        """The label of a cohort value as the SQL returns it (a band index, or text)."""
        if self.cross is not None:
            first, second = json.loads(raw) if isinstance(raw, str) else (None, None)
            parts = (_part_label(self.bands, first), _part_label(self.cross_bands, second))
            return json.dumps(parts, ensure_ascii=False)
        if raw is None:
            return None
        if self.bands is not None:
            return band_label(self.bands, int(raw))
        return str(raw)


# --- results ------------------------------------------------------------------------------


@attrs.frozen
class Cell:
    """One variant in one cohort: ``units`` exposed units, ``stats`` over those with a value."""

    variant: str
    cohort: str | None
    units: int
    stats: SufficientStats


CohortKey = str | tuple[str, str | None]


def _sorted_cells(cells: Iterable[Cell]) -> tuple[Cell, ...]:
    return tuple(sorted(cells, key=lambda cell: (cell.variant, cohort_sort_key(cell.cohort))))


@attrs.frozen(kw_only=True)
class ReductionResult:
    """Statistics per (variant, cohort) and the diagnostics of one reduction.

    ``cells`` are sorted by variant, then by cohort with ``cohort_sort_key`` (bands by their
    edges, cohort ``None`` last), however the result was built (a query, summed rows, JSON);
    without a cohort attribute there is one cell per variant, cohort ``None``.
    ``multiple_variants``: units left out because they were exposed to more than one variant.
    """

    spec: ReductionSpec
    cells: tuple[Cell, ...] = attrs.field(converter=_sorted_cells)
    multiple_variants: int

    @property
    def variants(self) -> list[str]:
        return sorted({cell.variant for cell in self.cells})

    @property
    def cohorts(self) -> list[str | None]:
        return sorted({cell.cohort for cell in self.cells}, key=cohort_sort_key)

    @property
    def units(self) -> int:
        """Exposed units kept (each in exactly one variant)."""
        return sum(cell.units for cell in self.cells)

    def units_by_variant(self) -> dict[str, int]:
        """Exposed units per variant: the counts a sample-ratio-mismatch check needs."""
        out = dict.fromkeys(self.variants, 0)
        for cell in self.cells:
            out[cell.variant] += cell.units
        return out

    def overall(self) -> dict[str, SufficientStats]:
        """Per variant, the sum over cohorts."""
        out: dict[str, SufficientStats] = {}
        for cell in self.cells:
            out[cell.variant] = (
                cell.stats if cell.variant not in out else out[cell.variant] + cell.stats
            )
        return dict(sorted(out.items()))

    def by_cohort(self) -> dict[str | None, dict[str, SufficientStats]]:
        """Per cohort (in ``cohorts`` order), per variant (a variant with no unit in a cohort is
        absent there)."""
        out: dict[str | None, dict[str, SufficientStats]] = {}
        for cell in self.cells:
            out.setdefault(cell.cohort, {})[cell.variant] = cell.stats
        return {cohort: out[cohort] for cohort in self.cohorts}

    def stats(self, variant: str, cohort: str | None = None) -> SufficientStats:
        """One variant's statistics in ``cohort`` (zero when no unit is there)."""
        for cell in self.cells:
            if cell.variant == variant and cell.cohort == cohort:
                return cell.stats
        return SufficientStats(n=0, total=0.0, m2=0.0, kind=self.spec.kind)

    def arms(
        self, control: str, candidate: str
    ) -> dict[CohortKey, tuple[SufficientStats, SufficientStats]]:
        """``{"overall": (control, candidate), (cohort attribute, cohort): (...), ...}``, the
        shape ``Report.from_stats`` takes for one metric."""
        overall = self.overall()
        empty = SufficientStats(n=0, total=0.0, m2=0.0, kind=self.spec.kind)
        out: dict[CohortKey, tuple[SufficientStats, SufficientStats]] = {
            "overall": (overall.get(control, empty), overall.get(candidate, empty))
        }
        if self.spec.cohort is not None:
            for cohort in self.cohorts:
                out[(self.spec.cohort, cohort)] = (
                    self.stats(control, cohort),
                    self.stats(candidate, cohort),
                )
        return out

    # --- JSON (the results endpoint) ---

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "env": spec.env,
            "flag": spec.flag,
            "metric": spec.metric,
            "kind": spec.kind,
            "denominator": spec.denominator_metric,
            "cohort": spec.cohort,
            "bands": None if spec.bands is None else list(spec.bands),
            **(
                {
                    "cross": spec.cross,
                    "cross_bands": None if spec.cross_bands is None else list(spec.cross_bands),
                }
                if spec.cross is not None
                else {}
            ),
            "window": format_window(spec.window_seconds),
            "window_seconds": spec.window_seconds,
            "variants": self.variants,
            "overall": [
                {"variant": variant, "units": units, **_stats_json(self.overall()[variant])}
                for variant, units in self.units_by_variant().items()
            ],
            "cells": [
                {
                    "variant": cell.variant,
                    "cohort": cell.cohort,
                    "units": cell.units,
                    **_stats_json(cell.stats),
                }
                for cell in self.cells
            ],
            "diagnostics": {
                "units": self.units,
                "multiple_variants": self.multiple_variants,
            },
        }

    @classmethod
    def from_rows(cls, spec: ReductionSpec, rows: Iterable[Sequence[Any]]) -> ReductionResult:
        """From the rows of ``reduction_sql`` (or merges of them, ``moments.pooled``):
        ``(variant, cohort, units, n, Σx, M2x, Σy, M2y, Cxy)``, the raw cohort value as the
        query gives it."""
        return _result(spec, rows)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ReductionResult:
        window = body.get("window_seconds")
        spec = ReductionSpec(
            flag=body["flag"],
            metric=body["metric"],
            kind=check_kind(body.get("kind"), "the results' JSON"),  # how the server read it
            env=body.get("env"),
            cohort=body.get("cohort"),
            bands=body.get("bands"),
            window_seconds=None if window is None else float(window),
            denominator_metric=body.get("denominator"),
            cross=body.get("cross"),
            cross_bands=body.get("cross_bands"),
        )
        cells = tuple(
            Cell(
                variant=str(item["variant"]),
                cohort=item.get("cohort"),
                units=int(item["units"]),
                stats=_stats_from_json(item, spec.kind),
            )
            for item in body["cells"]
        )
        return cls(
            spec=spec,
            cells=cells,
            multiple_variants=int(body["diagnostics"]["multiple_variants"]),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per cell: variant, cohort, units, n, the sums, mean and variance."""
        import pandas as pd

        columns = [
            "variant", "cohort", "units", "n", "total", "m2", "den_total", "den_m2",
            "comoment", "mean", "variance",
        ]  # fmt: skip
        records = [
            {
                "variant": cell.variant,
                "cohort": cell.cohort,
                "units": cell.units,
                **_stats_json(cell.stats),
                "mean": cell.stats.mean,
                "variance": cell.stats.variance,
            }
            for cell in self.cells
        ]
        return pd.DataFrame.from_records(records, columns=columns)


def _stats_json(stats: SufficientStats) -> dict[str, Any]:
    return {
        "n": stats.n,
        "total": stats.total,
        "m2": stats.m2,
        "den_total": stats.den_total,
        "den_m2": stats.den_m2,
        "comoment": stats.comoment,
    }


def _stats_from_json(item: Mapping[str, Any], kind: Kind) -> SufficientStats:
    return SufficientStats(
        n=int(item["n"]),
        total=float(item["total"]),
        m2=float(item["m2"]),
        kind=kind,
        den_total=float(item.get("den_total", 0.0)),
        den_m2=float(item.get("den_m2", 0.0)),
        comoment=float(item.get("comoment", 0.0)),
    )


Row = Sequence[Any]
"""``(variant, cohort, units, n, Σx, M2x, Σy, M2y, Cxy)`` per group: ``n`` units with a value,
their Σx, M2x = Σ(x − x̄)², a ratio's Σy and M2y, and Cxy = Σ(x − x̄)(y − ȳ) (zeros without a
denominator); variant ``None`` is the group of units exposed to more than one variant."""


def _result(spec: ReductionSpec, rows: Iterable[Row]) -> ReductionResult:
    cells: list[Cell] = []
    multiple = 0
    for variant, cohort, units, n, sx, m2x, sy, m2y, cxy in rows:
        if variant is None:
            multiple += int(units)
            continue
        if spec.kind == "binary":
            stats = SufficientStats.binary(int(n), float(sx or 0.0))
        else:
            stats = SufficientStats(
                n=int(n),
                total=float(sx or 0.0),
                m2=max(float(m2x or 0.0), 0.0),
                kind=spec.kind,
                den_total=float(sy or 0.0),
                den_m2=max(float(m2y or 0.0), 0.0),
                comoment=float(cxy or 0.0),
            )
        label = spec.cohort_label(cohort) if spec.cohort is not None else None
        cells.append(Cell(str(variant), label, int(units), stats))
    return ReductionResult(spec=spec, cells=tuple(cells), multiple_variants=multiple)


# --- SQL ----------------------------------------------------------------------------------


def _bands_case(bands: Sequence[float], value: str, param: Any) -> str:
    whens = " ".join(f"WHEN {value} < {param(f'edge{i}')} THEN {i}" for i in range(len(bands)))
    return f"CASE {whens} ELSE {len(bands)} END"


def _sqlite_value(
    attribute: str, bands: Sequence[float] | None, prefix: str, params: dict[str, Any]
) -> str:
    """The SQLite expression of one attribute's cohort value in ``e.attrs``: its text (JSON
    text for a number or boolean), or its band's index; parameters named with ``prefix``."""
    path = f":{prefix}path"
    params[f"{prefix}path"] = f'$."{attribute}"'
    if bands is None:
        return (
            f"CASE json_type(e.attrs, {path}) WHEN 'text' THEN json_extract(e.attrs, {path}) "
            f"WHEN 'null' THEN NULL ELSE e.attrs -> {path} END"
        )
    for i, edge in enumerate(bands):
        params[f"{prefix}edge{i}"] = edge
    case = _bands_case(bands, f"json_extract(e.attrs, {path})", lambda n: f":{prefix}{n}")
    return f"CASE WHEN json_type(e.attrs, {path}) IN ('integer', 'real') THEN {case} END"


def _sqlite_sql(
    spec: ReductionSpec, *, units: str | None = None, ctes: str = ""
) -> tuple[str, dict[str, Any]]:
    """SQLite: the first exposure per unit by a streaming ``GROUP BY`` over the
    ``(env, flag, unit_type, unit, ts)`` index; then, per kept unit, its outcomes by one index
    range search of ``(env, metric, unit_type, unit, ts)`` and its cohort by one search of its
    first exposure (correlated subqueries); then the moments per group (``_sqlite_moments``).
    """
    params: dict[str, Any] = {"env": spec.env, "flag": spec.flag, "metric": spec.metric}

    def p(name: str) -> str:
        return f":{name}"

    window = ""
    if spec.window_ms is not None:
        params["window"] = f"+{spec.window_ms / 1000:.3f} seconds"
        window = " AND o.ts < strftime('%Y-%m-%dT%H:%M:%fZ', x.t0, :window)"
    env_exposure = "env = :env AND " if spec.env is not None else ""
    if spec.since is not None:
        params["since"] = spec.since
        env_exposure += "ts >= :since AND "
    if spec.until is not None:
        params["until"] = spec.until
        env_exposure += "ts < :until AND "
    env_outcome = "o.env = :env AND " if spec.env is not None else ""
    env_first = "e.env = :env AND " if spec.env is not None else ""
    # over given units (``unit_reduction_sql``): events up to the :exposure_seq/:outcome_seq
    seq_e = " AND e.seq <= :exposure_seq" if units is not None else ""
    seq_o = " AND o.seq <= :outcome_seq" if units is not None else ""

    cohort = "NULL"
    if spec.cohort is not None:
        value = _sqlite_value(spec.cohort, spec.bands, "", params)
        if spec.cross is not None:
            crossed = _sqlite_value(spec.cross, spec.cross_bands, "x_", params)
            value = f"json_array({value}, {crossed})"
        cohort = (
            f"(SELECT {value} FROM exposures AS e WHERE {env_first}e.flag = :flag "  # noqa: S608
            "AND e.unit_type = x.unit_type AND e.unit = x.unit AND e.ts = x.t0"
            f"{seq_e} ORDER BY e.id LIMIT 1)"
        )

    def outcomes(select: str, metric: str = ":metric", extra: str = "") -> str:
        return (
            f"(SELECT {select} FROM outcomes AS o WHERE {env_outcome}o.metric = {metric} "  # noqa: S608
            f"AND o.unit_type = x.unit_type AND o.unit = x.unit AND o.ts >= x.t0{window}{seq_o}"
            f"{extra})"
        )

    y = "NULL"
    if spec.kind == "binary":
        x = f"EXISTS {outcomes('1', extra=' AND o.value > 0')}"
    elif spec.kind == "count":
        x = outcomes("count(*)")
    elif spec.kind == "mean":
        x = outcomes("avg(o.value)")
    else:
        params["denominator"] = spec.denominator_metric
        x = outcomes("total(o.value)")
        y = outcomes("total(o.value)", ":denominator")

    exposed = units or (
        "\n    SELECT unit_type, unit, min(ts) AS t0, min(variant) AS lo, max(variant) AS hi"  # noqa: S608
        f"\n    FROM exposures\n    WHERE {env_exposure}flag = :flag"
        "\n    GROUP BY unit_type, unit"
    )
    sql = f"""
WITH {ctes}exposed AS ({exposed}
), per_unit AS {"" if spec.kind == "binary" else "MATERIALIZED "}(
    SELECT CASE WHEN x.lo = x.hi THEN x.lo END AS variant,
           CASE WHEN x.lo = x.hi THEN {cohort} END AS cohort,
           CASE WHEN x.lo = x.hi THEN {x} END AS x,
           CASE WHEN x.lo = x.hi THEN {y} END AS y
    FROM exposed AS x{_sqlite_moments(spec.kind)}"""  # noqa: S608 (pieces are constants; values are parameters)
    return sql.strip(), params


def _sqlite_moments(kind: Kind) -> str:
    """The last steps of the SQLite reduction: per (variant, cohort) ``count(*)``, ``n``, Σx,
    M2x, Σy, M2y and Cxy, never Σx², which loses a variance small next to the mean.

    0/1 values (``binary``) have M2 = s − s²/n exactly (s successes: small integers, exact in
    floating point), in the one ``GROUP BY``; ``LIMIT -1`` keeps the per-unit subquery from
    being flattened into it (which would evaluate each subquery once per use). Other kinds are
    centred on the group's means (a window ``avg`` over the ``MATERIALIZED`` per-unit values)
    and corrected for their rounding (``moments``). A ratio keeps the units with ``y <> 0``.
    """
    if kind == "binary":
        exact = "CASE WHEN count(x) > 0 THEN total(x) - total(x) * total(x) / count(x) ELSE 0.0 END"
        return f"""
    LIMIT -1
)
SELECT variant, cohort, count(*), count(x), total(x), {exact}, 0.0, 0.0, 0.0
FROM per_unit
GROUP BY variant, cohort"""  # noqa: S608 (constant pieces)
    ratio = kind == "ratio"
    kept = "CASE WHEN y <> 0 THEN x END AS x, CASE WHEN y <> 0 THEN y END AS y" if ratio else "x, y"

    def m2(a: str, b: str) -> str:
        return (
            f"CASE WHEN count(x) > 0 THEN total({a} * {b}) - total({a}) * total({b}) / count(x) "
            "ELSE 0.0 END"
        )

    return f"""
), kept AS (
    SELECT variant, cohort, {kept} FROM per_unit
), centred AS (
    SELECT variant, cohort, x, y, x - avg(x) OVER by_group AS dx,
           y - avg(y) OVER by_group AS dy
    FROM kept
    WINDOW by_group AS (PARTITION BY variant, cohort)
)
SELECT variant, cohort, count(*), count(x), total(x), {m2("dx", "dx")},
       total(y), {m2("dy", "dy")}, {m2("dx", "dy")}
FROM centred
GROUP BY variant, cohort"""  # noqa: S608 (constant pieces)


def _postgresql_value(
    attribute: str, bands: Sequence[float] | None, prefix: str, params: dict[str, Any]
) -> str:
    """The PostgreSQL expression of one attribute's cohort value in ``x.a``, as in SQLite."""
    name = f"%({prefix}attribute)s"
    params[f"{prefix}attribute"] = attribute
    if bands is None:
        return f"x.a ->> {name}"
    for i, edge in enumerate(bands):
        params[f"{prefix}edge{i}"] = edge
    case = _bands_case(bands, f"(x.a ->> {name})::float8", lambda n: f"%({prefix}{n})s")
    return f"CASE WHEN jsonb_typeof(x.a -> {name}) = 'number' THEN {case} END"


def _postgresql_sql(spec: ReductionSpec) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: hash aggregates and a hash join. Times are compared as the text they are
    stored as (canonical UTC, fixed width, ``C`` collation: text order is time order), so no
    row is parsed; each unit's window end is made once, as text of the same shape. The first
    exposure's attributes are the last element of the smallest ``[ts, id, attrs]`` array (no
    sort per unit), read as ``jsonb`` once per unit. A binary metric joins only the positive
    outcomes, the only ones that can make a unit a success."""
    params: dict[str, Any] = {"env": spec.env, "flag": spec.flag, "metric": spec.metric}

    def p(name: str) -> str:
        return f"%({name})s"

    env_exposure = "env = %(env)s AND " if spec.env is not None else ""
    if spec.since is not None:
        params["since"] = spec.since
        env_exposure += "ts >= %(since)s AND "
    if spec.until is not None:
        params["until"] = spec.until
        env_exposure += "ts < %(until)s AND "
    env_outcome = "o.env = %(env)s AND " if spec.env is not None else ""
    first_attrs = ""
    cohort = "NULL::text"
    if spec.cohort is not None:
        first_attrs = ', (min(ARRAY[ts, id, attrs COLLATE "C"]))[3]::jsonb AS a'
        cohort = _postgresql_value(spec.cohort, spec.bands, "", params)
        if spec.cross is not None:
            crossed = _postgresql_value(spec.cross, spec.cross_bands, "x_", params)
            cohort = f"jsonb_build_array({cohort}, {crossed})::text"
    window, t1 = "", ", NULL::text AS t1"
    if spec.window_ms is not None:
        params["window"] = spec.window_ms / 1000
        window = ' AND o.ts COLLATE "C" < u.t1'
        t1 = (  # in the aggregate's own list: made once per unit, not once per joined row
            ',\n           to_char((min(ts COLLATE "C")::timestamptz'
            " + make_interval(secs => %(window)s)) AT TIME ZONE 'UTC',"
            ' \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\') COLLATE "C" AS t1'
        )
    metrics = "%(metric)s"
    y = "NULL::float8"
    positive = ""
    if spec.kind == "binary":
        # a unit succeeds if one outcome in its window is positive: only those are joined
        positive = " AND o.value > 0"
        x = "CASE WHEN count(o.unit) > 0 THEN 1.0::float8 ELSE 0.0::float8 END"
    elif spec.kind == "count":
        x = "count(o.unit)::float8"
    elif spec.kind == "mean":
        x = "avg(o.value)::float8"
    else:
        params["denominator"] = spec.denominator_metric
        metrics = "%(metric)s, %(denominator)s"
        x = "coalesce(sum(o.value) FILTER (WHERE o.metric = %(metric)s), 0)::float8"
        y = "coalesce(sum(o.value) FILTER (WHERE o.metric = %(denominator)s), 0)::float8"
    # centred sums: var_pop and covar_pop (Youngs-Cramer updates since PostgreSQL 12) times n,
    # never Σx², which loses a variance small next to the mean (``moments``)
    keep = " FILTER (WHERE y <> 0)" if spec.kind == "ratio" else ""
    sums = (
        f"count(x){keep}, coalesce(sum(x){keep}, 0), "
        f"coalesce(var_pop(x){keep} * count(x){keep}, 0), coalesce(sum(y){keep}, 0), "
        f"coalesce(var_pop(y){keep} * count(y){keep}, 0), "
        f"coalesce(covar_pop(x, y){keep} * count(y){keep}, 0)"
    )
    sql = f"""
WITH exposed AS (
    SELECT unit_type, unit, min(ts COLLATE "C") AS t0{t1},
           CASE WHEN min(variant) = max(variant) THEN min(variant) END AS variant{first_attrs}
    FROM exposures
    WHERE {env_exposure}flag = %(flag)s
    GROUP BY unit_type, unit
), units AS (
    SELECT x.unit_type, x.unit, x.t0, x.t1, x.variant,
           CASE WHEN x.variant IS NOT NULL THEN {cohort} END AS cohort
    FROM exposed AS x
), per_unit AS (
    SELECT u.variant, u.cohort,
           CASE WHEN u.variant IS NOT NULL THEN {x} END AS x,
           CASE WHEN u.variant IS NOT NULL THEN {y} END AS y
    FROM units AS u
    LEFT JOIN outcomes AS o
      ON u.variant IS NOT NULL AND {env_outcome}o.metric IN ({metrics}){positive}
     AND o.unit_type = u.unit_type AND o.unit = u.unit
     AND o.ts COLLATE "C" >= u.t0{window}
    GROUP BY u.unit_type, u.unit, u.variant, u.cohort
)
SELECT variant, cohort, count(*), {sums}
FROM per_unit
GROUP BY variant, cohort"""  # noqa: S608 (pieces are constants; values are parameters)
    return sql.strip(), params


def reduction_sql(spec: ReductionSpec, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The one ``GROUP BY`` query of ``spec`` and its named parameters.

    Rows: ``(variant, cohort, units, n, Σx, M2x, Σy, M2y, Cxy)`` (``Row``: centred sums); the
    row with variant ``NULL`` counts the units exposed to more than one variant. Parameters are
    named (``:name`` for SQLite, ``%(name)s`` for PostgreSQL drivers); identifiers are
    constants.
    """
    if dialect == "sqlite":
        return _sqlite_sql(spec)
    if dialect == "postgresql":
        return _postgresql_sql(spec)
    raise ValueError(f"dialect: must be 'sqlite' or 'postgresql', not {dialect!r}")


def unit_reduction_sql(
    spec: ReductionSpec, units: str, ctes: str = ""
) -> tuple[str, dict[str, Any]]:
    """SQLite: the reduction of ``spec`` over given units instead of all exposures.

    ``units`` is a ``SELECT`` of ``(unit_type, unit, t0, lo, hi)``: each unit's first exposure
    time and its smallest and largest variant (``ctes``: common table expressions it uses,
    ending with a comma). Outcomes count up to ``seq <= :outcome_seq`` and the cohort's first
    exposure up to ``seq <= :exposure_seq`` (parameters the caller adds). The server's rollout
    controller reduces incrementally with it: a look subtracts the old contribution of the
    units that changed since the last look and adds their new one, so its cost follows the new
    events, not all of them. The rows are those of ``reduction_sql``.
    """
    return _sqlite_sql(spec, units=units, ctes=ctes)


def dialect_of(conn: Any) -> Dialect:
    """``"sqlite"`` or ``"postgresql"``, from the module of a DB-API connection."""
    if isinstance(conn, sqlite3.Connection):
        return "sqlite"
    module = type(conn).__module__.split(".")[0]
    if module in ("psycopg", "psycopg2", "pg8000", "asyncpg"):
        return "postgresql"
    if module in ("sqlite3", "apsw"):
        return "sqlite"
    raise ValueError(f"dialect: cannot tell the dialect of a {type(conn).__name__}; pass it")


# SQLite's defaults (a 2 MB page cache, sorts spilled to disk, one thread) are tuned for small
# queries; a reduction over millions of rows is far faster with a larger cache and memory map.
_SQLITE_PRAGMAS = {"cache_size": -262144, "mmap_size": 1 << 30, "threads": 2}


@contextmanager
def _tuned(conn: Any, dialect: Dialect) -> Iterator[None]:
    """For a ``sqlite3`` connection, a larger cache (the sorter's memory), a memory map and
    sorter threads while the query runs; for PostgreSQL, no JIT compilation (on 10 million
    rows it took 3 of the query's 30 seconds and saved none). The connection's own settings
    are restored after."""
    if dialect == "postgresql":
        with _postgresql_tuned(conn):
            yield
        return
    if not isinstance(conn, sqlite3.Connection):
        yield
        return
    saved: dict[str, int] = {}
    for name in _SQLITE_PRAGMAS:
        row = conn.execute(f"PRAGMA {name}").fetchone()
        if row is not None:  # an in-memory database has no memory map
            saved[name] = int(row[0])
    try:
        for name in saved:
            conn.execute(f"PRAGMA {name} = {int(_SQLITE_PRAGMAS[name])}")
        yield
    finally:
        for name, value in saved.items():
            conn.execute(f"PRAGMA {name} = {int(value)}")


@contextmanager
def _postgresql_tuned(conn: Any) -> Iterator[None]:
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT current_setting('jit')")
        row = cursor.fetchone()
        saved = str(row[0]) if row is not None else "on"
        cursor.execute("SET jit = off")
    finally:
        cursor.close()
    failed = True
    try:
        yield
        failed = False
    finally:
        cursor = conn.cursor()
        try:
            cursor.execute("SELECT set_config('jit', %s, false)", (saved,))
        except Exception:
            # a failed query aborted the caller's transaction: its rollback undoes the SET
            if not failed:
                raise
        finally:
            cursor.close()


@requires_kind
def reduce_sql(
    conn: Any,
    flag: str,
    metric: str,
    *,
    env: str | None,
    kind: Kind,
    dialect: Dialect | None = None,
    cohort: str | None = None,
    bands: Sequence[float] | None = None,
    window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
    denominator_metric: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cross: str | None = None,
    cross_bands: Sequence[float] | None = None,
) -> ReductionResult:
    """Reduce in the database behind ``conn`` (any DB-API connection: ``sqlite3``, psycopg,
    ...) with one query; only the per-(variant, cohort) rows come back.

    ``kind`` is required (see the module docstring; a missing one raises
    ``ConfigurationError``). ``env=None`` reduces over every environment. ``dialect`` is guessed
    from the connection's module when omitted. The tables are the server's ``exposures`` and
    ``outcomes``. A PostgreSQL transaction opened by the query is left to the caller.
    """
    spec = ReductionSpec(
        flag=flag, metric=metric, kind=kind, env=env, cohort=cohort, bands=bands,
        window_seconds=window_seconds, denominator_metric=denominator_metric, since=since,
        until=until, cross=cross, cross_bands=cross_bands,
    )  # fmt: skip
    return reduce_spec(conn, spec, dialect=dialect)


def reduce_spec(
    conn: Any, spec: ReductionSpec, *, dialect: Dialect | None = None
) -> ReductionResult:
    """``reduce_sql`` for a ``ReductionSpec``."""
    dialect = dialect or dialect_of(conn)
    sql, params = reduction_sql(spec, dialect)
    with _tuned(conn, dialect):
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    return _result(spec, rows)


# --- pandas -------------------------------------------------------------------------------


def _attrs_value(attrs_value: Any, name: str) -> Any:
    if isinstance(attrs_value, str | bytes):
        try:
            attrs_value = json.loads(attrs_value)
        except ValueError:
            return None
    if not isinstance(attrs_value, Mapping):
        return None
    return attrs_value.get(name)


def _cohort_raw(spec: ReductionSpec, value: Any) -> Any:
    return _raw_value(spec.bands, value)


def _raw_value(bands: Sequence[float] | None, value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if bands is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return sum(1 for edge in bands if value >= edge)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _crossed_raw(spec: ReductionSpec, attrs_value: Any) -> str:
    """A crossing's raw value, as the SQL gives it: the JSON array of the two raw values."""
    first = _raw_value(spec.bands, _attrs_value(attrs_value, spec.cohort or ""))
    second = _raw_value(spec.cross_bands, _attrs_value(attrs_value, spec.cross or ""))
    return json.dumps([first, second])


def _utc(series: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(series, utc=True, format="ISO8601")


@requires_kind
def reduce_frame(
    exposures: pd.DataFrame,
    outcomes: pd.DataFrame,
    flag: str,
    metric: str,
    *,
    env: str | None = None,
    kind: Kind,
    cohort: str | None = None,
    bands: Sequence[float] | None = None,
    window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
    denominator_metric: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cross: str | None = None,
    cross_bands: Sequence[float] | None = None,
) -> ReductionResult:
    """The same reduction with pandas, for DataFrames with the event columns (``kind``
    required, as for ``reduce_sql``).

    ``exposures``: ``ts``, ``flag``, ``variant``, ``unit_type``, ``unit``, ``attrs`` (a dict
    or JSON text; needed only with ``cohort``), ``id`` (ties; without it, row order), ``env``
    (filtered when ``env`` is given). ``outcomes``: ``ts``, ``metric``, ``unit_type``,
    ``unit``, ``value`` (``env`` likewise). ``ts``: datetimes or RFC 3339 text.
    """
    import numpy as np
    import pandas as pd

    spec = ReductionSpec(
        flag=flag, metric=metric, kind=kind, env=env, cohort=cohort, bands=bands,
        window_seconds=window_seconds, denominator_metric=denominator_metric, since=since,
        until=until, cross=cross, cross_bands=cross_bands,
    )  # fmt: skip
    mask = exposures["flag"] == flag
    if env is not None and "env" in exposures.columns:
        mask &= exposures["env"] == env
    if since is not None:
        mask &= _utc(exposures["ts"]) >= _utc(pd.Series([since])).iloc[0]
    if until is not None:
        mask &= _utc(exposures["ts"]) < _utc(pd.Series([until])).iloc[0]
    exp = exposures.loc[mask]
    frame = pd.DataFrame(
        {
            "unit_type": exp["unit_type"].astype(str),
            "unit": exp["unit"].astype(str),
            "ts": _utc(exp["ts"]),
            "id": exp["id"].astype(str) if "id" in exp.columns else np.arange(len(exp)),
            "variant": exp["variant"].astype(str),
            "row": np.arange(len(exp)),
        }
    )
    frame = frame.sort_values(["unit_type", "unit", "ts", "id"], kind="stable")
    keys = ["unit_type", "unit"]
    first = frame.drop_duplicates(keys, keep="first").set_index(keys)
    distinct = frame.groupby(keys, sort=False)["variant"].nunique()
    units = first.assign(single=distinct.reindex(first.index) == 1)
    if spec.cohort is not None:
        name = spec.cohort
        first_attrs = exp["attrs"].to_numpy()[units["row"].to_numpy()]
        if spec.cross is not None:
            units["cohort"] = [_crossed_raw(spec, a) for a in first_attrs]
        else:
            units["cohort"] = [_cohort_raw(spec, _attrs_value(a, name)) for a in first_attrs]
    else:
        units["cohort"] = None
    kept = units.loc[units["single"]]

    wanted = [metric] if spec.denominator_metric is None else [metric, spec.denominator_metric]
    omask = outcomes["metric"].isin(wanted)
    if env is not None and "env" in outcomes.columns:
        omask &= outcomes["env"] == env
    out = outcomes.loc[omask]
    events = pd.DataFrame(
        {
            "unit_type": out["unit_type"].astype(str),
            "unit": out["unit"].astype(str),
            "ts": _utc(out["ts"]),
            "metric": out["metric"].astype(str),
            "value": out["value"].astype(float),
        }
    ).merge(kept[["ts"]].rename(columns={"ts": "t0"}).reset_index(), on=keys)
    attributed = events["ts"] >= events["t0"]
    if spec.window_ms is not None:
        attributed &= events["ts"] < events["t0"] + pd.Timedelta(milliseconds=spec.window_ms)
    events = events.loc[attributed]
    per_unit = events.groupby(keys, sort=False)

    def by_unit(values: pd.Series, fill: float | None) -> pd.Series:
        aligned = values.reindex(kept.index)
        return aligned if fill is None else aligned.fillna(fill)

    x: pd.Series
    y: pd.Series | None = None
    if spec.kind == "binary":
        hit = (events["value"] > 0).groupby([events["unit_type"], events["unit"]]).max()
        x = by_unit(hit.astype(float), 0.0)  # float before the fill: no object-dtype downcast
    elif spec.kind == "count":
        x = by_unit(per_unit.size().astype(float), 0.0)
    elif spec.kind == "mean":
        x = by_unit(per_unit["value"].mean(), None)
    else:
        num = events.loc[events["metric"] == metric]
        den = events.loc[events["metric"] == spec.denominator_metric]
        x = by_unit(num.groupby(keys, sort=False)["value"].sum(), 0.0)
        y = by_unit(den.groupby(keys, sort=False)["value"].sum(), 0.0)
        x = x.where(y != 0)
        y = y.where(y != 0)
    table = pd.DataFrame(
        {
            "variant": kept["variant"],
            "cohort": pd.factorize(kept["cohort"], use_na_sentinel=True)[0],
            "x": x,
            "y": y if y is not None else np.nan,
        }
    )
    labels = pd.factorize(kept["cohort"], use_na_sentinel=True)[1]
    groups = ["variant", "cohort"]
    # centred on each group's means, as the SQL does (``moments``): never Σx²
    means = table.groupby(groups, sort=False)[["x", "y"]].transform("mean")
    dx, dy = table["x"] - means["x"], table["y"] - means["y"]
    table = table.assign(dx=dx, dy=dy, dxx=dx * dx, dyy=dy * dy, dxy=dx * dy)
    grouped = table.groupby(groups, sort=False)
    sums = grouped[["x", "dx", "dxx", "y", "dy", "dyy", "dxy"]].sum(min_count=0)
    counts = grouped["x"].count()
    sizes = grouped.size()
    rows: list[Row] = []
    for variant, code in sizes.index:
        n = int(counts[(variant, code)])
        sx, sdx, sdxx, sy, sdy, sdyy, sdxy = (float(v) for v in sums.loc[(variant, code)])
        m2x, m2y, cxy = (
            (sdxx - sdx * sdx / n, sdyy - sdy * sdy / n, sdxy - sdx * sdy / n)
            if n
            else (0.0, 0.0, 0.0)
        )
        label = None if code < 0 else labels[code]
        rows.append((variant, label, int(sizes[(variant, code)]), n, sx, m2x, sy, m2y, cxy))
    excluded = int((~units["single"]).sum())
    if excluded:
        rows.append((None, None, excluded, 0, 0.0, 0.0, 0.0, 0.0, 0.0))
    return _result(spec, rows)

"""``SufficientStats``: everything a comparison needs from one arm, in a few sums.

A metric's unit-level values reduce to ``n``, ``Σx`` and ``Σx²`` (and, for a ratio metric,
``Σy``, ``Σy²`` and ``Σxy``; for CUPED, the covariate's ``Σc``, ``Σc²`` and ``Σxc``). The
reduction runs where the data lives (SQL ``GROUP BY`` or pandas); statistics from different
looks or cohorts add up with ``+``. Pure Python: the controller imports it without statsmodels.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar, cast

import attrs

from rollwise.errors import ConfigurationError

__all__ = ["KINDS", "Kind", "SufficientStats", "check_kind", "requires_kind"]

Kind = Literal["mean", "binary", "ratio", "count"]
KINDS: tuple[Kind, ...] = ("binary", "count", "mean", "ratio")

_T = TypeVar("_T", bound=Callable[..., Any])


def check_kind(kind: object, where: str) -> Kind:
    """``kind`` if it is one of ``KINDS``; else a ``ConfigurationError`` (a ``ValueError``).

    A missing kind (``None``) is never replaced by a default: how a metric is read changes which
    units count (a 0/1 metric read as a mean keeps only the units that have an outcome, so its
    mean is 1.0), so the caller states it, as the server's metric catalogue declares it.
    """
    if kind is None:
        raise ConfigurationError(
            f"kind: {where} needs the metric's kind, one of {', '.join(KINDS)}: the kind the "
            'server\'s metric catalogue declares for the metric (e.g. kind="binary" for a 0/1 '
            "metric such as fraud_caught). rollwise.analysis never assumes one: a 0/1 metric "
            "read as a mean keeps only the units that have an outcome."
        )
    if kind not in KINDS:
        raise ConfigurationError(f"kind: must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _kind_checked(func: Callable[..., Any], where: str) -> Callable[..., Any]:
    parameters = list(inspect.signature(func).parameters.values())
    index = [p.name for p in parameters].index("kind")
    positional = parameters[index].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if "kind" in kwargs:
            kind = kwargs["kind"]
        else:
            kind = args[index] if positional and len(args) > index else None
        check_kind(kind, where)
        return func(*args, **kwargs)

    return checked


def requires_kind(target: _T) -> _T:
    """Decorates a function (under ``classmethod`` for a method) or a class whose ``__init__``
    takes ``kind``: a missing (or ``None``) or unknown kind raises ``check_kind``'s error, which
    lists the kinds, where Python's own "missing 1 required argument" would name none.

    The signature still declares ``kind`` without a default, so mypy flags a call without it.
    """
    if isinstance(target, type):
        init = _kind_checked(vars(target)["__init__"], f"{target.__name__}()")
        target.__init__ = init  # type: ignore[misc]
        return target
    return cast("_T", _kind_checked(target, f"{target.__qualname__}()"))


@requires_kind
@attrs.frozen
class SufficientStats:
    """Sums over the units of one arm (or cohort) for one metric (``kind`` is required)."""

    n: int
    total: float
    total_sq: float
    kind: Kind
    den_total: float = 0.0
    den_total_sq: float = 0.0
    cross: float = 0.0
    cov_total: float = 0.0
    cov_total_sq: float = 0.0
    cov_cross: float = 0.0
    has_covariate: bool = False

    # --- named constructors ---

    @classmethod
    def binary(cls, n: int, successes: float) -> SufficientStats:
        """A 0/1 metric: ``successes`` of ``n`` units (``Σx² = Σx``)."""
        if n < 0 or not 0 <= successes <= n:
            raise ValueError(f"binary: need 0 <= successes <= n, not {successes} of {n}")
        return cls(n=int(n), total=float(successes), total_sq=float(successes), kind="binary")

    @classmethod
    @requires_kind
    def from_values(
        cls,
        values: Iterable[float],
        *,
        kind: Kind,
        covariate: Iterable[float] | None = None,
    ) -> SufficientStats:
        """Sums of unit-level values (and of a pre-exposure covariate, for CUPED); ``kind`` is
        ``"mean"``, ``"binary"`` (0/1 values) or ``"count"``."""
        if kind == "ratio":
            raise ValueError("from_values: a ratio metric needs ratio_from_values")
        xs = [float(v) for v in values]
        stats = cls(
            n=len(xs), total=math.fsum(xs), total_sq=math.fsum(x * x for x in xs), kind=kind
        )
        if covariate is None:
            return stats
        cs = [float(c) for c in covariate]
        if len(cs) != len(xs):
            raise ValueError("covariate: needs one value per unit")
        return attrs.evolve(
            stats,
            cov_total=math.fsum(cs),
            cov_total_sq=math.fsum(c * c for c in cs),
            cov_cross=math.fsum(x * c for x, c in zip(xs, cs, strict=True)),
            has_covariate=True,
        )

    @classmethod
    def ratio_from_values(
        cls, numerators: Sequence[float], denominators: Sequence[float]
    ) -> SufficientStats:
        """A ratio metric (Σ numerator / Σ denominator) from per-unit pairs."""
        if len(numerators) != len(denominators):
            raise ValueError("numerators and denominators: need one pair per unit")
        xs = [float(v) for v in numerators]
        ys = [float(v) for v in denominators]
        return cls(
            n=len(xs),
            total=math.fsum(xs),
            total_sq=math.fsum(x * x for x in xs),
            kind="ratio",
            den_total=math.fsum(ys),
            den_total_sq=math.fsum(y * y for y in ys),
            cross=math.fsum(x * y for x, y in zip(xs, ys, strict=True)),
        )

    # --- combining ---

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if not isinstance(other, SufficientStats):
            return NotImplemented
        if other.kind != self.kind:
            raise ValueError(f"cannot add {self.kind} statistics to {other.kind} statistics")
        return SufficientStats(
            n=self.n + other.n,
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            kind=self.kind,
            den_total=self.den_total + other.den_total,
            den_total_sq=self.den_total_sq + other.den_total_sq,
            cross=self.cross + other.cross,
            cov_total=self.cov_total + other.cov_total,
            cov_total_sq=self.cov_total_sq + other.cov_total_sq,
            cov_cross=self.cov_cross + other.cov_cross,
            has_covariate=self.has_covariate and other.has_covariate,
        )

    @classmethod
    def combine(cls, parts: Iterable[SufficientStats]) -> SufficientStats | None:
        """The sum of ``parts`` (``None`` when there are none)."""
        out: SufficientStats | None = None
        for part in parts:
            out = part if out is None else out + part
        return out

    # --- moments ---

    @property
    def mean(self) -> float:
        """The metric's estimate: the mean, the proportion, or Σx/Σy for a ratio."""
        if self.kind == "ratio":
            return self.total / self.den_total if self.den_total else math.nan
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Unit-level variance of the estimate's influence (sample variance, n−1).

        Binary: p(1−p). Ratio: the delta method (Deng et al. 2018, "Applying the Delta Method
        in Metric Analytics", eq. 4): (σx² − 2rσxy + r²σy²)/μy² with r = Σx/Σy.
        """
        n = self.n
        if n < 2:
            return math.nan
        if self.kind == "binary":
            p = self.total / n
            return max(p * (1.0 - p), 0.0)
        var_x = max((self.total_sq - self.total * self.total / n) / (n - 1), 0.0)
        if self.kind != "ratio":
            return var_x
        if not self.den_total:
            return math.nan
        var_y = max((self.den_total_sq - self.den_total**2 / n) / (n - 1), 0.0)
        cov_xy = (self.cross - self.total * self.den_total / n) / (n - 1)
        ratio = self.total / self.den_total
        mean_y = self.den_total / n
        return max((var_x - 2 * ratio * cov_xy + ratio * ratio * var_y) / (mean_y * mean_y), 0.0)

    @property
    def covariate_mean(self) -> float:
        return self.cov_total / self.n if self.n else math.nan

    @property
    def covariate_variance(self) -> float:
        n = self.n
        if n < 2:
            return math.nan
        return max((self.cov_total_sq - self.cov_total**2 / n) / (n - 1), 0.0)

    @property
    def covariance_with_covariate(self) -> float:
        n = self.n
        if n < 2:
            return math.nan
        return (self.cov_cross - self.total * self.cov_total / n) / (n - 1)

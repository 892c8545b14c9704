"""``SufficientStats``: everything a comparison needs from one arm, in a few sums.

A metric's unit-level values reduce to ``n``, ``Σx`` and ``Σx²`` (and, for a ratio metric,
``Σy``, ``Σy²`` and ``Σxy``; for CUPED, the covariate's ``Σc``, ``Σc²`` and ``Σxc``). The
reduction runs where the data lives (SQL ``GROUP BY`` or pandas); statistics from different
looks or cohorts add up with ``+``. Pure Python: the controller imports it without statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

__all__ = ["Kind", "SufficientStats"]

Kind = Literal["mean", "binary", "ratio", "count"]


@attrs.frozen
class SufficientStats:
    """Sums over the units of one arm (or cohort) for one metric."""

    n: int
    total: float
    total_sq: float
    kind: Kind = "mean"
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
    def from_values(
        cls,
        values: Iterable[float],
        *,
        kind: Kind = "mean",
        covariate: Iterable[float] | None = None,
    ) -> SufficientStats:
        """Sums of unit-level values (and of a pre-exposure covariate, for CUPED)."""
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

"""``SufficientStats``: everything a comparison needs from one arm, in a few sums.

A metric's unit-level values reduce to ``n``, ``Σx`` and the centred ``M2 = Σ(x − x̄)²`` (and,
for a ratio metric, ``Σy``, its M2 and the co-moment ``Σ(x − x̄)(y − ȳ)``; for CUPED, the
covariate's likewise): centred sums keep the variance of a metric whose mean is large next to
its spread, where Σx² would lose it (``rollwise.analysis.moments``). The reduction runs where
the data lives (SQL ``GROUP BY`` or pandas); statistics from different looks or cohorts add up
with ``+``. Pure Python: the controller imports it without statsmodels.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar, cast

import attrs

from rollwise.analysis import moments
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


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _kind_checked(func: Callable[..., Any], where: str) -> Callable[..., Any]:
    parameters = list(inspect.signature(func).parameters.values())
    index = [p.name for p in parameters].index("kind")
    positional = parameters[index].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    room = sum(p.kind in _POSITIONAL for p in parameters)

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if len(args) <= room:  # else Python's own TypeError (too many positionals) says it
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
@attrs.frozen(kw_only=True)
class SufficientStats:
    """Sums over the units of one arm (or cohort) for one metric (``kind`` is required).

    ``total`` is Σx and ``m2`` the centred Σ(x − x̄)² (``rollwise.analysis.moments``: never
    Σx², which loses the variance of a metric whose mean is large next to its spread); a ratio
    also has its denominator's ``den_total`` (Σy) and ``den_m2``, and their ``comoment``
    Σ(x − x̄)(y − ȳ); CUPED's pre-exposure covariate c has ``cov_total``, ``cov_m2`` and
    ``cov_comoment`` Σ(x − x̄)(c − c̄). Keyword arguments only. ``from_sums`` builds one from
    raw sums Σx, Σx² where that is all there is.
    """

    n: int
    total: float
    m2: float
    kind: Kind
    den_total: float = 0.0
    den_m2: float = 0.0
    comoment: float = 0.0
    cov_total: float = 0.0
    cov_m2: float = 0.0
    cov_comoment: float = 0.0
    has_covariate: bool = False

    # --- named constructors ---

    @classmethod
    def binary(cls, n: int, successes: float) -> SufficientStats:
        """A 0/1 metric: ``successes`` of ``n`` units."""
        if n < 0 or not 0 <= successes <= n:
            raise ValueError(f"binary: need 0 <= successes <= n, not {successes} of {n}")
        m2 = successes * (n - successes) / n if n else 0.0
        return cls(n=int(n), total=float(successes), m2=float(m2), kind="binary")

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
        n, total, m2, *_ = moments.centred(xs)
        stats = cls(n=n, total=total, m2=m2, kind=kind)
        if covariate is None:
            return stats
        cs = [float(c) for c in covariate]
        if len(cs) != len(xs):
            raise ValueError("covariate: needs one value per unit")
        _, _, _, cov_total, cov_m2, cov_comoment = moments.centred(xs, cs)
        return attrs.evolve(
            stats,
            cov_total=cov_total,
            cov_m2=cov_m2,
            cov_comoment=cov_comoment,
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
        n, total, m2, den_total, den_m2, comoment = moments.centred(xs, ys)
        return cls(
            n=n, total=total, m2=m2, kind="ratio", den_total=den_total, den_m2=den_m2,
            comoment=comoment,
        )  # fmt: skip

    @classmethod
    @requires_kind
    def from_sums(
        cls,
        *,
        n: int,
        total: float,
        total_sq: float,
        kind: Kind,
        den_total: float = 0.0,
        den_total_sq: float = 0.0,
        cross: float = 0.0,
    ) -> SufficientStats:
        """From raw sums Σx, Σx² (and a ratio's Σy, Σy², Σxy), e.g. a summary from elsewhere.

        Their difference ``Σx² − (Σx)²/n`` keeps only the digits that Σx² had beyond the
        mean's: fine for a mean of the size of its spread, not for timestamps or amounts in
        cents (prefer ``from_values``, or compute M2 where the values are)."""
        if n <= 0:
            return cls(n=0, total=0.0, m2=0.0, kind=kind)
        return cls(
            n=int(n), total=float(total), m2=max(total_sq - total * total / n, 0.0), kind=kind,
            den_total=float(den_total), den_m2=max(den_total_sq - den_total * den_total / n, 0.0),
            comoment=cross - total * den_total / n,
        )  # fmt: skip

    # --- combining ---

    def __add__(self, other: SufficientStats) -> SufficientStats:
        """The statistics of both groups of units (Chan's pairwise update, exact in M2)."""
        if not isinstance(other, SufficientStats):
            return NotImplemented
        if other.kind != self.kind:
            raise ValueError(f"cannot add {self.kind} statistics to {other.kind} statistics")
        n, total, m2, den_total, den_m2, comoment = moments.pooled(
            (self.n, self.total, self.m2, self.den_total, self.den_m2, self.comoment),
            (other.n, other.total, other.m2, other.den_total, other.den_m2, other.comoment),
        )
        _, _, _, cov_total, cov_m2, cov_comoment = moments.pooled(
            (self.n, self.total, self.m2, self.cov_total, self.cov_m2, self.cov_comoment),
            (other.n, other.total, other.m2, other.cov_total, other.cov_m2, other.cov_comoment),
        )
        return SufficientStats(
            n=n, total=total, m2=m2, kind=self.kind, den_total=den_total, den_m2=den_m2,
            comoment=comoment, cov_total=cov_total, cov_m2=cov_m2, cov_comoment=cov_comoment,
            has_covariate=self.has_covariate and other.has_covariate,
        )  # fmt: skip

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
        var_x = max(self.m2 / (n - 1), 0.0)
        if self.kind != "ratio":
            return var_x
        if not self.den_total:
            return math.nan
        var_y = max(self.den_m2 / (n - 1), 0.0)
        cov_xy = self.comoment / (n - 1)
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
        return max(self.cov_m2 / (n - 1), 0.0)

    @property
    def covariance_with_covariate(self) -> float:
        n = self.n
        if n < 2:
            return math.nan
        return self.cov_comoment / (n - 1)

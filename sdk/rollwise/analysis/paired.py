"""Paired comparisons: the live and the shadow model scored on the same units.

In a ``shadow`` stage the candidate scores live traffic beside the served (live) model. Once
outcomes arrive each unit has two scores, l for the live model and s for the shadow one (1/0
"prediction correct", an absolute error), and the question is the mean of d = s − l. Its
unit-level variance is

    var(d) = var(l) + var(s) − 2 cov(l, s)

and two models of the same task are usually right and wrong on the same units, so cov(l, s)
is large and var(d) is a small fraction of what an A/B split pays: splitting N units in halves
gives the difference a variance of 4·var/N where pairing gives 2·var·(1 − ρ)/N, ρ the
correlation of the two scores (10 times less at ρ = 0.8).

``PairedStats`` keeps the centred moments of the pairs (``rollwise.analysis.moments``, exact
merges), and ``compare_paired`` gives the same ``Comparison`` as ``compare``: the always-valid
mixture of ``sequential.py`` by default, the paired t-test at one planned look. Pure Python at
import: scipy is imported only for the fixed-horizon test, so the controller can use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import attrs

from rollwise.analysis import moments
from rollwise.analysis.compare import Comparison
from rollwise.analysis.sequential import always_valid

__all__ = ["PairedStats", "compare_paired"]

_ROUNDING = 1e-12
"""A variance of the difference below this fraction of the scores' own is rounding: a shadow
that equals the live model plus a constant leaves m2_l + m2_s − 2c at ~1e-16 of m2, not 0."""


@attrs.frozen(kw_only=True)
class PairedStats:
    """Sums over ``n`` units scored by both models (``live`` l, ``shadow`` s).

    ``live_total`` Σl and ``shadow_total`` Σs, their centred ``live_m2`` Σ(l − l̄)² and
    ``shadow_m2``, the ``comoment`` Σ(l − l̄)(s − s̄), which is what pairing gains (the
    difference's variance subtracts it twice), and ``abs_total`` Σ|s − l|, how often or how
    much the models disagree, which the moments cannot give. Statistics of disjoint groups of
    units add up with ``+`` (Chan's update, exact in the centred sums).
    """

    n: int
    live_total: float
    shadow_total: float
    live_m2: float
    shadow_m2: float
    comoment: float
    abs_total: float

    @classmethod
    def from_values(cls, live: Sequence[float], shadow: Sequence[float]) -> PairedStats:
        """The statistics of the pairs ``(live[i], shadow[i])``, one per unit.

        A non-finite score leaves every sum NaN: ``compare_paired`` then says so.
        """
        ls = [float(v) for v in live]
        ss = [float(v) for v in shadow]
        if len(ss) != len(ls):
            raise ValueError(f"shadow: needs one score per live score, not {len(ss)} for {len(ls)}")
        if not all(math.isfinite(v) for v in (*ls, *ss)):
            nan = math.nan
            return cls(
                n=len(ls), live_total=nan, shadow_total=nan, live_m2=nan, shadow_m2=nan,
                comoment=nan, abs_total=nan,
            )  # fmt: skip
        n, live_total, live_m2, shadow_total, shadow_m2, comoment = moments.centred(ls, ss)
        return cls(
            n=n, live_total=live_total, shadow_total=shadow_total, live_m2=live_m2,
            shadow_m2=shadow_m2, comoment=comoment,
            abs_total=math.fsum(abs(s - x) for x, s in zip(ls, ss, strict=True)),
        )  # fmt: skip

    def __add__(self, other: PairedStats) -> PairedStats:
        """The statistics of both groups of units (``moments.pooled``; Σ|s − l| adds)."""
        if not isinstance(other, PairedStats):
            return NotImplemented
        n, live_total, live_m2, shadow_total, shadow_m2, comoment = moments.pooled(
            (self.n, self.live_total, self.live_m2, self.shadow_total, self.shadow_m2,
             self.comoment),
            (other.n, other.live_total, other.live_m2, other.shadow_total, other.shadow_m2,
             other.comoment),
        )  # fmt: skip
        return PairedStats(
            n=n, live_total=live_total, shadow_total=shadow_total, live_m2=live_m2,
            shadow_m2=shadow_m2, comoment=comoment, abs_total=self.abs_total + other.abs_total,
        )  # fmt: skip

    @classmethod
    def combine(cls, parts: Iterable[PairedStats]) -> PairedStats:
        """The sum of ``parts``; with none, the statistics of no units (n = 0), which
        ``compare_paired`` reads as insufficient."""
        out = cls(
            n=0, live_total=0.0, shadow_total=0.0, live_m2=0.0, shadow_m2=0.0, comoment=0.0,
            abs_total=0.0,
        )  # fmt: skip
        for part in parts:
            out = out + part
        return out

    @property
    def live_mean(self) -> float:
        return self.live_total / self.n if self.n else math.nan

    @property
    def shadow_mean(self) -> float:
        return self.shadow_total / self.n if self.n else math.nan

    @property
    def difference(self) -> float:
        """The mean of s − l: the shadow's gain (or loss) on the same units."""
        return (self.shadow_total - self.live_total) / self.n if self.n else math.nan

    @property
    def difference_variance(self) -> float:
        """Unit-level sample variance of s − l, (m2_s + m2_l − 2c)/(n − 1), clamped at 0.

        var_l + var_s − 2cov: the more the two models agree unit by unit (cov > 0), the
        smaller it is, and the fewer units the paired test needs.
        """
        if self.n < 2:
            return math.nan
        return max((self.shadow_m2 + self.live_m2 - 2.0 * self.comoment) / (self.n - 1), 0.0)

    @property
    def correlation(self) -> float:
        """Pearson's correlation of the two models' scores (NaN when a score is constant)."""
        if self.n < 2 or not (self.live_m2 > 0 and self.shadow_m2 > 0):
            return math.nan
        return max(-1.0, min(1.0, self.comoment / math.sqrt(self.live_m2 * self.shadow_m2)))

    @property
    def mean_absolute_difference(self) -> float:
        """The mean of |s − l|: for 0/1 scores, the share of units where the models disagree."""
        return self.abs_total / self.n if self.n else math.nan


def _insufficient(
    stats: PairedStats, alpha: float, sequential: bool, relative: bool, note: str
) -> Comparison:
    def safe(value: float) -> float:
        return value if math.isfinite(value) else 0.0

    return Comparison(
        effect=0.0, ci_low=-math.inf, ci_high=math.inf, p_value=1.0, se=math.inf,
        control_mean=safe(stats.live_mean), candidate_mean=safe(stats.shadow_mean),
        n_control=stats.n, n_candidate=stats.n, alpha=alpha, sequential=sequential,
        relative=relative, method="insufficient", insufficient=True, note=note,
    )  # fmt: skip


def compare_paired(
    stats: PairedStats,
    *,
    alpha: float = 0.05,
    sequential: bool = True,
    relative: bool = False,
    tuning: float = 5000,
) -> Comparison:
    """Shadow versus live on the same units, at one look (stateless), as a ``Comparison``.

    Control is the live model, candidate the shadow; ``n_control`` = ``n_candidate`` = n, the
    units scored by both. ``effect`` is the mean of s − l, or with ``relative`` the ratio of
    means m_s/m_l − 1 with the delta-method variance (var_s − 2r·cov + r²·var_l)/(n·m_l²),
    r = m_s/m_l, the covariance included.

    Sequential (the default, method ``paired mixture-sprt``): ``always_valid(effect, var_d/n,
    n)``. The mixture is over the unit-level variance V·N; here each unit gives one difference,
    so N = n units (not 2n: the second score is not a second unit) and V·N = var_d. ``tuning``
    is N* in those units. Fixed horizon (``paired t-test``): the one-sample t-test of d, df =
    n − 1, as ``scipy.stats.ttest_rel``; a relative effect uses the Wald z (``paired wald-z``),
    as ``compare`` does. Fewer than 2 units, non-finite sums, no variance in the difference,
    or a live mean of 0 with ``relative``: an ``insufficient`` result with a note.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    if stats.n < 2:
        return _insufficient(stats, alpha, sequential, relative, "fewer than 2 paired units")
    n, sum_l, sum_s = stats.n, stats.live_total, stats.shadow_total
    m2_l, m2_s, comoment = stats.live_m2, stats.shadow_m2, stats.comoment
    isfinite = math.isfinite
    if not (isfinite(sum_l) and isfinite(sum_s) and isfinite(m2_l) and isfinite(m2_s)
            and isfinite(comoment)):  # fmt: skip
        return _insufficient(stats, alpha, sequential, relative, "non-finite scores")
    m_l, m_s = sum_l / n, sum_s / n
    var_l, var_s, cov = max(m2_l, 0.0) / (n - 1), max(m2_s, 0.0) / (n - 1), comoment / (n - 1)
    var_d = max((m2_s + m2_l - 2.0 * comoment) / (n - 1), 0.0)  # ``difference_variance``
    if var_d <= _ROUNDING * (var_l + var_s):
        return _insufficient(
            stats, alpha, sequential, relative, "no variance in the difference between the models"
        )
    effect, unit_variance = (sum_s - sum_l) / n, var_d  # no rounding of two means
    if relative:
        if m_l == 0:
            return _insufficient(stats, alpha, sequential, relative, "live mean is 0")
        r = m_s / m_l
        effect = r - 1.0
        spread = var_s - 2.0 * r * cov + r * r * var_l  # the variance of s − r·l
        if spread <= _ROUNDING * (var_s + r * r * var_l):
            return _insufficient(
                stats, alpha, sequential, relative, "shadow scores proportional to live ones"
            )
        unit_variance = spread / (m_l * m_l)
    variance = unit_variance / n
    if sequential:
        av = always_valid(effect, variance, n, alpha=alpha, tuning=tuning)
        low, high, p, se, method = av.ci_low, av.ci_high, av.p_value, av.se, "paired mixture-sprt"
    else:
        low, high, p, se, method = _fixed_horizon(effect, variance, n, alpha, relative)
    return Comparison(
        effect=effect, ci_low=low, ci_high=high, p_value=p, se=se, control_mean=m_l,
        candidate_mean=m_s, n_control=n, n_candidate=n, alpha=alpha, sequential=sequential,
        relative=relative, method=method,
    )  # fmt: skip


def _fixed_horizon(
    effect: float, variance: float, n: int, alpha: float, relative: bool
) -> tuple[float, float, float, float, str]:
    """The paired t-test (df = n − 1), or the Wald z for a relative effect."""
    from scipy import special  # the analysis extra; the sequential path needs none

    se = math.sqrt(variance)
    if relative:
        p = float(2 * special.ndtr(-abs(effect / se)))
        half = float(special.ndtri(1 - alpha / 2)) * se
        return effect - half, effect + half, p, se, "paired wald-z"
    df = n - 1
    p = float(2 * special.stdtr(df, -abs(effect / se)))
    half = float(special.stdtrit(df, 1 - alpha / 2)) * se
    return effect - half, effect + half, p, se, "paired t-test"

"""Always-valid inference for the difference between two arms: the normal-mixture e-value.

People and the rollout controller look at results every few seconds. A fixed-horizon test
checked that often declares a false regression in about a third of A/A rollouts; these
intervals and p-values stay valid at any stopping time.

The statistic is the mixture sequential probability ratio test of Johari, Koomen, Pekelis & Walsh,
"Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research 70(3), 2022,
eq. 11 with a normal mixing distribution), which is the same e-value as the asymptotic
confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit
theory and asymptotic confidence sequences" (Annals of Statistics 52(6), 2024, Theorem 2.2),
used by GrowthBook. With Δ̂ = m_T − m_C, V = v_C/n_C + v_T/n_T the variance of Δ̂ and
N = n_C + n_T:

    ρ² = (−2 ln α + ln(1 − 2 ln α)) / N*                  (the mixture tuned for N* units)
    e  = exp(ρ² Δ̂² N / (2 V (N ρ² + 1))) / √(N ρ² + 1),   p = min(1, 1/e)
    half-width = √(V N) · √(2 (N ρ² + 1) / (N² ρ²) · ln(√(N ρ² + 1) / α))

Only the ``math`` module: the server's controller imports this without statsmodels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from rollwise.analysis.compare import Comparison
    from rollwise.analysis.paired import PairedStats
    from rollwise.analysis.suffstats import SufficientStats

__all__ = [
    "AlwaysValid",
    "MonitorLook",
    "SequentialMonitor",
    "always_valid",
    "mixture_rho_squared",
]


def mixture_rho_squared(alpha: float, tuning: float) -> float:
    """ρ² of the normal mixture that makes the interval tightest at ``tuning`` = N* units.

    Waudby-Smith et al. (2024), eq. (12); Howard et al., "Time-uniform, nonparametric,
    nonasymptotic confidence sequences" (Annals of Statistics 49(2), 2021), eq. (3.7).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    if tuning <= 0:
        raise ValueError(f"tuning: must be positive, not {tuning}")
    log_alpha = math.log(alpha)
    return (-2.0 * log_alpha + math.log(1.0 - 2.0 * log_alpha)) / tuning


@attrs.frozen
class AlwaysValid:
    """One look: the estimate, its always-valid interval and p-value."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float


def always_valid(
    effect: float, variance: float, n: float, *, alpha: float = 0.05, tuning: float = 5000
) -> AlwaysValid:
    """The always-valid interval and p-value of ``effect`` with variance ``variance``.

    ``n`` is the number of units behind the estimate (N = n_C + n_T); ``variance`` is the
    variance of ``effect`` itself (V), so the unit-level variance is V·N. Both must be positive
    and finite (``compare`` marks such inputs insufficient before calling this).
    """
    rho2 = mixture_rho_squared(alpha, tuning)
    if not (math.isfinite(effect) and math.isfinite(variance) and variance > 0):
        raise ValueError(f"effect and variance: need finite values and variance > 0, not "
                         f"{effect}, {variance}")  # fmt: skip
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"n: must be positive, not {n}")
    se = math.sqrt(variance)
    n_rho2 = n * rho2
    half = math.sqrt(variance * n) * math.sqrt(
        2.0 * (n_rho2 + 1.0) / (n * n * rho2) * math.log(math.sqrt(n_rho2 + 1.0) / alpha)
    )
    log_e = rho2 * effect * effect * n / (2.0 * variance * (n_rho2 + 1.0)) - 0.5 * math.log(
        n_rho2 + 1.0
    )
    p_value = 1.0 if log_e <= 0 else min(1.0, math.exp(-log_e))
    return AlwaysValid(effect, effect - half, effect + half, p_value, se)


@attrs.frozen
class MonitorLook:
    """One look of a ``SequentialMonitor``: its own result beside the running ones."""

    look: int
    result: Comparison
    running_p_value: float
    running_ci_low: float
    running_ci_high: float


@attrs.define
class SequentialMonitor:
    """The history of one comparison across looks: always valid at any stopping time.

    Each ``update`` (two arms) or ``update_paired`` (a shadow's pairs) takes the cumulative
    statistics of a new look and returns that look's own interval and p-value beside the
    running ones: the minimum p-value so far and the intersection of all intervals so far
    (both valid because the e-process is a nonnegative supermartingale; Howard et al. 2021,
    Lemma 1). Looks with insufficient data are recorded but leave the running values
    unchanged. ``history`` keeps every look (for
    ``rollwise.analysis.plots.plot_confidence_sequence``). The running intersection can come
    out empty (low > high) only with probability ≤ α when the effect is constant. One monitor
    follows one comparison: do not mix ``update`` and ``update_paired`` on it.
    """

    alpha: float = 0.05
    tuning: float = 5000
    relative: bool = False
    looks: int = 0
    running_p: float = 1.0
    running_low: float = -math.inf
    running_high: float = math.inf
    history: list[MonitorLook] = attrs.field(factory=list)

    def update(self, control: SufficientStats, candidate: SufficientStats) -> MonitorLook:
        """Add a look; ``control``/``candidate`` are the cumulative ``SufficientStats``."""
        from rollwise.analysis.compare import compare

        result = compare(
            control,
            candidate,
            alpha=self.alpha,
            sequential=True,
            relative=self.relative,
            tuning=self.tuning,
        )
        return self._record(result)

    def update_paired(self, stats: PairedStats) -> MonitorLook:
        """Add a look of a paired (shadow) comparison; ``stats`` are the cumulative
        ``PairedStats`` (``compare_paired``: the mixture with N = the units scored by both)."""
        from rollwise.analysis.paired import compare_paired

        result = compare_paired(
            stats, alpha=self.alpha, sequential=True, relative=self.relative, tuning=self.tuning
        )
        return self._record(result)

    def _record(self, result: Comparison) -> MonitorLook:
        """Count the look; a sufficient one tightens the running minimum and intersection."""
        self.looks += 1
        if not result.insufficient:
            self.running_p = min(self.running_p, result.p_value)
            self.running_low = max(self.running_low, result.ci_low)
            self.running_high = min(self.running_high, result.ci_high)
        look = MonitorLook(
            look=self.looks,
            result=result,
            running_p_value=self.running_p,
            running_ci_low=self.running_low,
            running_ci_high=self.running_high,
        )
        self.history.append(look)
        return look

"""``compare(control, candidate)``: one look at the difference between two arms.

Sequential (the default) uses the always-valid normal mixture of ``sequential.py``; the
fixed-horizon alternative is Welch's t-test (Satterthwaite degrees of freedom) for means and
ratios and the unpooled Wald z-test for proportions, delegated to scipy/statsmodels in
``fixed_horizon.py``. Relative effects use the delta method. With a pre-exposure covariate on
both arms, CUPED (Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data", WSDM 2013, eq. 3) reduces the variance.
Degenerate inputs (n ≤ 1, no variance, an empty arm) give a result marked ``insufficient``,
never an exception or a NaN verdict.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from rollwise.analysis.sequential import always_valid
from rollwise.analysis.suffstats import SufficientStats

__all__ = ["Comparison", "Verdict", "compare", "verdict"]

Verdict = Literal["harm", "no harm shown yet", "non-inferior", "improvement", "insufficient data"]


@attrs.frozen(kw_only=True)
class Comparison:
    """The result of one comparison (``effect`` = candidate − control, or relative to control)."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    control_mean: float
    candidate_mean: float
    n_control: int
    n_candidate: int
    alpha: float
    sequential: bool
    relative: bool
    method: str
    insufficient: bool = False
    note: str | None = None


def _insufficient(
    control: SufficientStats, candidate: SufficientStats, alpha: float, sequential: bool,
    relative: bool, note: str,
) -> Comparison:  # fmt: skip
    def safe(value: float) -> float:
        return value if math.isfinite(value) else 0.0

    return Comparison(
        effect=0.0, ci_low=-math.inf, ci_high=math.inf, p_value=1.0, se=math.inf,
        control_mean=safe(control.mean), candidate_mean=safe(candidate.mean),
        n_control=control.n, n_candidate=candidate.n, alpha=alpha, sequential=sequential,
        relative=relative, method="insufficient", insufficient=True, note=note,
    )  # fmt: skip


def _cuped(
    control: SufficientStats, candidate: SufficientStats
) -> tuple[float, float, float, float]:
    """Adjusted means and variances: x − θ(c − c̄) with θ pooled over both arms."""
    pooled = control + candidate
    theta_den = pooled.covariate_variance
    theta = pooled.covariance_with_covariate / theta_den if theta_den > 0 else 0.0
    grand = pooled.covariate_mean
    out: list[float] = []
    for arm in (control, candidate):
        mean = arm.mean - theta * (arm.covariate_mean - grand)
        var = arm.variance - 2 * theta * arm.covariance_with_covariate
        var += theta * theta * arm.covariate_variance
        out += [mean, max(var, 0.0)]
    return out[0], out[1], out[2], out[3]


def compare(
    control: SufficientStats,
    candidate: SufficientStats,
    *,
    alpha: float = 0.05,
    sequential: bool = True,
    relative: bool = False,
    tuning: float = 5000,
) -> Comparison:
    """Candidate versus control for one metric, at one look (stateless)."""
    if control.kind != candidate.kind:
        raise ValueError(f"cannot compare {control.kind} with {candidate.kind} statistics")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    if control.n < 2 or candidate.n < 2:
        return _insufficient(
            control, candidate, alpha, sequential, relative, "fewer than 2 units in an arm"
        )
    if control.has_covariate and candidate.has_covariate and control.kind != "ratio":
        m_c, v_c, m_t, v_t = _cuped(control, candidate)
        method_suffix = " + CUPED"
    else:
        m_c, v_c, m_t, v_t = control.mean, control.variance, candidate.mean, candidate.variance
        method_suffix = ""
    n_c, n_t = control.n, candidate.n
    if not all(math.isfinite(x) for x in (m_c, v_c, m_t, v_t)):
        return _insufficient(
            control, candidate, alpha, sequential, relative, "undefined mean or variance"
        )
    variance = v_c / n_c + v_t / n_t
    if variance <= 0:
        return _insufficient(
            control, candidate, alpha, sequential, relative, "no variance in either arm"
        )
    effect = m_t - m_c
    if relative:
        if m_c == 0:
            return _insufficient(
                control, candidate, alpha, sequential, relative, "control mean is 0"
            )
        effect = m_t / m_c - 1.0
        # delta method for m_T/m_C: var ≈ v_T/(n_T m_C²) + m_T² v_C/(n_C m_C⁴)
        variance = v_t / (n_t * m_c**2) + m_t**2 * v_c / (n_c * m_c**4)
    if sequential:
        av = always_valid(effect, variance, n_c + n_t, alpha=alpha, tuning=tuning)
        low, high, p, se, method = av.ci_low, av.ci_high, av.p_value, av.se, "mixture-sprt"
    else:
        from rollwise.analysis import fixed_horizon

        low, high, p, se, method = fixed_horizon.difference_test(
            effect, v_c, n_c, v_t, n_t, variance, alpha=alpha,
            binary=control.kind == "binary", relative=relative,
        )  # fmt: skip
    return Comparison(
        effect=effect, ci_low=low, ci_high=high, p_value=p, se=se, control_mean=m_c,
        candidate_mean=m_t, n_control=n_c, n_candidate=n_t, alpha=alpha, sequential=sequential,
        relative=relative, method=method + method_suffix,
    )  # fmt: skip


def verdict(
    result: Comparison, *, harm_direction: Literal["increase", "decrease"], tolerance: float = 0.0
) -> Verdict:
    """A guardrail reading of an interval.

    ``harm_direction`` is the direction in which the metric gets worse; ``tolerance`` the change
    tolerated in that direction (0: any). ``harm``: the whole interval is worse than the
    tolerance. ``improvement``: the whole interval is on the good side of 0. ``non-inferior``:
    the interval excludes harm beyond the tolerance. Otherwise ``no harm shown yet``.
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance: must be a finite number >= 0, not {tolerance}")
    if result.insufficient:
        return "insufficient data"
    sign = 1.0 if harm_direction == "increase" else -1.0
    worse_low, worse_high = sorted((sign * result.ci_low, sign * result.ci_high))
    if worse_low > tolerance:
        return "harm"
    if worse_high < 0:
        return "improvement"
    if worse_high < tolerance:
        return "non-inferior"
    return "no harm shown yet"

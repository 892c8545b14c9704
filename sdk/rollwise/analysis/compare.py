"""``compare(control, candidate)``: one look at the difference between two arms.

Sequential (the default) uses the always-valid normal mixture of ``sequential.py``; the
fixed-horizon alternative is Welch's t-test (Satterthwaite degrees of freedom) for means and
ratios and the unpooled Wald z-test for proportions, delegated to scipy/statsmodels in
``fixed_horizon.py``. Relative effects use the delta method. With a pre-exposure covariate on
both arms, CUPED (Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data", WSDM 2013, eq. 3) reduces the variance.
Degenerate inputs (n ≤ 1, no variance, an empty arm) give a result marked ``insufficient``,
never an exception or a NaN verdict.

``verdict`` reads an interval as a guardrail does, and ``verdict_reason`` says why in one line
("harm: interval [+0.012, +0.030] above the tolerance +0.01"); ``at_level`` gives the same
estimate's interval at another level (a report's adjusted one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

import attrs

from rollwise.analysis.sequential import always_valid
from rollwise.analysis.suffstats import SufficientStats

__all__ = [
    "Comparison",
    "Verdict",
    "at_level",
    "compare",
    "format_effect",
    "verdict",
    "verdict_reason",
]

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


def at_level(result: Comparison, alpha: float, *, tuning: float = 5000) -> Comparison:
    """The same estimate with its interval and p-value at level ``alpha`` (e.g. α/m).

    For the methods whose interval follows from the estimate, its standard error and N: the
    always-valid mixture (tuned for the new level, as ``compare`` would tune it; pass the same
    ``tuning``) and the Wald z-interval, CUPED and gap changes included, and the paired
    (``compare_paired``) methods: the mixture with N = n units, the Wald z and the paired
    t-interval (df = n − 1). A Welch t-interval needs the arms' own variances for its degrees
    of freedom: call ``compare`` again. An insufficient result stays insufficient.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    if result.insufficient:
        return attrs.evolve(result, alpha=alpha)
    variance = result.se**2
    paired = result.method.startswith("paired ")
    method = result.method.removeprefix("paired ")
    if method.startswith("mixture-sprt"):
        n = result.n_control if paired else result.n_control + result.n_candidate
        av = always_valid(result.effect, variance, n, alpha=alpha, tuning=tuning)
        low, high, p = av.ci_low, av.ci_high, av.p_value
    elif method.startswith("wald-z"):
        half = NormalDist().inv_cdf(1.0 - alpha / 2.0) * result.se
        low, high, p = result.effect - half, result.effect + half, result.p_value
    elif paired and method == "t-test":
        from scipy import special

        half = float(special.stdtrit(result.n_control - 1, 1.0 - alpha / 2.0)) * result.se
        low, high, p = result.effect - half, result.effect + half, result.p_value
    else:
        raise ValueError(f"at_level: a {result.method} interval needs the arms: call compare")
    return attrs.evolve(result, ci_low=low, ci_high=high, p_value=p, alpha=alpha)


def verdict(
    result: Comparison,
    *,
    harm_direction: Literal["increase", "decrease"],
    tolerance: float = 0.0,
    min_units: int = 0,
) -> Verdict:
    """A guardrail reading of an interval.

    ``harm_direction`` is the direction in which the metric gets worse; ``tolerance`` the change
    tolerated in that direction (0: any). ``harm``: the whole interval is worse than the
    tolerance. ``improvement``: the whole interval is on the good side of 0. ``non-inferior``:
    the interval excludes harm beyond the tolerance. Otherwise ``no harm shown yet``.
    ``insufficient data``: no interval, or an arm with fewer than ``min_units`` units.
    ``verdict_reason`` gives the same reading with its reason.
    """
    return _reading(result, harm_direction, tolerance, min_units)[0]


def verdict_reason(
    result: Comparison,
    *,
    harm_direction: Literal["increase", "decrease"],
    tolerance: float = 0.0,
    min_units: int = 0,
) -> str:
    """``verdict`` and why, in one line that starts with the verdict, e.g.

    - ``harm: interval [+0.012, +0.03] above the tolerance +0.01``
    - ``improvement: interval [-0.03, -0.012] below 0``
    - ``non-inferior: interval [-0.004, +0.008] below the tolerance +0.01 but includes 0``
      (or ``but above 0``)
    - ``no harm shown yet: interval [-0.004, +0.066] includes the tolerance +0.01`` (``and
      excludes 0`` when it does: a change, not shown to exceed the tolerance, which is why
      its p-value, a test of 0, can be small)
    - ``insufficient data: 17 units in the candidate arm, 100 needed``

    "Above" and "below" are in the effect's units (candidate − control), so for a metric
    harmed when it decreases the tolerance is negative and harm lies below it. Relative effects
    read in percent. Numbers have 3 significant digits, more when that would show an end of
    the interval equal to the tolerance or 0 it differs from.
    """
    label, why = _reading(result, harm_direction, tolerance, min_units)
    return f"{label}: {why}"


def _reading(
    result: Comparison,
    harm_direction: Literal["increase", "decrease"],
    tolerance: float,
    min_units: int,
) -> tuple[Verdict, str]:
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance: must be a finite number >= 0, not {tolerance}")
    if harm_direction not in ("increase", "decrease"):
        raise ValueError(f"harm_direction: 'increase' or 'decrease', not {harm_direction!r}")
    needed = max(min_units, 2) if result.insufficient else min_units
    short = [
        (arm, n)
        for arm, n in (("control", result.n_control), ("candidate", result.n_candidate))
        if n < needed
    ]
    if short:
        return "insufficient data", _too_few(short, needed)
    if result.insufficient:
        return "insufficient data", result.note or "no interval"
    sign = 1.0 if harm_direction == "increase" else -1.0
    worse_low, worse_high = sorted((sign * result.ci_low, sign * result.ci_high))
    threshold = sign * tolerance  # the tolerance in the effect's units
    low, high, bound, _ = _shown(
        (result.ci_low, result.ci_high, threshold, 0.0), relative=result.relative
    )
    zero = "0"
    interval = f"interval [{low}, {high}]"
    worse, better = ("above", "below") if sign > 0 else ("below", "above")
    limit = f"the tolerance {bound}" if tolerance > 0 else zero
    if worse_low > tolerance:
        return "harm", f"{interval} {worse} {limit}"
    if worse_high < 0:
        return "improvement", f"{interval} {better} {zero}"
    if worse_high < tolerance:
        side = "includes" if worse_low <= 0 else worse
        return "non-inferior", f"{interval} {better} {limit} but {side} {zero}"
    if tolerance > 0 and worse_low > 0:  # a change for the worse, not shown beyond tolerance
        return "no harm shown yet", f"{interval} includes {limit} and excludes {zero}"
    return "no harm shown yet", f"{interval} includes {limit}"


def _too_few(short: Sequence[tuple[str, int]], needed: int) -> str:
    if len(short) == 2:
        (_, n_control), (_, n_candidate) = short
        return (
            f"{_units(n_control)} in the control arm and {n_candidate:,} in the candidate arm, "
            f"{needed:,} needed in each"
        )
    arm, n = short[0]
    return f"{_units(n)} in the {arm} arm, {needed:,} needed"


def _units(n: int) -> str:
    return f"{n:,} unit{'' if n == 1 else 's'}"


def format_effect(value: float, *, relative: bool = False, digits: int = 3) -> str:
    """``value`` as the report prints effects: ``+0.0123``, ``-4.5``, ``0``, ``+1.2%``
    (``relative``: a fraction, shown in percent), ``digits`` significant digits."""
    suffix = "%" if relative else ""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return ("+inf" if value > 0 else "-inf") + suffix
    x = value * 100.0 if relative else value
    if x == 0:
        return "0" + suffix
    if abs(x) >= 10**digits:
        return f"{x:+,.0f}{suffix}"
    return f"{x:+.{digits}g}{suffix}"


def _shown(values: Sequence[float], *, relative: bool) -> list[str]:
    """``format_effect`` of each value, with the fewest digits (3 or more) that keep distinct values
    distinct: an end of the interval is never shown equal to the tolerance it misses."""
    texts = [format_effect(v, relative=relative) for v in values]
    for digits in range(4, 16):
        clash = any(
            texts[i] == texts[j] and values[i] != values[j]
            for i in range(len(values))
            for j in range(i + 1, len(values))
        )
        if not clash:
            break
        texts = [format_effect(v, relative=relative, digits=digits) for v in values]
    return texts

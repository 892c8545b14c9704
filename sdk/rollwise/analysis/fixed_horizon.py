"""Fixed-horizon tests, power and sample size, and multiple-testing corrections (statsmodels).

These are valid at one pre-planned look only; ``compare(..., sequential=False)`` uses them for
exploratory reports. The always-valid methods are in ``sequential.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import special
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

__all__ = ["correct", "difference_test", "sample_size_binary", "sample_size_mean"]


def difference_test(
    effect: float,
    v_c: float,
    n_c: int,
    v_t: float,
    n_t: int,
    variance: float,
    *,
    alpha: float,
    binary: bool,
    relative: bool = False,
) -> tuple[float, float, float, float, str]:
    """(ci_low, ci_high, p_value, se, method) for ``effect`` with variance ``variance``.

    Proportions: the unpooled Wald z-test (statsmodels ``test_proportions_2indep(method=
    "wald")``). Means and ratios: Welch's t-test with Satterthwaite degrees of freedom (scipy
    ``ttest_ind_from_stats(equal_var=False)``). Relative effects (``relative=True``, variance
    from the delta method) use the normal approximation (a Wald z-test).
    """
    se = math.sqrt(variance)
    # scipy.special's ndtr/ndtri/stdtr/stdtrit are what scipy.stats.norm and scipy.stats.t
    # evaluate (``norm.sf(x) = ndtr(-x)``, ``t.ppf(q, df) = stdtrit(df, q)``), called directly
    # because the distribution objects cost about a millisecond per call.
    if binary or relative:
        z = effect / se
        p = float(2 * special.ndtr(-abs(z)))
        half = float(special.ndtri(1 - alpha / 2)) * se
        return effect - half, effect + half, p, se, "wald-z"
    a, b = v_c / n_c, v_t / n_t
    df = (a + b) ** 2 / (a * a / (n_c - 1) + b * b / (n_t - 1)) if a + b > 0 else math.inf
    t = effect / se
    p = float(2 * special.stdtr(df, -abs(t)))
    half = float(special.stdtrit(df, 1 - alpha / 2)) * se
    return effect - half, effect + half, p, se, "welch-t"


def correct(
    p_values: Sequence[float],
    *,
    alpha: float = 0.05,
    method: Literal["holm", "bonferroni", "fdr_bh"] = "holm",
) -> tuple[list[bool], list[float]]:
    """Reject decisions and adjusted p-values (statsmodels ``multipletests``, ``method`` explicit).

    Holm or Bonferroni for the always-valid family (the guardrails), Benjamini-Hochberg
    (``fdr_bh``) for exploratory fixed-horizon reports.
    """
    if not p_values:
        return [], []
    reject, adjusted, _, _ = multipletests(
        np.asarray(p_values, dtype=float), alpha=alpha, method=method
    )
    return [bool(r) for r in reject], [float(p) for p in adjusted]


def sample_size_binary(
    baseline: float, minimum_detectable: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm to detect ``baseline`` → ``baseline + minimum_detectable`` (two-sided)."""
    effect_size = proportion_effectsize(baseline + minimum_detectable, baseline)
    n = NormalIndPower().solve_power(effect_size=effect_size, alpha=alpha, power=power, ratio=1.0)
    return math.ceil(float(n))


def sample_size_mean(
    standard_deviation: float, minimum_detectable: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm to detect a change of the mean by ``minimum_detectable`` (Welch/t power)."""
    effect_size = minimum_detectable / standard_deviation
    n = TTestIndPower().solve_power(effect_size=effect_size, alpha=alpha, power=power, ratio=1.0)
    return math.ceil(float(n))

"""Fixed-horizon results equal statsmodels and scipy on the same inputs (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats import proportion  # not its test_* names: pytest would collect them
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from rollwise.analysis import (
    SufficientStats,
    compare,
    correct,
    sample_size_binary,
    sample_size_mean,
)


def close(expected: float) -> object:
    """Equal to 1e-9 (relative or absolute)."""
    return pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("n_c", "x_c", "n_t", "x_t", "alpha"),
    [
        (1000, 100, 1100, 140, 0.05),
        (20_000, 2000, 20_000, 2200, 0.05),
        (50, 3, 70, 12, 0.1),
        (5000, 4990, 5000, 4970, 0.01),
    ],
)
def test_wald_proportions_equal_statsmodels(
    n_c: int, x_c: int, n_t: int, x_t: int, alpha: float
) -> None:
    ours = compare(
        SufficientStats.binary(n_c, x_c), SufficientStats.binary(n_t, x_t),
        alpha=alpha, sequential=False,
    )  # fmt: skip
    test = proportion.test_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff")
    low, high = proportion.confint_proportions_2indep(
        x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=alpha
    )
    assert ours.method == "wald-z"
    assert ours.effect == close(float(test.diff))
    assert ours.p_value == close(float(test.pvalue))
    assert ours.ci_low == close(float(low))
    assert ours.ci_high == close(float(high))


@pytest.mark.parametrize(
    ("n_c", "n_t", "scale_t", "shift", "alpha"),
    [(40, 60, 1.0, 0.3, 0.05), (500, 300, 3.0, 0.0, 0.05), (5, 9, 0.2, 1.0, 0.1)],
)
def test_welch_from_statistics_equals_scipy_and_statsmodels_on_raw_data(
    n_c: int, n_t: int, scale_t: float, shift: float, alpha: float
) -> None:
    rng = np.random.default_rng(n_c + n_t)
    ctrl = rng.gamma(2.0, 50.0, n_c)
    cand = rng.gamma(2.0, 50.0 * scale_t, n_t) + shift
    ours = compare(
        SufficientStats.from_values(ctrl, kind="mean"),
        SufficientStats.from_values(cand, kind="mean"),
        alpha=alpha, sequential=False,
    )  # fmt: skip
    scipy_result = scipy_stats.ttest_ind(cand, ctrl, equal_var=False)
    low, high = CompareMeans(DescrStatsW(cand), DescrStatsW(ctrl)).tconfint_diff(
        alpha=alpha, usevar="unequal"
    )
    assert ours.method == "welch-t"
    assert ours.effect == close(float(cand.mean() - ctrl.mean()))
    assert ours.p_value == close(float(scipy_result.pvalue))
    assert ours.ci_low == close(float(low))
    assert ours.ci_high == close(float(high))
    assert ours.effect / ours.se == close(float(scipy_result.statistic))


@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh"])
def test_correct_equals_multipletests(method: str) -> None:
    p_values = [0.001, 0.2, 0.03, 0.012, 0.9, 0.04]
    reject, adjusted = correct(p_values, alpha=0.05, method=method)  # type: ignore[arg-type]
    expected_reject, expected, _, _ = multipletests(p_values, alpha=0.05, method=method)
    assert reject == [bool(r) for r in expected_reject]
    assert adjusted == pytest.approx(list(expected), rel=1e-9, abs=1e-9)


def test_correct_of_nothing() -> None:
    assert correct([], method="holm") == ([], [])


def test_sample_size_binary_equals_statsmodels() -> None:
    n = sample_size_binary(0.10, 0.01, alpha=0.05, power=0.8)
    expected = NormalIndPower().solve_power(
        effect_size=proportion.proportion_effectsize(0.11, 0.10), alpha=0.05, power=0.8, ratio=1.0
    )
    assert n == int(np.ceil(expected))
    assert 14_000 < n < 15_500  # the textbook ≈ 14,750 per arm for 10% → 11%


def test_sample_size_mean_equals_statsmodels() -> None:
    n = sample_size_mean(20.0, 2.0, alpha=0.05, power=0.9)
    expected = TTestIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.9, ratio=1.0)
    assert n == int(np.ceil(expected))

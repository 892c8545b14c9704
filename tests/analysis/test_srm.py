"""Sample-ratio mismatch: the chi-square test and the sequential Dirichlet-multinomial test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rollwise.analysis import SequentialSRM, srm_chi2
from rollwise.analysis.srm import SRM_THRESHOLD, srm_log_bayes_factor


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([5000, 5100], [1, 1]), ([1000, 2100, 6900], [0.1, 0.2, 0.7]), ([10, 30], [0.5, 0.5])],
)
def test_chi2_equals_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    n = sum(counts)
    expected = [n * w / sum(weights) for w in weights]
    assert srm_chi2(counts, weights) == pytest.approx(
        float(scipy_stats.chisquare(counts, expected).pvalue), rel=1e-9
    )


def test_chi2_edge_cases() -> None:
    assert srm_chi2([0, 0], [0.5, 0.5]) == 1.0
    assert srm_chi2([10, 0, 12], [0.5, 0.0, 0.5]) == pytest.approx(
        float(scipy_stats.chisquare([10, 12]).pvalue)
    )
    assert srm_chi2([10, 1, 12], [0.5, 0.0, 0.5]) == 0.0  # a unit where none should be
    with pytest.raises(ValueError, match="one entry per arm"):
        srm_chi2([1, 2], [1.0])
    with pytest.raises(ValueError, match="weights"):
        srm_chi2([1, 2], [0.0, 0.0])


@pytest.mark.parametrize(
    ("counts", "weights", "concentration"),
    [([12, 7], [0.5, 0.5], 10.0), ([30, 50, 20], [0.3, 0.5, 0.2], 100.0), ([3, 9], [1, 3], 1.0)],
)
def test_bayes_factor_is_dirichlet_multinomial_over_multinomial(
    counts: list[int], weights: list[float], concentration: float
) -> None:
    """BF = DirMult(x; n, c·p) / Mult(x; n, p), from scipy's distributions."""
    p = np.asarray(weights, dtype=float) / sum(weights)
    n = sum(counts)
    alternative = scipy_stats.dirichlet_multinomial.logpmf(counts, concentration * p, n)
    null = scipy_stats.multinomial.logpmf(counts, n, p)
    assert srm_log_bayes_factor(counts, weights, concentration) == pytest.approx(
        float(alternative - null), rel=1e-9
    )


def test_bayes_factor_with_a_unit_in_a_zero_weight_arm() -> None:
    assert srm_log_bayes_factor([5, 1], [1.0, 0.0]) == math.inf


def test_sequential_srm_is_a_running_minimum() -> None:
    srm = SequentialSRM([0.5, 0.5], concentration=1000)
    seen = []
    rng = np.random.default_rng(5)
    totals = np.cumsum(rng.multinomial(400, [0.5, 0.5], size=30), axis=0)
    for counts in totals:
        log_bf = srm_log_bayes_factor(counts.tolist(), [0.5, 0.5], 1000)
        seen.append(min(1.0, math.exp(-log_bf)))
        assert srm.update(counts.tolist()) == min(seen)
    assert srm.looks == 30
    assert not srm.mismatch


def test_sequential_srm_detects_a_real_mismatch() -> None:
    """A 50/50 split that logs 48/52: flagged at p < 0.001 within 50 looks of 2,000 units."""
    srm = SequentialSRM([0.5, 0.5])
    rng = np.random.default_rng(8)
    totals = np.cumsum(rng.multinomial(2000, [0.48, 0.52], size=50), axis=0)
    for counts in totals:
        srm.update(counts.tolist())
    assert srm.p_value < SRM_THRESHOLD
    assert srm.mismatch


def test_sequential_srm_zero_weight_arm_and_bad_lengths() -> None:
    srm = SequentialSRM([1.0, 0.0])
    assert srm.update([10, 0]) == 1.0
    assert srm.update([10, 1]) == 0.0
    with pytest.raises(ValueError, match="one entry per arm"):
        srm.update([1, 2, 3])
    with pytest.raises(ValueError, match="weights"):
        SequentialSRM([-1.0, 2.0])

"""``SufficientStats``: moments, kinds, addition, and the delta method for ratio metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollwise.analysis import SufficientStats, compare


def test_mean_metric_moments_match_numpy() -> None:
    values = np.random.default_rng(3).lognormal(0.0, 0.7, 5000)
    stats = SufficientStats.from_values(values, kind="mean")
    assert stats.n == 5000
    assert stats.kind == "mean"
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.variance == pytest.approx(values.var(ddof=1), rel=1e-9)


def test_binary_variance_is_p_one_minus_p() -> None:
    stats = SufficientStats.binary(200, 30)
    assert (stats.total, stats.m2, stats.kind) == (30.0, 30 * 170 / 200, "binary")
    assert stats.mean == 0.15
    assert stats.variance == pytest.approx(0.15 * 0.85)


@pytest.mark.parametrize(("n", "successes"), [(10, 11), (10, -1), (-1, 0)])
def test_binary_rejects_impossible_counts(n: int, successes: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        SufficientStats.binary(n, successes)


def test_addition_equals_the_statistics_of_the_union() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=300), rng.normal(size=700)
    ca, cb = rng.normal(size=300), rng.normal(size=700)
    left = SufficientStats.from_values(a, kind="mean", covariate=ca) + SufficientStats.from_values(
        b, kind="mean", covariate=cb
    )
    whole = SufficientStats.from_values(
        np.concatenate([a, b]), kind="mean", covariate=np.concatenate([ca, cb])
    )
    for field in ("n", "total", "m2", "cov_total", "cov_m2", "cov_comoment"):
        assert getattr(left, field) == pytest.approx(getattr(whole, field), rel=1e-12)
    assert left.has_covariate
    assert SufficientStats.combine([]) is None
    assert SufficientStats.combine([left]) is left


def test_addition_refuses_mixed_kinds_and_drops_partial_covariates() -> None:
    with pytest.raises(ValueError, match="cannot add"):
        SufficientStats.binary(10, 1) + SufficientStats(n=10, total=1.0, m2=1.0, kind="mean")
    with_cov = SufficientStats.from_values([1.0, 2.0], kind="mean", covariate=[0.0, 1.0])
    assert not (with_cov + SufficientStats.from_values([3.0], kind="mean")).has_covariate


def test_from_values_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="covariate"):
        SufficientStats.from_values([1.0, 2.0], kind="mean", covariate=[1.0])
    with pytest.raises(ValueError, match="ratio_from_values"):
        SufficientStats.from_values([1.0], kind="ratio")
    with pytest.raises(ValueError, match="pair"):
        SufficientStats.ratio_from_values([1.0], [1.0, 2.0])


def test_degenerate_moments_are_nan_not_errors() -> None:
    empty = SufficientStats(n=0, total=0.0, m2=0.0, kind="mean")
    assert math.isnan(empty.mean)
    assert math.isnan(empty.variance)
    assert math.isnan(SufficientStats.from_values([4.0], kind="mean").variance)
    assert math.isnan(SufficientStats.ratio_from_values([1.0, 2.0], [0.0, 0.0]).mean)
    assert SufficientStats.from_values([2.0] * 5, kind="mean").variance == 0.0


def test_ratio_delta_method_matches_a_simulation() -> None:
    """Var(Σx/Σy) over 4,000 simulated experiments ≈ the delta-method variance / n.

    Units with a random number of requests (denominator) and errors (numerator) correlated
    with it: errors per request.
    """
    rng = np.random.default_rng(2018)
    experiments, n = 4000, 400
    requests = rng.poisson(5.0, size=(experiments, n)) + 1
    errors = rng.binomial(requests, rng.beta(2.0, 30.0, size=(experiments, n)))
    ratios = errors.sum(axis=1) / requests.sum(axis=1)
    empirical = ratios.var(ddof=1)
    one = SufficientStats.ratio_from_values(errors[0].tolist(), requests[0].tolist())
    assert one.kind == "ratio"
    assert one.mean == pytest.approx(errors[0].sum() / requests[0].sum())
    predicted = np.mean(
        [
            SufficientStats.ratio_from_values(errors[i].tolist(), requests[i].tolist()).variance / n
            for i in range(0, experiments, 40)
        ]
    )
    # 4,000 draws: the empirical variance has a relative standard error of about 2-3%
    assert predicted == pytest.approx(empirical, rel=0.1), (predicted, empirical)


def test_ratio_metric_compares_and_covers() -> None:
    """The delta-method interval of a ratio-metric difference covers the truth ≈ 95%."""
    rng = np.random.default_rng(11)
    cover = 0
    runs = 300
    for _ in range(runs):
        arms = []
        for _arm in range(2):
            den = rng.poisson(4.0, 500) + 1
            num = rng.binomial(den, 0.05)
            arms.append(SufficientStats.ratio_from_values(num.tolist(), den.tolist()))
        result = compare(arms[0], arms[1], sequential=False)
        cover += result.ci_low <= 0.0 <= result.ci_high
    assert 0.91 <= cover / runs <= 0.985, cover / runs

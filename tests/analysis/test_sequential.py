"""The always-valid normal mixture, ``compare``, ``SequentialMonitor``, CUPED and ``verdict``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollwise.analysis import (
    Comparison,
    SequentialMonitor,
    SufficientStats,
    always_valid,
    compare,
    verdict,
)
from rollwise.analysis.sequential import mixture_rho_squared

# --- the formulas against a hand computation (30-digit mpmath, values pasted here) ---
#
# α = 0.05, N* = 5000:  −2 ln α = 5.99146454710798…,  ln(1 − 2 ln α) = 1.94469005462958…
#   ρ² = (5.99146454710798 + 1.94469005462958) / 5000 = 0.001587230920347513062…
# Δ̂ = 0.02, V = 1e-4, N = 2000:  Nρ² = 3.174461840695026
#   half-width = √(V N) · √(2 (Nρ² + 1) / (N² ρ²) · ln(√(Nρ² + 1) / α)) = 0.031237790916747295…
#   ln e = ρ² Δ̂² N / (2 V (Nρ² + 1)) − ½ ln(Nρ² + 1) = 0.80640360238…,  p = e⁻¹ = 0.446460833079151…


def test_mixture_rho_squared_by_hand() -> None:
    assert mixture_rho_squared(0.05, 5000) == pytest.approx(0.001587230920347513062, rel=1e-14)


def test_always_valid_by_hand() -> None:
    result = always_valid(0.02, 1e-4, 2000, alpha=0.05, tuning=5000)
    assert result.effect == 0.02
    assert result.ci_low == pytest.approx(0.02 - 0.0312377909167472956, rel=1e-13)
    assert result.ci_high == pytest.approx(0.02 + 0.0312377909167472956, rel=1e-13)
    assert result.p_value == pytest.approx(0.446460833079151151, rel=1e-13)
    assert result.se == pytest.approx(0.01)


def test_compare_binary_by_hand() -> None:
    # control 100/1000, candidate 140/1100: V = .1·.9/1000 + p_T(1−p_T)/1100, N = 2100
    result = compare(SufficientStats.binary(1000, 100), SufficientStats.binary(1100, 140))
    assert result.method == "mixture-sprt"
    assert result.effect == pytest.approx(0.0272727272727272727, rel=1e-14)
    assert result.se == pytest.approx(0.0138194323053145729, rel=1e-13)
    assert result.ci_low == pytest.approx(-0.0157569933269664163, rel=1e-12)
    assert result.ci_high == pytest.approx(0.0703024478724209618, rel=1e-13)
    assert result.p_value == pytest.approx(0.465425085409366284, rel=1e-12)


@pytest.mark.parametrize(("effect", "variance", "n"), [(0.01, 1e-5, 500), (-3.0, 0.5, 80_000)])
def test_p_value_and_interval_agree(effect: float, variance: float, n: float) -> None:
    """p < α exactly when the interval excludes 0 (both come from the same e-value)."""
    for alpha in (0.01, 0.05, 0.2):
        r = always_valid(effect, variance, n, alpha=alpha)
        assert (r.p_value < alpha) == (r.ci_low > 0 or r.ci_high < 0)


def test_interval_is_wider_than_the_fixed_horizon_one() -> None:
    r = always_valid(0.0, 1e-4, 10_000)
    assert r.ci_high > 1.96 * 0.01


def test_tuning_makes_the_interval_tightest_near_n_star() -> None:
    widths = {t: always_valid(0.0, 1.0 / 40_000, 40_000, tuning=t).ci_high for t in (5e3, 4e4, 4e5)}
    assert widths[4e4] < widths[5e3]
    assert widths[4e4] < widths[4e5]


@pytest.mark.parametrize(
    ("effect", "variance", "n"),
    [(0.1, 0.0, 10), (0.1, -1.0, 10), (math.nan, 1.0, 10), (0.1, math.inf, 10), (0.1, 1.0, 0)],
)
def test_always_valid_rejects_degenerate_inputs(effect: float, variance: float, n: float) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        always_valid(effect, variance, n)


@pytest.mark.parametrize(("alpha", "tuning"), [(0.0, 100), (1.0, 100), (0.05, 0)])
def test_rho_rejects_bad_parameters(alpha: float, tuning: float) -> None:
    with pytest.raises(ValueError, match=r"alpha|tuning"):
        mixture_rho_squared(alpha, tuning)


# --- SequentialMonitor ---


def test_monitor_keeps_running_minimum_and_intersection() -> None:
    rng = np.random.default_rng(7)
    monitor = SequentialMonitor(alpha=0.05, tuning=2000)
    ctrl_succ = np.cumsum(rng.binomial(300, 0.10, size=20))
    cand_succ = np.cumsum(rng.binomial(300, 0.12, size=20))
    own_p, own_low, own_high = [], [], []
    for i in range(20):
        n = 300 * (i + 1)
        look = monitor.update(
            SufficientStats.binary(n, int(ctrl_succ[i])),
            SufficientStats.binary(n, int(cand_succ[i])),
        )
        own_p.append(look.result.p_value)
        own_low.append(look.result.ci_low)
        own_high.append(look.result.ci_high)
        assert look.look == i + 1
        assert look.running_p_value == min(own_p)
        assert look.running_ci_low == max(own_low)
        assert look.running_ci_high == min(own_high)
        assert look.result.ci_low <= look.running_ci_low <= look.running_ci_high
    assert monitor.looks == 20
    assert [look.look for look in monitor.history] == list(range(1, 21))
    assert monitor.running_p == min(own_p)


def test_monitor_skips_insufficient_looks() -> None:
    monitor = SequentialMonitor()
    first = monitor.update(SufficientStats.binary(0, 0), SufficientStats.binary(1, 1))
    assert first.result.insufficient
    assert (first.running_p_value, first.running_ci_low, first.running_ci_high) == (
        1.0,
        -math.inf,
        math.inf,
    )
    second = monitor.update(SufficientStats.binary(500, 50), SufficientStats.binary(500, 60))
    assert second.running_p_value == second.result.p_value
    assert len(monitor.history) == 2


# --- compare: relative effects, CUPED, kinds ---


def test_relative_effect_uses_the_delta_method() -> None:
    ctrl, cand = SufficientStats.binary(10_000, 1000), SufficientStats.binary(10_000, 1100)
    result = compare(ctrl, cand, relative=True)
    assert result.effect == pytest.approx(0.1)
    var = 0.11 * 0.89 / (10_000 * 0.1**2) + 0.11**2 * 0.1 * 0.9 / (10_000 * 0.1**4)
    assert result.se == pytest.approx(math.sqrt(var))
    fixed = compare(ctrl, cand, relative=True, sequential=False)
    assert fixed.method == "wald-z"
    assert fixed.ci_high - fixed.effect == pytest.approx(1.959963984540054 * math.sqrt(var))


def test_relative_with_zero_control_mean_is_insufficient() -> None:
    result = compare(SufficientStats.binary(100, 0), SufficientStats.binary(100, 5), relative=True)
    assert result.insufficient
    assert result.note == "control mean is 0"


def test_compare_refuses_mixed_kinds_and_bad_alpha() -> None:
    with pytest.raises(ValueError, match="cannot compare"):
        compare(
            SufficientStats.binary(10, 1), SufficientStats(n=10, total=1.0, m2=1.0, kind="mean")
        )
    with pytest.raises(ValueError, match="alpha"):
        compare(SufficientStats.binary(10, 1), SufficientStats.binary(10, 2), alpha=1.5)


def _cuped_arms(
    rng: np.random.Generator, n: int, lift: float
) -> tuple[SufficientStats, SufficientStats]:
    arms = []
    for shift in (0.0, lift):
        pre = rng.normal(10.0, 2.0, n)
        post = 0.9 * pre + rng.normal(shift, 1.0, n)
        arms.append(SufficientStats.from_values(post, kind="mean", covariate=pre))
    return arms[0], arms[1]


def test_cuped_reduces_variance_and_stays_unbiased() -> None:
    """Simulation: 400 experiments, corr(pre, post) ≈ 0.87, true lift 0.3."""
    rng = np.random.default_rng(2013)
    adjusted, plain, ses_adj, ses_plain = [], [], [], []
    for _ in range(400):
        ctrl, cand = _cuped_arms(rng, 400, 0.3)
        with_cov = compare(ctrl, cand, sequential=False)
        without = compare(
            SufficientStats(n=ctrl.n, total=ctrl.total, m2=ctrl.m2, kind="mean"),
            SufficientStats(n=cand.n, total=cand.total, m2=cand.m2, kind="mean"),
            sequential=False,
        )
        assert with_cov.method.endswith("+ CUPED")
        adjusted.append(with_cov.effect)
        plain.append(without.effect)
        ses_adj.append(with_cov.se)
        ses_plain.append(without.se)
    adj, pl = np.array(adjusted), np.array(plain)
    # unbiased: the mean of 400 estimates is within 4 of its standard errors of the truth
    assert abs(adj.mean() - 0.3) < 4 * adj.std(ddof=1) / math.sqrt(len(adj))
    # variance reduced by about 1 − ρ² ≈ 0.24 (empirically and in the reported se)
    ratio = adj.var(ddof=1) / pl.var(ddof=1)
    assert ratio < 0.4, f"CUPED variance ratio {ratio:.3f}"
    assert np.mean(ses_adj) / np.mean(ses_plain) < 0.6
    # the reported se matches the spread of the estimates
    assert np.mean(ses_adj) == pytest.approx(adj.std(ddof=1), rel=0.15)


def test_cuped_needs_the_covariate_on_both_arms() -> None:
    rng = np.random.default_rng(1)
    ctrl, cand = _cuped_arms(rng, 200, 0.0)
    bare = SufficientStats(n=cand.n, total=cand.total, m2=cand.m2, kind="mean")
    assert compare(ctrl, bare).method == "mixture-sprt"


# --- verdict ---


def _result(low: float, high: float, insufficient: bool = False) -> Comparison:
    return Comparison(
        effect=(low + high) / 2, ci_low=low, ci_high=high, p_value=0.5, se=1.0,
        control_mean=0.0, candidate_mean=0.0, n_control=10, n_candidate=10, alpha=0.05,
        sequential=True, relative=False, method="test", insufficient=insufficient,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("low", "high", "direction", "tolerance", "expected"),
    [
        (0.01, 0.05, "increase", 0.0, "harm"),
        (0.01, 0.05, "increase", 0.02, "no harm shown yet"),
        (0.03, 0.05, "increase", 0.02, "harm"),
        (-0.05, -0.01, "increase", 0.0, "improvement"),
        (-0.05, 0.01, "increase", 0.02, "non-inferior"),
        (-0.05, 0.01, "increase", 0.0, "no harm shown yet"),
        (-0.05, -0.01, "decrease", 0.0, "harm"),
        (0.01, 0.05, "decrease", 0.0, "improvement"),
        (-0.01, 0.05, "decrease", 0.02, "non-inferior"),
    ],
)
def test_verdict_table(
    low: float, high: float, direction: str, tolerance: float, expected: str
) -> None:
    got = verdict(_result(low, high), harm_direction=direction, tolerance=tolerance)  # type: ignore[arg-type]
    assert got == expected


def test_verdict_insufficient_and_bad_tolerance() -> None:
    assert (
        verdict(_result(-math.inf, math.inf, True), harm_direction="increase")
        == "insufficient data"
    )
    with pytest.raises(ValueError, match="tolerance"):
        verdict(_result(0, 1), harm_direction="increase", tolerance=-0.1)

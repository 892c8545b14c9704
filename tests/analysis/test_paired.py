"""Paired (shadow) comparisons: ``PairedStats``, ``compare_paired``, ``update_paired``.

The simulations draw the scores with numpy (each unit's two normal scores; for 0/1 scores the
multinomial counts of each batch's four (l, s) outcomes) and take the statistics of each look
from cumulative sums over batches of 100 pairs; the code under test is then called once per
(run, look), and a run counts as a false positive if it rejects at *any* of its 100 looks.
The measured rates are in the assertion messages and in the summary at the end of the run.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import DescrStatsW

from rollwise.analysis import (
    Comparison,
    PairedStats,
    SequentialMonitor,
    SufficientStats,
    always_valid,
    at_level,
    compare,
    compare_paired,
    verdict,
    verdict_reason,
)

ALPHA = 0.05
BATCH, LOOKS = 100, 100  # a look every 100 pairs, up to 10,000 pairs
RUNS = 2000
CHUNK = 250  # runs drawn at once (2.5 million pairs)


def _normal_pairs(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    rho: float,
    effect: float,
    dtype: type[np.floating[Any]] = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Live and shadow scores, each N(0, 1) (the shadow's mean ``effect``), correlation ρ.

    The simulations draw float32 scores (twice as fast; ``_looks`` sums them in float64).
    """
    live = rng.standard_normal(shape, dtype=dtype)
    noise = rng.standard_normal(shape, dtype=dtype)
    return live, rho * live + math.sqrt(1.0 - rho * rho) * noise + effect


def _looks(live: np.ndarray, shadow: np.ndarray) -> Iterator[list[PairedStats]]:
    """Per run (the first axis), the cumulative ``PairedStats`` of each look (batches of 100).

    The centred sums come from raw ones (Σl² − (Σl)²/n): exact enough for scores of mean ~0.
    """
    shape = (live.shape[0], LOOKS, BATCH)
    live, shadow = live.reshape(shape), shadow.reshape(shape)
    products = [live, shadow, live * live, shadow * shadow, live * shadow, abs(shadow - live)]
    sums = np.stack([p.sum(axis=2, dtype=np.float64) for p in products], axis=-1).cumsum(axis=1)
    n = BATCH * np.arange(1, LOOKS + 1)
    yield from _stats(n, sums)


def _stats(n: np.ndarray, sums: np.ndarray) -> Iterator[list[PairedStats]]:
    """``sums[run, look]`` = (Σl, Σs, Σl², Σs², Σls, Σ|s − l|) over ``n[look]`` pairs."""
    for run in sums.tolist():
        yield [
            PairedStats(
                n=units,
                live_total=sl,
                shadow_total=ss,
                live_m2=sll - sl * sl / units,
                shadow_m2=sss - ss * ss / units,
                comoment=sls - sl * ss / units,
                abs_total=sa,
            )
            for units, (sl, ss, sll, sss, sls, sa) in zip(n.tolist(), run, strict=True)
        ]


def _binary_looks(
    rng: np.random.Generator, runs: int, p_live: float, p_shadow: float, rho: float
) -> Iterator[list[PairedStats]]:
    """Correlated 0/1 "prediction correct" scores: the counts of the four (l, s) outcomes per
    batch are multinomial, with P(1, 1) = p_l p_s + ρ σ_l σ_s."""
    p11 = p_live * p_shadow + rho * math.sqrt(p_live * (1 - p_live) * p_shadow * (1 - p_shadow))
    probs = [p11, p_live - p11, p_shadow - p11, 1.0 - p_live - p_shadow + p11]  # 11 10 01 00
    assert min(probs) >= 0
    counts = rng.multinomial(BATCH, probs, size=(runs, LOOKS)).cumsum(axis=1).astype(float)
    n11, n10, n01 = counts[..., 0], counts[..., 1], counts[..., 2]
    sl, ss = n11 + n10, n11 + n01  # 0/1 scores: Σl² = Σl
    yield from _stats(
        BATCH * np.arange(1, LOOKS + 1), np.stack([sl, ss, sl, ss, n11, n10 + n01], -1)
    )


# --- the statistics ---


def test_moments_match_numpy() -> None:
    live, shadow = _normal_pairs(np.random.default_rng(1), (3000,), 0.7, 0.2)
    stats = PairedStats.from_values(live, shadow)
    d = shadow - live
    assert stats.n == 3000
    assert stats.live_mean == pytest.approx(live.mean(), rel=1e-12, abs=1e-15)
    assert stats.shadow_mean == pytest.approx(shadow.mean(), rel=1e-12)
    assert stats.difference == pytest.approx(d.mean(), rel=1e-12)
    assert stats.difference_variance == pytest.approx(d.var(ddof=1), rel=1e-12)
    assert stats.correlation == pytest.approx(np.corrcoef(live, shadow)[0, 1], rel=1e-12)
    assert stats.mean_absolute_difference == pytest.approx(np.abs(d).mean(), rel=1e-12)
    cov = np.cov(live, shadow)  # var_d = var_l + var_s − 2 cov
    assert stats.difference_variance == pytest.approx(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])


def test_undefined_moments_are_nan() -> None:
    empty = PairedStats.combine([])
    assert empty.n == 0
    assert math.isnan(empty.live_mean)
    assert math.isnan(empty.difference)
    assert math.isnan(empty.mean_absolute_difference)
    one = PairedStats.from_values([1.0], [0.0])
    assert math.isnan(one.difference_variance)
    assert math.isnan(one.correlation)
    constant = PairedStats.from_values([1.0, 1.0, 1.0], [0.0, 1.0, 1.0])
    assert math.isnan(constant.correlation)
    assert constant.difference_variance == pytest.approx(1 / 3)


def test_from_values_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="shadow: needs one score per live score"):
        PairedStats.from_values([1.0, 2.0], [1.0])


_SCORES = st.one_of(
    st.integers(0, 1).map(float),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    st.floats(1e6, 1e6 + 10, allow_nan=False),  # a large mean, next to a small spread
)


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(st.tuples(_SCORES, _SCORES), min_size=0, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
)
def test_merges_equal_the_statistics_of_the_whole(
    pairs: list[tuple[float, float]], cuts: list[int]
) -> None:
    live = [p[0] for p in pairs]
    shadow = [p[1] for p in pairs]
    bounds = sorted({0, len(pairs), *(min(c, len(pairs)) for c in cuts)})
    parts = [PairedStats.from_values(live[a:b], shadow[a:b]) for a, b in itertools.pairwise(bounds)]
    merged = PairedStats.combine(parts)
    whole = PairedStats.from_values(live, shadow)
    assert merged.n == whole.n == len(pairs)
    scale = max([1.0, *(abs(x) for x in live + shadow)])
    for field in ("live_total", "shadow_total", "abs_total"):
        assert getattr(merged, field) == pytest.approx(
            getattr(whole, field), rel=1e-12, abs=1e-12 * scale * max(1, len(pairs))
        )
    spread = max(1.0, whole.live_m2, whole.shadow_m2)
    for field in ("live_m2", "shadow_m2", "comoment"):
        assert getattr(merged, field) == pytest.approx(getattr(whole, field), abs=1e-9 * spread)
    if len(parts) >= 2:
        assert parts[0] + parts[1] == PairedStats.combine(parts[:2])


def test_add_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        PairedStats.from_values([1.0], [2.0]) + SufficientStats.binary(1, 1)  # type: ignore[operator]


# --- compare_paired against statsmodels and scipy, and against always_valid ---


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2026)
    live = rng.gamma(2.0, 1.5, 400)  # an absolute error: skewed, positive
    return live, 0.9 * live + rng.normal(0.0, 0.8, 400) + 0.05


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_fixed_horizon_is_the_paired_t_test(
    scores: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    live, shadow = scores
    result = compare_paired(PairedStats.from_values(live, shadow), alpha=alpha, sequential=False)
    d = DescrStatsW(shadow - live)
    t, p, df = d.ttest_mean()
    low, high = d.tconfint_mean(alpha=alpha)
    rel = scipy_stats.ttest_rel(shadow, live)
    assert result.method == "paired t-test"
    assert df == 399
    assert (result.n_control, result.n_candidate) == (400, 400)
    assert result.effect == pytest.approx(d.mean, rel=1e-9)
    assert result.se == pytest.approx(d.std_mean, rel=1e-9)
    assert result.effect / result.se == pytest.approx(t, rel=1e-9)
    assert result.effect / result.se == pytest.approx(rel.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.p_value == pytest.approx(rel.pvalue, rel=1e-9)
    assert result.ci_low == pytest.approx(low, rel=1e-9)
    assert result.ci_high == pytest.approx(high, rel=1e-9)
    assert (result.control_mean, result.candidate_mean) == pytest.approx(
        (live.mean(), shadow.mean()), rel=1e-12
    )


def test_sequential_is_always_valid_with_n_units(scores: tuple[np.ndarray, np.ndarray]) -> None:
    live, shadow = scores
    stats = PairedStats.from_values(live, shadow)
    result = compare_paired(stats, alpha=0.1, tuning=2000)
    var_d = float(np.var(shadow - live, ddof=1))
    expected = always_valid(float(np.mean(shadow - live)), var_d / 400, 400, alpha=0.1, tuning=2000)
    assert result.method == "paired mixture-sprt"
    assert result.effect == pytest.approx(expected.effect, rel=1e-12)
    for field in ("ci_low", "ci_high", "p_value", "se"):
        assert getattr(result, field) == pytest.approx(getattr(expected, field), rel=1e-9)
    exact = always_valid(stats.difference, stats.difference_variance / 400, 400, alpha=0.1,
                         tuning=2000)  # fmt: skip
    assert (result.ci_low, result.ci_high, result.p_value) == (
        exact.ci_low, exact.ci_high, exact.p_value
    )  # fmt: skip


def test_relative_effect_uses_the_delta_method_with_the_covariance(
    scores: tuple[np.ndarray, np.ndarray],
) -> None:
    live, shadow = scores
    stats = PairedStats.from_values(live, shadow)
    result = compare_paired(stats, relative=True)
    ratio = shadow.mean() / live.mean()
    # the linearised values (s − r·l)/m_l: their variance over n is the delta method's
    influence = (shadow - ratio * live) / live.mean()
    assert result.effect == pytest.approx(ratio - 1, rel=1e-12)
    assert result.se == pytest.approx(math.sqrt(influence.var(ddof=1) / 400), rel=1e-9)
    without_cov = math.sqrt(
        (shadow.var(ddof=1) + ratio**2 * live.var(ddof=1)) / (400 * live.mean() ** 2)
    )
    assert result.se < without_cov / 2  # the covariance is what makes it small
    fixed = compare_paired(stats, relative=True, sequential=False)
    assert fixed.method == "paired wald-z"
    assert fixed.ci_high - fixed.effect == pytest.approx(1.959963984540054 * result.se)


# --- degenerate input: insufficient, never an exception or a NaN verdict ---

INSUFFICIENT = {
    "no units": (PairedStats.combine([]), "fewer than 2 paired units"),
    "one unit": (PairedStats.from_values([1.0], [0.0]), "fewer than 2 paired units"),
    "identical models": (
        PairedStats.from_values([0, 1, 1, 0, 1], [0, 1, 1, 0, 1]),
        "no variance in the difference between the models",
    ),
    "a constant shift": (
        PairedStats.from_values([1.1, 2.7, 3.3, 0.2], [1.4, 3.0, 3.6, 0.5]),
        "no variance in the difference between the models",
    ),
    "a constant shift at 1e8": (
        PairedStats.from_values([1e8 + 1.1, 1e8 + 2.7, 1e8 + 3.3], [1e8 + 1.4, 1e8 + 3, 1e8 + 3.6]),
        "no variance in the difference between the models",
    ),
    "a NaN score": (PairedStats.from_values([1.0, math.nan, 2.0], [1, 2, 2]), "non-finite scores"),
    "an infinite score": (
        PairedStats.from_values([1.0, 2.0], [math.inf, 1.0]),
        "non-finite scores",
    ),
    "-inf and inf": (PairedStats.from_values([-math.inf, math.inf], [1, 2]), "non-finite scores"),
}


@pytest.mark.parametrize("case", sorted(INSUFFICIENT))
@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("relative", [False, True])
def test_degenerate_input_is_insufficient(case: str, sequential: bool, relative: bool) -> None:
    stats, note = INSUFFICIENT[case]
    result = compare_paired(stats, sequential=sequential, relative=relative)
    assert result.insufficient
    assert result.method == "insufficient"
    assert result.note == note
    assert (result.effect, result.p_value) == (0.0, 1.0)
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    for value in (result.effect, result.p_value, result.control_mean, result.candidate_mean):
        assert not math.isnan(value)
    assert verdict(result, harm_direction="decrease") == "insufficient data"
    reason = verdict_reason(result, harm_direction="decrease")
    if stats.n < 2:  # the reading counts the units each model scored, as for two arms
        assert reason.startswith(f"insufficient data: {stats.n} unit"), reason
        assert reason.endswith("2 needed in each"), reason
    else:
        assert reason == f"insufficient data: {note}"
    assert at_level(result, 0.01).insufficient


def test_relative_needs_a_live_mean() -> None:
    stats = PairedStats.from_values([0, 0, 0, 0], [0, 1, 0, 1])
    assert not compare_paired(stats).insufficient
    result = compare_paired(stats, relative=True)
    assert result.insufficient
    assert result.note == "live mean is 0"
    proportional = PairedStats.from_values([1.0, 2.0, 4.0], [2.0, 4.0, 8.0])
    assert compare_paired(proportional, relative=True).note == (
        "shadow scores proportional to live ones"
    )


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_bad_alpha_is_an_error(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        compare_paired(PairedStats.from_values([1, 0, 1], [1, 1, 0]), alpha=alpha)


# --- verdict and at_level read paired results ---


@pytest.mark.parametrize(("sequential", "relative"), [(True, False), (False, False),
                                                      (True, True), (False, True)])  # fmt: skip
def test_at_level_equals_comparing_again(
    scores: tuple[np.ndarray, np.ndarray], sequential: bool, relative: bool
) -> None:
    stats = PairedStats.from_values(*scores)
    result = compare_paired(stats, sequential=sequential, relative=relative, tuning=1000)
    again = at_level(result, 0.01, tuning=1000)
    direct = compare_paired(stats, alpha=0.01, sequential=sequential, relative=relative,
                            tuning=1000)  # fmt: skip
    assert again.alpha == 0.01
    assert again.method == direct.method
    for field in ("ci_low", "ci_high", "p_value"):
        assert getattr(again, field) == pytest.approx(getattr(direct, field), rel=1e-12)
    assert again.ci_high - again.ci_low > result.ci_high - result.ci_low


def test_verdict_reads_a_paired_result() -> None:
    rng = np.random.default_rng(5)
    live = rng.binomial(1, 0.9, 4000).astype(float)
    flip = rng.random(4000) < 0.04  # the shadow fixes 4% of the units' outcomes to correct
    shadow = np.where(flip, 1.0, live)
    result = compare_paired(PairedStats.from_values(live, shadow))
    assert result.ci_low > 0
    assert verdict(result, harm_direction="decrease") == "improvement"
    assert verdict_reason(result, harm_direction="decrease").startswith("improvement: interval [+")
    assert verdict(result, harm_direction="increase") == "harm"


# --- SequentialMonitor.update_paired ---


def test_monitor_update_paired_keeps_the_running_values() -> None:
    live, shadow = _normal_pairs(np.random.default_rng(8), (2000,), 0.8, 0.05)
    monitor = SequentialMonitor(alpha=0.05, tuning=2000)
    first = monitor.update_paired(PairedStats.from_values(live[:1], shadow[:1]))
    assert first.result.insufficient
    assert first.running_p_value == 1.0
    stats = PairedStats.combine([])
    own: list[tuple[float, float, float]] = []
    for k in range(20):
        stats = stats + PairedStats.from_values(live[k * 100 : (k + 1) * 100],
                                                shadow[k * 100 : (k + 1) * 100])  # fmt: skip
        look = monitor.update_paired(stats)
        assert look.result == compare_paired(stats, alpha=0.05, tuning=2000)
        own.append((look.result.p_value, look.result.ci_low, look.result.ci_high))
        assert look.look == k + 2
        assert look.running_p_value == min(p for p, _, _ in own)
        assert look.running_ci_low == max(low for _, low, _ in own)
        assert look.running_ci_high == min(high for _, _, high in own)
    assert len(monitor.history) == 21


def test_paired_statistics_import_without_the_analysis_extra() -> None:
    code = (
        "import sys\n"
        "from rollwise.analysis.paired import PairedStats\n"
        "from rollwise.analysis.sequential import SequentialMonitor\n"
        "look = SequentialMonitor().update_paired(PairedStats.from_values([0, 1, 1], [1, 1, 1]))\n"
        "assert look.result.method == 'paired mixture-sprt', look\n"
        "print(sorted({'statsmodels', 'pandas', 'matplotlib', 'scipy', 'numpy'}"
        " & set(sys.modules)))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# --- A/A under continuous monitoring, coverage, and the units saved ---


@pytest.mark.slow
def test_aa_correlated_normal_scores(measured: list[str]) -> None:
    """2,000 A/A shadows, ρ = 0.8, a look every 100 pairs up to 10,000.

    The naive fixed-horizon paired t-test, run on the first 200 shadows in the same harness,
    must exceed 0.2, so the harness can fail.
    """
    rng = np.random.default_rng(8080)
    rejected = naive = naive_runs = 0
    for _ in range(RUNS // CHUNK):
        live, shadow = _normal_pairs(rng, (CHUNK, LOOKS * BATCH), 0.8, 0.0, np.float32)
        for looks in _looks(live, shadow):
            rejected += any(compare_paired(s, alpha=ALPHA).p_value < ALPHA for s in looks)
            if naive_runs < 200:
                naive_runs += 1
                naive += any(
                    compare_paired(s, alpha=ALPHA, sequential=False).p_value < ALPHA for s in looks
                )
    rate, naive_rate = rejected / RUNS, naive / naive_runs
    measured.append(f"A/A paired normal ρ=0.8, 100 looks of 100 pairs: sequential "
                    f"{rate:.4f} ({RUNS} runs), naive paired t {naive_rate:.3f} "
                    f"({naive_runs} runs)")  # fmt: skip
    assert rate <= 0.06, f"sequential false-positive rate {rate:.4f}"
    assert naive_rate > 0.2, f"naive rate {naive_rate:.3f}: the harness cannot fail"


@pytest.mark.slow
def test_aa_correlated_binary_scores(measured: list[str]) -> None:
    """2,000 A/A shadows of 0/1 "prediction correct" scores (accuracy 0.9 both), ρ = 0.8."""
    rng = np.random.default_rng(9090)
    rejected = 0
    for looks in _binary_looks(rng, RUNS, 0.9, 0.9, 0.8):
        rejected += any(compare_paired(s, alpha=ALPHA).p_value < ALPHA for s in looks)
    rate = rejected / RUNS
    measured.append(f"A/A paired binary p=0.9 ρ=0.8, 100 looks of 100 pairs: sequential "
                    f"{rate:.4f} ({RUNS} runs)")  # fmt: skip
    assert rate <= 0.06, f"sequential false-positive rate {rate:.4f}"


@pytest.mark.slow
def test_coverage_with_a_true_effect(measured: list[str]) -> None:
    """500 shadows 0.05 better (ρ = 0.8): the running interval of ``update_paired`` holds the
    true effect at every one of the 100 looks in ≥ 94% of them; and it detects the effect."""
    rng = np.random.default_rng(7070)
    runs, effect = 500, 0.05
    covered = detected = 0
    for _ in range(runs // CHUNK):
        live, shadow = _normal_pairs(rng, (CHUNK, LOOKS * BATCH), 0.8, effect, np.float32)
        for looks in _looks(live, shadow):
            monitor = SequentialMonitor(alpha=ALPHA)
            for stats in looks:
                monitor.update_paired(stats)
            covered += monitor.running_low <= effect <= monitor.running_high
            detected += monitor.running_low > 0
    coverage, power = covered / runs, detected / runs
    measured.append(f"paired coverage, effect 0.05 ρ=0.8, 100 looks: {coverage:.4f}; "
                    f"detected by 10,000 pairs {power:.3f} ({runs} runs)")  # fmt: skip
    assert coverage >= 0.94, f"always-valid coverage {coverage:.4f}"
    assert power > 0.9, f"power {power:.3f}"


def _first_rejection(results: Iterator[tuple[int, Comparison]]) -> int | None:
    """The units at the first look that rejects "no effect" (None: none did)."""
    for units, result in results:
        if result.p_value < ALPHA:
            return units
    return None


def _paired_looks(live: np.ndarray, shadow: np.ndarray) -> Iterator[tuple[int, Comparison]]:
    sums = np.cumsum(
        np.stack([live, shadow, live * live, shadow * shadow, live * shadow, abs(shadow - live)]),
        axis=1,
    )
    for n in range(BATCH, len(live) + 1, BATCH):
        sl, ss, sll, sss, sls, sa = (float(x) for x in sums[:, n - 1])
        stats = PairedStats(
            n=n, live_total=sl, shadow_total=ss, live_m2=sll - sl * sl / n,
            shadow_m2=sss - ss * ss / n, comoment=sls - sl * ss / n, abs_total=sa,
        )  # fmt: skip
        yield n, compare_paired(stats, alpha=ALPHA)


def _split_looks(control: np.ndarray, candidate: np.ndarray) -> Iterator[tuple[int, Comparison]]:
    """N units in halves (``control`` scored by the live model, ``candidate`` by the shadow)."""
    sums = [(np.cumsum(arm), np.cumsum(arm * arm)) for arm in (control, candidate)]
    for units in range(BATCH, 2 * len(control) + 1, BATCH):
        half = units // 2
        arms = [
            SufficientStats.from_sums(
                n=half, total=float(total[half - 1]), total_sq=float(sq[half - 1]), kind="mean"
            )
            for total, sq in sums
        ]
        yield units, compare(arms[0], arms[1], alpha=ALPHA)


@pytest.mark.slow
def test_paired_needs_fewer_units_than_a_two_sample_split(measured: list[str]) -> None:
    """Scores N(0, 1), the shadow 0.1 better, ρ = 0.8; a look every 100 units, up to 20,000.

    Paired: every unit scored by both models (var_d = 2(1 − ρ) = 0.4). Two-sample: other
    units split in halves, each scored by one model (``compare``: V·N = 4·1 = 4). Over 40 runs
    the medians were 500 units paired and 3,350 two-sample, 6.7 times fewer (the variance ratio
    is 10; the always-valid boundary is relatively wider at the paired design's small N, see
    benchmarks/RESULTS.md): the test asks for at least 4.
    """
    rng = np.random.default_rng(4242)
    runs, cap, effect = 40, 20_000, 0.1
    paired, split = [], []
    for _ in range(runs):
        live, shadow = _normal_pairs(rng, (cap,), 0.8, effect)
        paired.append(_first_rejection(_paired_looks(live, shadow)))
        control = rng.standard_normal(cap // 2)
        candidate = rng.standard_normal(cap // 2) + effect
        split.append(_first_rejection(_split_looks(control, candidate)))
    assert None not in paired, paired
    paired_median = float(np.median([n for n in paired if n is not None]))
    split_median = float(np.median([math.inf if n is None else n for n in split]))
    measured.append(f"units to detect +0.1 sd at ρ=0.8 (median of {runs} runs): paired "
                    f"{paired_median:,.0f}, two-sample split {split_median:,.0f}")  # fmt: skip
    assert split_median >= 4 * paired_median, (paired_median, split_median)

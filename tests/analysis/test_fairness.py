"""Cohort effects, the worst cohort, gap changes, selection-rate parity and bands."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from rollwise.analysis import (
    SufficientStats,
    always_valid,
    band_labels,
    bands,
    cohort_effects,
    compare,
    gap_change,
    parity_change,
    selection_parity,
    verdict,
)

B = SufficientStats.binary

STATS = {
    "DE": (B(1000, 100), B(1000, 150)),
    "FR": (B(2000, 200), B(2000, 210)),
    "IT": (B(500, 50), B(500, 55)),
}


def test_cohort_effects_are_corrected_for_the_number_of_cohorts() -> None:
    result = cohort_effects(STATS, alpha=0.05)
    assert result.k == 3
    assert result.cohort_alpha == pytest.approx(0.05 / 3)
    for cohort, (ctrl, cand) in STATS.items():
        assert result.effects[cohort] == compare(ctrl, cand, alpha=0.05 / 3)
    # the Bonferroni interval is wider than the uncorrected one
    uncorrected = compare(*STATS["DE"], alpha=0.05)
    assert result.effects["DE"].ci_low < uncorrected.ci_low


def test_gap_change_by_hand() -> None:
    """DE against FR+IT: (0.15 − 0.10) − (265/2500 − 250/2500) = 0.05 − 0.006 = 0.044."""
    result = cohort_effects(STATS, alpha=0.05)
    gap = result.gaps["DE"]
    assert gap.effect == pytest.approx(0.044, abs=1e-15)
    assert gap.control_mean == pytest.approx(0.0, abs=1e-15)  # 0.10 − 250/2500
    assert gap.candidate_mean == pytest.approx(0.044, abs=1e-15)  # 0.15 − 265/2500
    # the four arms' variances of the means
    variance = 0.1 * 0.9 / 1000 + 0.15 * 0.85 / 1000 + 0.1 * 0.9 / 2500 + 0.106 * 0.894 / 2500
    assert gap.se == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert (gap.n_control, gap.n_candidate) == (3500, 3500)
    expected = always_valid(0.044, variance, 7000, alpha=0.05 / 3)
    assert gap.ci_low == pytest.approx(expected.ci_low, rel=1e-12)
    assert gap.ci_high == pytest.approx(expected.ci_high, rel=1e-12)
    assert gap.p_value == pytest.approx(expected.p_value, rel=1e-12)
    # the public two-part function gives the same
    rest = (B(2500, 250), B(2500, 265))
    assert gap_change(STATS["DE"], rest, alpha=0.05 / 3) == gap
    # the gaps of two cohorts are mirror images
    two = cohort_effects({"a": STATS["DE"], "b": STATS["FR"]})
    assert two.gaps["a"].effect == pytest.approx(-two.gaps["b"].effect)


def test_fixed_horizon_gap_is_a_wald_interval() -> None:
    result = cohort_effects(STATS, alpha=0.05, sequential=False)
    gap = result.gaps["DE"]
    z = NormalDist().inv_cdf(1 - 0.05 / 3 / 2)
    assert gap.ci_high - gap.effect == pytest.approx(z * gap.se, rel=1e-12)
    assert gap.p_value == pytest.approx(2 * (1 - NormalDist().cdf(gap.effect / gap.se)), rel=1e-6)
    assert gap.method == "wald-z gap change"


def test_worst_cohort_follows_the_harm_direction() -> None:
    up = cohort_effects(STATS, harm_direction="increase")
    assert up.worst == "DE"
    assert up.worst_effect is up.effects["DE"]
    assert up.largest_gap == "DE"
    down = cohort_effects(STATS, harm_direction="decrease")
    assert down.worst == "FR"  # the smallest increase: the worst when higher is better
    big = cohort_effects({"DE": (B(20_000, 2000), B(20_000, 3000)), "FR": STATS["FR"]})
    assert verdict(big.effects["DE"], harm_direction="increase") == "harm"
    assert verdict(big.gaps["DE"], harm_direction="increase") == "harm"


def test_relative_effects_with_relative_gaps() -> None:
    rel = cohort_effects(STATS, relative=True)
    assert rel.effects["DE"].relative
    assert rel.effects["DE"].effect == pytest.approx(0.5)
    rest_control = STATS["FR"][0] + STATS["IT"][0]
    rest_candidate = STATS["FR"][1] + STATS["IT"][1]
    rest = rest_candidate.mean / rest_control.mean - 1
    assert rel.gaps["DE"].effect == pytest.approx(0.5 - rest)  # r_DE − r_rest
    assert rel.gaps["DE"].relative
    absolute = cohort_effects(STATS)
    assert absolute.gaps["DE"].effect == pytest.approx(0.044)  # Δ_DE − Δ_rest
    assert not absolute.gaps["DE"].relative


def test_a_uniform_relative_change_is_no_relative_gap() -> None:
    baselines = {"a": 0.02, "b": 0.1, "c": 0.3}
    n = 100_000
    stats = {
        c: (B(n, round(n * p)), B(n, round(n * p * 0.7))) for c, p in baselines.items()
    }  # the candidate 30% lower in every cohort
    rel = cohort_effects(stats, relative=True)
    assert all(abs(g.effect) < 1e-3 for g in rel.gaps.values())
    absolute = cohort_effects(stats)
    assert absolute.gaps["a"].effect > 0.05  # in absolute terms the small cohort "lags"


def test_cohort_without_candidate_units_is_insufficient() -> None:
    stats = {**STATS, "XX": (B(40, 4), B(0, 0))}
    result = cohort_effects(stats)
    assert result.k == 4
    assert result.cohort_alpha == pytest.approx(0.05 / 4)
    assert result.insufficient == ("XX",)
    for estimate in (result.effects["XX"], result.gaps["XX"]):
        assert estimate.insufficient
        assert verdict(estimate, harm_direction="increase") == "insufficient data"
        assert not math.isnan(estimate.effect)
    assert result.worst == "DE"
    assert not result.gaps["DE"].insufficient


def test_no_usable_cohort_and_a_single_cohort() -> None:
    empty = cohort_effects({"a": (B(0, 0), B(0, 0)), "b": (B(1, 1), B(5, 1))})
    assert empty.worst is None
    assert empty.worst_effect is None
    assert empty.largest_gap is None
    single = cohort_effects({"only": STATS["DE"]})
    assert not single.effects["only"].insufficient
    assert single.gaps["only"].insufficient
    assert single.gaps["only"].note == "no other cohort"
    assert cohort_effects({}).k == 0


# --- selection-rate parity (fairlearn's definitions, values computed by hand) ---

GROUPS = np.array(list("AAAABBBBCCCCC"))
CONTROL_DECISIONS = np.array([1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0])
# fairlearn MetricFrame(metrics=selection_rate, y_true=…, y_pred=…, sensitive_features=…):
#   by_group: A 3/4 = 0.75, B 1/4 = 0.25, C 3/5 = 0.6
#   demographic_parity_difference = 0.75 − 0.25 = 0.5
#   demographic_parity_ratio      = 0.25 / 0.75 = 1/3  (< 0.8: four-fifths rule violated)
CANDIDATE_GROUPS = np.array(list("AAAAABBBBBBBBCC"))
CANDIDATE_DECISIONS = np.array([1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0])
#   by_group: A 2/5 = 0.4, B 4/8 = 0.5, C 1/2 = 0.5
#   difference = 0.5 − 0.4 = 0.1, ratio = 0.4 / 0.5 = 0.8 (not below 0.8: not violated)


def _by_cohort(groups: np.ndarray, decisions: np.ndarray) -> dict[str, SufficientStats]:
    return {
        str(g): SufficientStats.from_values(decisions[groups == g], kind="binary")
        for g in np.unique(groups)
    }


def test_selection_parity_matches_fairlearn_definitions() -> None:
    parity = selection_parity(_by_cohort(GROUPS, CONTROL_DECISIONS))
    assert parity.rates == pytest.approx({"A": 0.75, "B": 0.25, "C": 0.6})
    assert parity.n == {"A": 4, "B": 4, "C": 5}
    assert parity.difference == pytest.approx(0.5)
    assert parity.ratio == pytest.approx(1 / 3)
    assert parity.four_fifths_violated
    assert not parity.insufficient


def test_parity_under_control_and_candidate() -> None:
    ctrl = _by_cohort(GROUPS, CONTROL_DECISIONS)
    cand = _by_cohort(CANDIDATE_GROUPS, CANDIDATE_DECISIONS)
    before, after = parity_change({g: (ctrl[g], cand[g]) for g in ctrl})
    assert before.ratio == pytest.approx(1 / 3)
    assert after.rates == pytest.approx({"A": 0.4, "B": 0.5, "C": 0.5})
    assert after.difference == pytest.approx(0.1)
    assert after.ratio == 0.8
    assert not after.four_fifths_violated


def test_parity_edge_cases() -> None:
    with_empty = selection_parity({"A": B(10, 5), "B": B(0, 0), "C": B(10, 2)})
    assert with_empty.excluded == ("B",)  # fairlearn never sees a group without rows
    assert with_empty.ratio == pytest.approx(0.4)
    one = selection_parity({"A": B(10, 5), "B": B(0, 0)})
    assert one.insufficient
    assert math.isnan(one.difference)
    assert not one.four_fifths_violated
    nobody = selection_parity({"A": B(10, 0), "B": B(20, 0)})
    assert nobody.difference == 0.0
    assert math.isnan(nobody.ratio)  # 0/0, as fairlearn's ratio
    assert not nobody.four_fifths_violated
    with pytest.raises(ValueError, match="binary"):
        selection_parity({"A": SufficientStats(n=3, total=3.0, m2=2.0, kind="mean")})


# --- bands ---


def test_bands_label_half_open_intervals() -> None:
    values = [-5.0, 0, 99.99, 100, 999, 1000, 5e6, math.nan]
    assert bands(values, [0, 100, 1000]) == [
        "(-inf, 0)",
        "[0, 100)",
        "[0, 100)",
        "[100, 1000)",
        "[100, 1000)",
        "[1000, inf)",
        "[1000, inf)",
        "missing",
    ]
    assert band_labels([0, 2.5, 1e6]) == [
        "(-inf, 0)",
        "[0, 2.5)",
        "[2.5, 1000000)",
        "[1000000, inf)",
        "missing",
    ]


def test_bands_take_arrays_series_and_iterators() -> None:
    amounts = np.array([5.0, 150.0, 20_000.0])
    expected = ["[0, 100)", "[100, 10000)", "[10000, inf)"]
    assert bands(amounts, [0, 100, 10_000]) == expected
    assert bands(pd.Series(amounts), [0, 100, 10_000]) == expected
    assert bands(iter(amounts.tolist()), [0, 100, 10_000]) == expected
    frame = pd.DataFrame({"amount": amounts})
    frame["band"] = pd.Categorical(
        bands(frame["amount"], [0, 100, 10_000]), categories=band_labels([0, 100, 10_000])
    )
    assert list(frame["band"].cat.codes) == [1, 2, 3]


@pytest.mark.parametrize("edges", [[], [0, 0], [100, 10], [0, math.inf]])
def test_bands_reject_bad_edges(edges: list[float]) -> None:
    with pytest.raises(ValueError, match="edge"):
        bands([1.0], edges)

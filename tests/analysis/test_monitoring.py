"""Decay and drift detection (``rollwise.analysis.monitoring``), checked by simulation with
fixed seeds: the false-alarm rate over 30 days of checks every 10 minutes, how soon a 10%
relative decay of a binary metric is seen at stated traffic, overall and in one cohort, and
that one bad batch (a glitch) is not a regression."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollwise.analysis.monitoring import (
    Cusum,
    cusum_threshold,
    decay_score,
    first_alarms,
    mix_score,
    simulate_decay,
)
from rollwise.analysis.suffstats import SufficientStats

MONTH = 30 * 144
"""Checks in 30 days at one check per 10 minutes."""
TRAFFIC = {"rate": 0.2, "units_per_check": 2000, "baseline_units": 2_000_000}
"""A binary metric at 20%, 12,000 units an hour (2,000 a check), a baseline of a week."""
COUNTRIES = {"DE": 0.3, "FR": 0.3, "NL": 0.2, "ES": 0.2}


def test_the_threshold_grows_with_the_horizon_and_the_streams() -> None:
    one = cusum_threshold(MONTH)
    assert cusum_threshold(MONTH, streams=5) > one > cusum_threshold(144)
    assert cusum_threshold(MONTH, alpha=0.01) > one
    for bad in ({"checks": 0}, {"checks": 10, "alpha": 1.0}, {"checks": 10, "streams": 0},
                {"checks": 10, "k": 0.0}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad)) if len(bad) == 1 else None):
            cusum_threshold(**bad)  # type: ignore[arg-type]


def test_standard_normal_scores_false_alarm_at_most_alpha_in_a_month() -> None:
    """Siegmund's approximation sets h: the rate reached is measured, not assumed."""
    rng = np.random.default_rng(0)
    for streams in (1, 5):
        h = cusum_threshold(MONTH, alpha=0.05, streams=streams)
        first, _ = first_alarms(
            (rng.standard_normal((1000, streams)) for _ in range(MONTH)), threshold=h,
            persistence=1,
        )  # fmt: skip
        rate = float((first >= 0).mean())
        assert 0.02 < rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 1000), (streams, rate)


def test_no_change_false_alarms_at_most_5_percent_per_30_days() -> None:
    """400 monitors of a binary metric and its 4 countries (5 streams), 4,320 checks each."""
    result = simulate_decay(**TRAFFIC, checks=MONTH, shares=COUNTRIES, runs=400, seed=1)
    assert result.false_alarms <= 0.05  # measured 0.0225 (SE 0.007)


def test_a_10_percent_decay_is_seen_within_two_hours() -> None:
    """0.20 → 0.18 everywhere from check 720 (day 5): seen by 95% of monitors within 12
    checks; measured median 6 checks (1 h), p95 9, max 10."""
    result = simulate_decay(**TRAFFIC, checks=1440, shares=COUNTRIES, runs=200, seed=2,
                            relative_decay=0.10, start=720)  # fmt: skip
    assert result.detected >= 0.95
    p95 = result.delay_quantile(0.95)
    assert p95 is not None
    assert p95 <= 12
    assert max(result.named, key=result.named.__getitem__) == "overall"


def test_a_decay_in_one_country_is_seen_and_named() -> None:
    """0.20 → 0.18 in NL only (20% of traffic, 2,400 units an hour): seen by 95% of monitors
    within 8 hours and named NL; measured median 19 checks (3.2 h), p95 41 (6.8 h)."""
    result = simulate_decay(**TRAFFIC, checks=1440, shares=COUNTRIES, runs=200, seed=3,
                            relative_decay=0.10, start=720, decayed="NL")  # fmt: skip
    assert result.detected >= 0.95
    p95 = result.delay_quantile(0.95)
    assert p95 is not None
    assert p95 <= 48
    assert result.named.get("NL", 0) >= 0.95 * sum(result.named.values())


def test_a_decay_in_one_amount_band_is_named() -> None:
    bands = {"[0, 100)": 0.5, "[100, 500)": 0.35, "[500, inf)": 0.15}
    result = simulate_decay(**TRAFFIC, checks=1440, shares=bands, runs=100, seed=4,
                            relative_decay=0.15, start=720, decayed="[500, inf)")  # fmt: skip
    assert result.detected >= 0.95
    assert result.named.get("[500, inf)", 0) >= 0.9 * sum(result.named.values())


def test_a_glitch_is_not_a_regression_but_an_outage_is() -> None:
    h = cusum_threshold(MONTH)
    detector = Cusum(h)
    readings = [detector.update(z) for z in [0.0] * 10 + [60.0] + [0.0] * 10]
    assert not any(r.fired for r in readings)  # one terrible batch adds at most cap − k
    assert max(r.statistic for r in readings) == pytest.approx(3.5)
    outage = Cusum(h)
    fired = [outage.update(60.0).fired for _ in range(math.ceil(h / 3.5) + 1)]
    assert fired == [False] * math.ceil(h / 3.5) + [True]  # crossed, then held one more check
    assert outage.statistic == 0.0  # restarted after firing
    assert outage.update(None).statistic == 0.0  # a check without data changes nothing


def test_the_detector_and_the_simulation_share_one_recursion() -> None:
    rng = np.random.default_rng(5)
    paths = rng.normal(0.6, 1.0, size=(50, 400))
    first, _ = first_alarms((paths[:, [c]] for c in range(400)), threshold=6.0)
    for path, expected in zip(paths, first, strict=True):
        detector = Cusum(6.0)
        fired = [i for i, z in enumerate(path) if detector.update(float(z)).fired]
        assert (fired[0] if fired else -1) == expected


def test_decay_scores_are_standard_errors_towards_harm() -> None:
    base = SufficientStats.binary(100_000, 20_000)
    worse = SufficientStats.binary(2_000, 360)
    z = decay_score(base, worse, harm="decrease")
    se = math.sqrt(0.16 * (1 / 100_000 + 1 / 2_000) * 100_000 / 99_999)
    assert z == pytest.approx(0.02 / se, rel=1e-3)
    assert decay_score(base, worse, harm="increase") == pytest.approx(-z)  # type: ignore[operator]
    tolerated = decay_score(base, worse, harm="decrease", tolerance=0.1, relative=True)
    assert tolerated == pytest.approx(0.0, abs=1e-9)  # a 10% fall tolerated: 0.02 of 0.2
    assert decay_score(base, SufficientStats.binary(1, 1), harm="decrease") is None


def test_mix_scores_are_standard_normal_without_drift_and_large_with_it() -> None:
    rng = np.random.default_rng(6)
    shares = np.array(list(COUNTRIES.values()))
    baseline = {c: 1_000_000 * s for c, s in COUNTRIES.items()}
    scores = [
        mix_score(baseline, dict(zip(COUNTRIES, rng.multinomial(2000, shares), strict=True)))
        for _ in range(3000)
    ]
    values = np.array(scores, dtype=float)
    assert abs(values.mean()) < 0.1  # measured −0.02
    assert 0.9 < values.std() < 1.1
    assert (values > 1.645).mean() == pytest.approx(0.05, abs=0.015)
    shifted = {"DE": 0.25, "FR": 0.25, "NL": 0.3, "ES": 0.2}
    drift = mix_score(baseline, {c: 2000 * s for c, s in shifted.items()})
    assert drift is not None
    assert drift > 5
    assert mix_score(baseline, {"DE": 0.0}) is None  # an empty batch
    assert mix_score({}, {"DE": 10.0, "FR": 10.0}) is None  # an empty baseline
    new_value = mix_score(baseline, {**{c: 2000 * s for c, s in COUNTRIES.items()}, "US": 300})
    assert new_value is not None
    assert new_value > 5


def test_a_small_baseline_is_no_drift() -> None:
    """The baseline's own noise counts (a small holdout's mix is not exact): 300 units against
    2,000 from the same mix stay standard normal."""
    rng = np.random.default_rng(7)
    shares = np.array(list(COUNTRIES.values()))
    values = np.array([
        mix_score(dict(zip(COUNTRIES, rng.multinomial(300, shares), strict=True)),
                  dict(zip(COUNTRIES, rng.multinomial(2000, shares), strict=True)))
        for _ in range(3000)
    ], dtype=float)  # fmt: skip
    assert abs(values.mean()) < 0.1
    assert 0.9 < values.std() < 1.1
    h = cusum_threshold(200)
    first, _ = first_alarms((values[i * 200 : (i + 1) * 200, None] for i in range(15)),
                            threshold=h)  # fmt: skip
    assert (first >= 0).sum() <= 1  # 200 monitors, 15 checks: no false alarm to speak of

"""Full-jitter backoff: uniform in [0, min(cap, base * 2**attempt)], never overflowing."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollwise.backoff import Backoff, backoff_delay
from rollwise.errors import ConfigurationError


def top() -> float:
    """The largest value ``random.random`` can return."""
    return math.nextafter(1.0, 0.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (7, 30.0), (60, 30.0)],
)
def test_the_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff_delay(attempt, rng=lambda: 0.0) == 0.0
    assert backoff_delay(attempt, rng=lambda: 0.5) == ceiling / 2
    assert backoff_delay(attempt, rng=top) == pytest.approx(ceiling)
    assert backoff_delay(attempt, rng=top) < ceiling


def test_base_and_cap_are_honoured() -> None:
    assert backoff_delay(0, base=2.0, cap=100.0, rng=lambda: 0.5) == 1.0
    assert backoff_delay(4, base=2.0, cap=100.0, rng=lambda: 0.5) == 16.0
    assert backoff_delay(9, base=2.0, cap=100.0, rng=lambda: 0.5) == 50.0
    assert backoff_delay(3, base=0.0, rng=lambda: 0.5) == 0.0
    assert backoff_delay(3, cap=0.0, rng=lambda: 0.5) == 0.0


def test_a_misbehaving_rng_cannot_exceed_the_ceiling() -> None:
    assert backoff_delay(1, rng=lambda: 1.0) == 1.0
    assert backoff_delay(100, rng=lambda: 7.0) == 30.0


@pytest.mark.parametrize("attempt", [1023, 1024, 1075, 10_000, 2**63, 10**100])
def test_huge_attempt_numbers_do_not_overflow(attempt: int) -> None:
    assert backoff_delay(attempt, rng=lambda: 0.5) == 15.0
    assert backoff_delay(attempt, base=1e-300, cap=5.0, rng=top) == pytest.approx(5.0)


def test_a_tiny_base_reaches_the_cap_eventually() -> None:
    assert backoff_delay(10, base=1e-300, rng=lambda: 0.5) == pytest.approx(0.5e-300 * 1024)
    assert backoff_delay(2000, base=1e-300, rng=lambda: 0.5) == 15.0


@given(
    attempt=st.integers(min_value=0, max_value=5000),
    base=st.floats(min_value=0, max_value=1e6),
    cap=st.floats(min_value=0, max_value=1e6),
    u=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_the_delay_is_always_within_bounds(attempt: int, base: float, cap: float, u: float) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, rng=lambda: u)
    assert 0 <= delay <= min(Fraction(cap), Fraction(base) * 2**attempt)  # exact, no overflow


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempt": -1},
        {"attempt": 0, "base": -0.1},
        {"attempt": 0, "cap": -1.0},
        {"attempt": 0, "base": math.nan},
        {"attempt": 0, "cap": math.inf},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, float]) -> None:
    attempt = int(kwargs.pop("attempt"))
    with pytest.raises(ConfigurationError):
        backoff_delay(attempt, **kwargs)


def test_default_rng_gives_delays_in_range() -> None:
    delays = [backoff_delay(3) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1  # jittered, not constant


def test_backoff_counts_attempts_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=10.0, rng=lambda: 0.5)
    assert backoff.attempts == 0
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.attempts == 6
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next() == 0.5
    assert backoff.attempts == 1
    assert "attempts=1" in repr(backoff)


def test_backoff_keeps_going_after_very_many_failures() -> None:
    backoff = Backoff(rng=lambda: 0.5)
    backoff._attempts = 10**9  # as after a very long outage
    assert backoff.next() == 15.0
    assert backoff.attempts == 10**9 + 1


def test_backoff_uses_its_rng_and_rejects_bad_settings() -> None:
    seeded = random.Random(7)  # noqa: S311 - jitter, not cryptography
    expected = random.Random(7)  # noqa: S311
    backoff = Backoff(base=0.25, cap=8.0, rng=seeded.random)
    for attempt in range(8):
        assert backoff.next() == expected.random() * min(8.0, 0.25 * 2**attempt)
    with pytest.raises(ConfigurationError, match="cap"):
        Backoff(cap=-1)
    with pytest.raises(ConfigurationError, match="base"):
        Backoff(base=math.inf)

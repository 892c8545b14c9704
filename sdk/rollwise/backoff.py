"""Jittered exponential backoff for reconnecting to the flag server.

"Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): the delay before
retry ``attempt`` is uniform in ``[0, min(cap, base * 2**attempt)]``. Spreading retries over the
whole interval, rather than around its end, stops a fleet of SDKs that lost the server at the same
moment from reconnecting in lock-step when it comes back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from rollwise.errors import ConfigurationError

__all__ = ["Backoff", "backoff_delay"]

_RANDOM = random.Random()  # noqa: S311 - jitter and sampling, not secrets
"""The retry jitter's own generator: it never moves the global ``random`` state, which
applications (and Hypothesis, in the tests) own."""


def _check(base: float, cap: float) -> None:
    if not (math.isfinite(base) and base >= 0):
        raise ConfigurationError(f"backoff base: expected a finite number >= 0, not {base!r}")
    if not (math.isfinite(cap) and cap >= 0):
        raise ConfigurationError(f"backoff cap: expected a finite number >= 0, not {cap!r}")


def _ceiling(attempt: int, base: float, cap: float) -> float:
    """``min(cap, base * 2**attempt)`` without overflowing for any ``attempt``."""
    try:
        return min(cap, math.ldexp(base, attempt))
    except OverflowError:  # base * 2**attempt is beyond the largest float, so the cap wins
        return cap


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rng: Callable[[], float] = _RANDOM.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (0 is the first retry), with full jitter.

    ``rng`` returns a number in ``[0, 1)``; tests pass a fake one. The result never exceeds
    ``cap``, however large ``attempt`` grows (no ``OverflowError``).
    """
    if attempt < 0:
        raise ConfigurationError(f"backoff attempt: expected an integer >= 0, not {attempt!r}")
    _check(base, cap)
    ceiling = _ceiling(attempt, base, cap)
    return min(ceiling, rng() * ceiling)


class Backoff:
    """Counts consecutive failures and turns each into a delay; ``reset()`` after a success.

    Not thread-safe: each retry loop (the sync thread, the sender thread) owns its own.
    """

    def __init__(
        self,
        *,
        base: float = 0.5,
        cap: float = 30.0,
        rng: Callable[[], float] = _RANDOM.random,
    ) -> None:
        _check(base, cap)
        self._base = base
        self._cap = cap
        self._rng = rng
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """How many delays ``next()`` has handed out since construction or the last ``reset()``."""
        return self._attempts

    def next(self) -> float:
        """The delay before the next retry; each call doubles the ceiling, up to ``cap``."""
        delay = backoff_delay(self._attempts, base=self._base, cap=self._cap, rng=self._rng)
        self._attempts += 1
        return delay

    def reset(self) -> None:
        """Start over from the shortest delay (call it once a request succeeds)."""
        self._attempts = 0

    def __repr__(self) -> str:
        return f"Backoff(base={self._base!r}, cap={self._cap!r}, attempts={self._attempts})"

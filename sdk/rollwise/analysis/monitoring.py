"""Watching a model after its rollout: decay and drift, detected sequentially.

A monitor checks at a fixed interval (10 minutes, say). At each check the units of the last
interval (a *batch*) are compared with a baseline, and the comparison is a standard normal
score ``z`` under no change (positive: towards harm):

- **decay** (``decay_score``): the batch's mean of a metric against the baseline's, divided by
  the standard error of the difference (both samples' variance);
- **drift** (``mix_score``): the batch's counts over categories (the traffic mix by a cohort
  attribute, or predicted labels or score bins) against the baseline's: Pearson's chi-square
  test of homogeneity, made a standard normal score by the Wilson–Hilferty cube-root
  transform.

Each score feeds a one-sided **CUSUM** (Page 1954, *Continuous inspection schemes*,
Biometrika 41): ``S = max(0, S + min(z, cap) − k)``, which signals when ``S`` exceeds ``h``. It
is the quickest detector of a persistent shift for a given false-alarm rate (Lorden 1971;
Moustakides 1986). ``h`` is set from Siegmund's approximation of the in-control average run
length (Siegmund 1985, *Sequential Analysis*, ch. X), ARL ≈ (e^{2kb} − 2kb − 1)/(2k²) with
b = h + 1.166, so that P(a false alarm within ``checks`` checks) ≤ ``alpha / streams`` for each
of ``streams`` detectors watched together (Bonferroni); the simulations of the tests and
``benchmarks/bench_monitor.py`` measure the rate actually reached.

A **transient glitch** is told from a regression by two rules: each check adds at most
``cap − k`` (one terrible batch, an outage of ten minutes, cannot cross ``h`` alone), and the
signal must **persist**: ``S > h`` at ``persistence`` consecutive checks before it fires.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

from rollwise.analysis.suffstats import SufficientStats

__all__ = [
    "Cusum",
    "CusumReading",
    "DecaySimulation",
    "cusum_step",
    "cusum_threshold",
    "decay_score",
    "first_alarms",
    "mix_score",
    "simulate_decay",
    "standardized_change",
]

SIEGMUND = 1.166
"""Siegmund's correction of the boundary for the overshoot of a normal random walk: 2·0.583."""


def _arl(h: float, k: float) -> float:
    b = h + SIEGMUND
    x = 2.0 * k * b
    if x > 700:
        return math.inf
    return (math.exp(x) - x - 1.0) / (2.0 * k * k)


def cusum_threshold(checks: int, *, alpha: float = 0.05, streams: int = 1, k: float = 0.5) -> float:
    """The ``h`` that keeps P(a false alarm within ``checks`` checks) ≤ ``alpha / streams``
    for one CUSUM of standard normal scores with reference ``k`` (in-control run length taken
    as geometric: P ≈ 1 − exp(−checks / ARL))."""
    if checks < 1:
        raise ValueError(f"checks: must be at least 1, not {checks}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    if streams < 1:
        raise ValueError(f"streams: must be at least 1, not {streams}")
    if not 0 < k <= 5:
        raise ValueError(f"k: must be in (0, 5], not {k}")
    target = checks / -math.log1p(-alpha / streams)
    low, high = 0.0, 1.0
    while _arl(high, k) < target:
        high *= 2.0
    for _ in range(100):
        middle = (low + high) / 2.0
        if _arl(middle, k) < target:
            low = middle
        else:
            high = middle
    return high


def standardized_change(
    mean_base: Any, var_base: Any, n_base: Any, mean: Any, var: Any, n: Any, *,
    harm: Literal["increase", "decrease"], allowed: Any = 0.0,
) -> Any:  # fmt: skip
    """The change from the baseline's mean towards harm, beyond ``allowed``, in standard errors
    of the difference (both samples' variance). Arithmetic only: floats or NumPy arrays (the
    simulations run it on thousands of monitors at once)."""
    change = mean - mean_base
    towards_harm = -change if harm == "decrease" else change
    return (towards_harm - allowed) / (var_base / n_base + var / n) ** 0.5


def decay_score(
    baseline: SufficientStats,
    batch: SufficientStats,
    *,
    harm: Literal["increase", "decrease"],
    tolerance: float = 0.0,
    relative: bool = False,
) -> float | None:
    """The batch's change from the baseline in standard errors, positive towards harm beyond
    ``tolerance`` (a magnitude; ``relative``: a fraction of the baseline's mean). The standard
    error is the in-control one: the baseline's unit variance for both samples (a batch's own
    variance estimate shrinks with its mean and would inflate the scores of a binary metric's
    low batches). ``None`` when either side has fewer than 2 units or the baseline no
    variance."""
    if baseline.n < 2 or batch.n < 2:
        return None
    if not baseline.variance > 0:
        return None
    allowed = tolerance * abs(baseline.mean) if relative else tolerance
    score: float = standardized_change(  # the in-control variance (the baseline's) for both
        baseline.mean, baseline.variance, baseline.n, batch.mean, baseline.variance, batch.n,
        harm=harm, allowed=allowed,
    )  # fmt: skip
    return score


def mix_score(baseline: Mapping[str, float], batch: Mapping[str, float]) -> float | None:
    """How far the batch's counts over categories are from the baseline's, as a standard normal
    score (0 expected under no drift): Pearson's chi-square test of homogeneity of the two
    samples (the baseline's own sampling noise counted, so a small baseline is no drift), made
    normal by the Wilson–Hilferty transform. A category the baseline never saw counts as
    drift. ``None`` with fewer than 2 categories or an empty side."""
    names = [c for c in sorted({*baseline, *batch}) if baseline.get(c, 0.0) + batch.get(c, 0.0)]
    base_total = sum(baseline.get(c, 0.0) for c in names)
    total = sum(batch.get(c, 0.0) for c in names)
    if len(names) < 2 or base_total <= 0 or total <= 0:
        return None
    both = base_total + total
    chi2 = 0.0
    for name in names:
        seen = baseline.get(name, 0.0) + batch.get(name, 0.0)
        for side, observed in (
            (base_total, baseline.get(name, 0.0)),
            (total, batch.get(name, 0.0)),
        ):
            expected = side * seen / both
            chi2 += (observed - expected) ** 2 / expected
    df = len(names) - 1
    # Wilson–Hilferty: (X/df)^(1/3) is nearly normal with mean 1 − 2/(9df), var 2/(9df)
    spread = 2.0 / (9.0 * df)
    root = math.pow(chi2 / df, 1.0 / 3.0)
    return (root - (1.0 - spread)) / math.sqrt(spread)


@attrs.frozen
class CusumReading:
    """One check of a ``Cusum``: the score it took and where the statistic stands."""

    z: float | None
    statistic: float
    above: int
    """Consecutive checks with the statistic above the threshold (this one included)."""
    fired: bool


@attrs.define
class Cusum:
    """One one-sided CUSUM of standard normal scores (positive: towards harm)."""

    threshold: float
    k: float = 0.5
    cap: float = 4.0
    persistence: int = 2
    statistic: float = 0.0
    above: int = 0

    def update(self, z: float | None) -> CusumReading:
        """Take one check's score (``None``: no data this check; nothing changes)."""
        if z is not None and math.isfinite(z):
            self.statistic, self.above = cusum_step(
                self.statistic, self.above, z, threshold=self.threshold, k=self.k, cap=self.cap
            )
        fired = self.above >= self.persistence
        reading = CusumReading(z, self.statistic, self.above, fired)
        if fired:  # an alarm restarts the detector: the next one needs new evidence
            self.statistic, self.above = 0.0, 0
        return reading


def cusum_step(
    statistic: Any, above: Any, z: Any, *, threshold: float, k: float, cap: float
) -> Any:
    """One CUSUM step: the new statistic and the run of checks above ``threshold``. Floats or
    NumPy arrays (``first_alarms``); the one recursion both the server and the simulations use."""
    if isinstance(z, float | int) and isinstance(statistic, float | int):  # the server: no NumPy
        statistic = max(0.0, statistic + min(z, cap) - k)
        return statistic, above + 1 if statistic > threshold else 0
    import numpy as np

    statistic = np.maximum(0.0, statistic + np.minimum(z, cap) - k)
    return statistic, np.where(statistic > threshold, above + 1, 0)


def first_alarms(
    scores: Iterable[Any], *, threshold: float, k: float = 0.5, cap: float = 4.0,
    persistence: int = 2,
) -> tuple[Any, Any]:  # fmt: skip
    """The ``Cusum`` recursion over many simulated monitors at once: ``scores`` yields one
    array of shape (monitors, streams) per check. Returns, per monitor, the first check at
    which any stream fired (−1: none) and which stream fired first (−1: none)."""
    import numpy as np

    first: Any = None
    for check, batch in enumerate(scores):
        z = np.asarray(batch, dtype=float)
        if first is None:
            statistic, above = np.zeros(z.shape), np.zeros(z.shape, dtype=int)
            first, which = np.full(z.shape[0], -1), np.full(z.shape[0], -1)
        statistic, above = cusum_step(statistic, above, z, threshold=threshold, k=k, cap=cap)
        fired = above >= persistence
        new = fired.any(axis=1) & (first < 0)
        first[new] = check
        which[new] = fired[new].argmax(axis=1)
        statistic[fired], above[fired] = 0.0, 0
    if first is None:
        raise ValueError("scores: no check")
    return first, which


@attrs.frozen
class DecaySimulation:
    """What ``simulate_decay`` found over its simulated monitors."""

    runs: int
    checks: int
    threshold: float
    streams: tuple[str, ...]
    false_alarms: float
    """The share of monitors that fired before the decay started (all checks without one)."""
    detected: float
    """The share of monitors that fired at or after the decay's start (0 without a decay)."""
    delays: tuple[int, ...]
    """Checks from the decay's start to each detection, sorted."""
    named: Mapping[str, int]
    """How often each stream fired first, among the detections."""

    def delay_quantile(self, q: float) -> float | None:
        if not self.delays:
            return None
        return float(self.delays[min(int(q * len(self.delays)), len(self.delays) - 1)])


def simulate_decay(
    *, rate: float, units_per_check: int, checks: int, baseline_units: int,
    relative_decay: float = 0.0, start: int | None = None,
    shares: Mapping[str, float] | None = None, decayed: str | None = None, runs: int = 200,
    alpha: float = 0.05, k: float = 0.5, cap: float = 4.0, persistence: int = 2, seed: int = 0,
) -> DecaySimulation:  # fmt: skip
    """Monitors of a binary metric at ``rate``, by simulation: ``units_per_check`` units a
    check (split over cohorts by ``shares``), a baseline of ``baseline_units``, and from check
    ``start`` on a ``relative_decay`` of the rate (in the ``decayed`` cohort only, if named).
    Streams: overall and each cohort, their false-alarm budget shared (``cusum_threshold``).
    For planning a monitor (how soon would it see a decay at this traffic?) and for checking
    the detector: the tests and ``benchmarks/bench_monitor.py`` run it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cohorts = dict(shares or {})
    names = ("overall", *cohorts)
    weights = np.array(list(cohorts.values()) or [1.0])
    weights = weights / weights.sum()
    threshold = cusum_threshold(checks, alpha=alpha, streams=len(names), k=k)
    begin = checks if start is None or not relative_decay else start

    def rates(check: int) -> Any:
        out = np.full(len(weights), rate)
        if check >= begin:
            hit = [list(cohorts).index(decayed)] if decayed else slice(None)
            out[hit] = rate * (1.0 - relative_decay)
        return out

    base_n = np.maximum(rng.multinomial(baseline_units, weights, size=runs), 2)
    base_hits = rng.binomial(base_n, rate)

    def stream_stats(hits: Any, n: Any) -> tuple[Any, Any, Any]:
        """Per stream (overall first, then cohorts): means, variances, units."""
        if cohorts:
            hits = np.concatenate([hits.sum(axis=1, keepdims=True), hits], axis=1)
            n = np.concatenate([n.sum(axis=1, keepdims=True), n], axis=1)
        n = np.maximum(n, 2)
        mean = hits / n
        return mean, np.maximum(mean * (1.0 - mean), 1e-12), n

    base_mean, base_var, base_units = stream_stats(base_hits, base_n)

    def scores() -> Iterator[Any]:
        for check in range(checks):
            n = rng.multinomial(units_per_check, weights, size=runs)
            mean, _, units = stream_stats(rng.binomial(n, rates(check)), n)
            yield standardized_change(base_mean, base_var, base_units, mean, base_var, units,
                                      harm="decrease")  # as decay_score  # fmt: skip

    first, which = first_alarms(scores(), threshold=threshold, k=k, cap=cap,
                                persistence=persistence)  # fmt: skip
    early = (first >= 0) & (first < begin)
    late = first >= begin
    named = {names[i]: int((which[late] == i).sum()) for i in range(len(names))}
    return DecaySimulation(
        runs=runs, checks=checks, threshold=threshold, streams=names,
        false_alarms=float(early.mean()),
        detected=float(late.mean()) if begin < checks else 0.0,
        delays=tuple(sorted(int(d) for d in first[late] - begin)),
        named={n: c for n, c in named.items() if c},
    )  # fmt: skip

"""Sample-ratio mismatch: are the arms the sizes the split says they should be?

An SRM means the assignment or the logging is broken, and every comparison is suspect.
``srm_chi2`` is the classical one-look chi-square test (flag at p < 0.001).
``SequentialSRM`` is the sequential Dirichlet-multinomial test of Lindon & Malek, "Anytime-Valid
Inference For Multinomial Count Data" (NeurIPS 2022, section 4; Optimizely's ``ssrm``): with a
Dirichlet(concentration·weights) prior, the Bayes factor against the configured weights is

    BF = Γ(A) / Γ(A + n) · Π Γ(a_i + x_i) / Γ(a_i) / Π p_i^{x_i},   a_i = concentration·p_i,

and min(1, 1/BF), minimised over looks, is an always-valid p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SRM_THRESHOLD", "SequentialSRM", "srm_chi2", "srm_log_bayes_factor"]

SRM_THRESHOLD = 0.001


def _normalise(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights: must be non-negative with a positive total")
    return [w / total for w in weights]


def srm_chi2(counts: Sequence[int], weights: Sequence[float]) -> float:
    """The chi-square goodness-of-fit p-value of ``counts`` against ``weights`` (one look).

    Arms with zero weight are left out of the statistic, but a unit in one of them is a
    mismatch outright (p = 0, as in ``srm_log_bayes_factor``); with no units the p-value is 1.
    """
    if len(counts) != len(weights):
        raise ValueError("counts and weights: need one entry per arm")
    probabilities = _normalise(weights)
    if any(c > 0 and p == 0 for c, p in zip(counts, probabilities, strict=True)):
        return 0.0
    pairs = [(c, p) for c, p in zip(counts, probabilities, strict=True) if p > 0]
    n = sum(c for c, _ in pairs)
    if n == 0 or len(pairs) < 2:
        return 1.0
    statistic = sum((c - n * p) ** 2 / (n * p) for c, p in pairs)
    from scipy.special import chdtrc  # what scipy.stats.chi2.sf evaluates, without its overhead

    return float(chdtrc(len(pairs) - 1, statistic))


def srm_log_bayes_factor(
    counts: Sequence[int], weights: Sequence[float], concentration: float = 10_000
) -> float:
    """log BF of the Dirichlet-multinomial alternative against the configured weights."""
    probabilities = _normalise(weights)
    log_bf = 0.0
    prior_total = 0.0
    n = 0
    for count, p in zip(counts, probabilities, strict=True):
        if p == 0:
            if count:
                return math.inf  # a unit in an arm that should get none
            continue
        a = concentration * p
        prior_total += a
        n += count
        log_bf += math.lgamma(a + count) - math.lgamma(a) - count * math.log(p)
    return log_bf + math.lgamma(prior_total) - math.lgamma(prior_total + n)


class SequentialSRM:
    """Always-valid SRM monitoring across looks at cumulative counts."""

    def __init__(self, weights: Sequence[float], concentration: float = 10_000) -> None:
        self.weights = list(weights)
        self.concentration = concentration
        _normalise(self.weights)
        self.p_value = 1.0
        self.looks = 0

    def update(self, cumulative_counts: Sequence[int]) -> float:
        """The running-minimum p-value after this look."""
        if len(cumulative_counts) != len(self.weights):
            raise ValueError("cumulative_counts: need one entry per arm")
        self.looks += 1
        log_bf = srm_log_bayes_factor(cumulative_counts, self.weights, self.concentration)
        p = 0.0 if log_bf == math.inf else min(1.0, math.exp(-log_bf)) if log_bf > 0 else 1.0
        self.p_value = min(self.p_value, p)
        return self.p_value

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_THRESHOLD

"""Experiments with more than two variants: each candidate against the control, corrected.

With k candidates there are k comparisons, and looking at each at level alpha would raise the
chance of a false "better" (or "worse") to about k·alpha. ``compare_arms`` keeps the family's
error rate at alpha:

- **decisions** by Holm's step-down procedure (Holm 1979, "A simple sequentially rejective
  multiple test procedure", *Scand. J. Statist.* 6): sort the k p-values, reject the i-th
  smallest while p(i) ≤ alpha / (k − i + 1). It controls the family-wise error rate for any
  valid p-values, so also for the always-valid ones (valid at whatever look the analyst
  stops), and rejects at least what Bonferroni rejects. ``correction="bonferroni"`` rejects
  p ≤ alpha / k;
- **intervals** at alpha / k each (Bonferroni): together they cover all k true effects with
  probability ≥ 1 − alpha (Holm gives no intervals of its own);
- **sample ratio** of all k + 1 arms at once: ``srm_chi2`` against the configured weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from rollwise.analysis.compare import Comparison, compare
from rollwise.analysis.srm import srm_chi2
from rollwise.analysis.suffstats import SufficientStats

__all__ = ["MultiArmComparison", "compare_arms", "holm"]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values, in the order given: reject arm i at level alpha when its
    adjusted p-value is ≤ alpha (monotone: a smaller raw p-value never adjusts above a larger
    one's)."""
    k = len(p_values)
    order = sorted(range(k), key=lambda i: p_values[i])
    adjusted = [1.0] * k
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@attrs.frozen
class MultiArmComparison:
    """Each candidate against the control, with the family corrected."""

    comparisons: Mapping[str, Comparison]
    """Each candidate's comparison, its interval at alpha / k."""
    adjusted_p_values: Mapping[str, float]
    """Holm's (or Bonferroni's) adjusted p-values: a candidate differs when ≤ alpha."""
    differs: Mapping[str, bool]
    """Whether each candidate is shown to differ from the control, the family at alpha."""
    alpha: float
    correction: str
    srm_p_value: float | None
    """All k + 1 arms against the weights (``None`` without weights)."""


def compare_arms(
    control: SufficientStats,
    candidates: Mapping[str, SufficientStats],
    *,
    alpha: float = 0.05,
    correction: Literal["holm", "bonferroni"] = "holm",
    weights: Mapping[str, float] | None = None,
    control_name: str = "control",
    sequential: bool = True,
    relative: bool = False,
    tuning: float = 5000,
) -> MultiArmComparison:
    """Every candidate in ``candidates`` against ``control`` (one metric, one look).

    ``weights`` (the configured split, by arm name, the control as ``control_name``) adds the
    SRM check of all arms at once."""
    if not candidates:
        raise ValueError("candidates: need at least one candidate arm")
    if correction not in ("holm", "bonferroni"):
        raise ValueError(f"correction: 'holm' or 'bonferroni', not {correction!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    k = len(candidates)
    comparisons = {
        name: compare(
            control, stats, alpha=alpha / k, sequential=sequential, relative=relative, tuning=tuning
        )
        for name, stats in candidates.items()
    }
    # the always-valid p-value's mixture is tuned for the level: each is read at alpha, the
    # level the family is tested at (any valid p-value will do for Holm)
    raw = [
        compare(control, stats, alpha=alpha, sequential=sequential, relative=relative,
                tuning=tuning).p_value
        for stats in candidates.values()
    ]  # fmt: skip
    adjusted = holm(raw) if correction == "holm" else [min(1.0, k * p) for p in raw]
    by_name = dict(zip(candidates, adjusted, strict=True))
    srm = None
    if weights is not None:
        arms = [control_name, *candidates]
        missing = [a for a in arms if a not in weights]
        if missing:
            raise ValueError(f"weights: no weight for arm(s) {', '.join(missing)}")
        counts = [control.n, *(s.n for s in candidates.values())]
        srm = srm_chi2(counts, [weights[a] for a in arms])
    return MultiArmComparison(
        comparisons=comparisons, adjusted_p_values=by_name,
        differs={n: (not comparisons[n].insufficient) and p <= alpha for n, p in by_name.items()},
        alpha=alpha, correction=correction, srm_p_value=srm,
    )  # fmt: skip

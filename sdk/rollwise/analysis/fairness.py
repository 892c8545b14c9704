"""Cohorts and fairness: per-cohort effects, the worst cohort, the change in the gap, parity.

Input is one metric's statistics per cohort of one dimension (country, a transaction-size band
from ``bands``, a segment): a mapping ``cohort → (control, candidate)`` of ``SufficientStats``.

- ``cohort_effects`` compares candidate with control inside every cohort, with always-valid
  intervals at α/K for K cohorts (Bonferroni), so that all K intervals hold at once at any
  stopping time; the worst cohort's interval is therefore honest even though it was picked
  after looking. It also gives each cohort's **gap change**, the difference-in-differences of
  the cohort against the rest, (cand_c − ctrl_c) − (cand_rest − ctrl_rest) (or, on the
  relative scale, r_c − r_rest): positive when the candidate moves the cohort up more than it
  moves everyone else.
- ``selection_parity`` / ``parity_change`` read binary decisions (approve/decline) as
  selection rates, with fairlearn's definitions of the demographic-parity difference and ratio
  and the four-fifths rule flagged.

Cohorts with no units in an arm are marked insufficient, never an exception or a NaN verdict.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import pairwise
from statistics import NormalDist
from typing import Generic, Literal, TypeVar

import attrs

from rollwise.analysis.compare import Comparison, compare
from rollwise.analysis.sequential import always_valid
from rollwise.analysis.suffstats import SufficientStats

__all__ = [
    "FOUR_FIFTHS",
    "CohortEffects",
    "SelectionParity",
    "band_labels",
    "bands",
    "cohort_effects",
    "gap_change",
    "parity_change",
    "selection_parity",
]

C = TypeVar("C", bound=Hashable)  # a cohort label

FOUR_FIFTHS = 0.8
"""The four-fifths rule: a selection-rate ratio below 0.8 is read as adverse impact
(US EEOC Uniform Guidelines on Employee Selection Procedures, 29 CFR § 1607.4(D))."""


# --- per-cohort effects and gap changes ---


@attrs.frozen(kw_only=True)
class CohortEffects(Generic[C]):
    """One metric along one cohort dimension.

    ``effects[c]`` is candidate − control inside cohort ``c`` and ``gaps[c]`` the gap change of
    ``c`` against the rest, both at ``cohort_alpha`` = α/K. In a gap ``Comparison``,
    ``control_mean`` and ``candidate_mean`` are the cohort-minus-rest gaps under each arm,
    ``n_control``/``n_candidate`` count all units of the arm, and ``effect`` is their change.
    """

    alpha: float
    cohort_alpha: float
    harm_direction: Literal["increase", "decrease"]
    effects: Mapping[C, Comparison]
    gaps: Mapping[C, Comparison]
    family: int | None = None
    """The family size declared in advance (``None``: the cohorts passed in)."""

    @property
    def k(self) -> int:
        """The Bonferroni divisor K: the declared family, or the number of cohorts."""
        return self.family if self.family is not None else len(self.effects)

    @property
    def worst(self) -> C | None:
        """The cohort whose effect is furthest in the harm direction (``None``: no data)."""
        return _most_harmful(self.effects, self.harm_direction)

    @property
    def worst_effect(self) -> Comparison | None:
        worst = self.worst
        return None if worst is None else self.effects[worst]

    @property
    def largest_gap(self) -> C | None:
        """The cohort whose gap change is furthest in the harm direction."""
        return _most_harmful(self.gaps, self.harm_direction)

    @property
    def insufficient(self) -> tuple[C, ...]:
        """Cohorts without enough units in an arm for a comparison."""
        return tuple(c for c, r in self.effects.items() if r.insufficient)


def _most_harmful(
    results: Mapping[C, Comparison], harm_direction: Literal["increase", "decrease"]
) -> C | None:
    sign = 1.0 if harm_direction == "increase" else -1.0
    best: tuple[float, C] | None = None
    for cohort, result in results.items():
        if not result.insufficient and (best is None or sign * result.effect > best[0]):
            best = (sign * result.effect, cohort)
    return None if best is None else best[1]


def _insufficient_gap(
    n_control: int, n_candidate: int, alpha: float, sequential: bool, note: str
) -> Comparison:
    return Comparison(
        effect=0.0, ci_low=-math.inf, ci_high=math.inf, p_value=1.0, se=math.inf,
        control_mean=0.0, candidate_mean=0.0, n_control=n_control, n_candidate=n_candidate,
        alpha=alpha, sequential=sequential, relative=False, method="insufficient",
        insufficient=True, note=note,
    )  # fmt: skip


def gap_change(
    cohort: tuple[SufficientStats, SufficientStats],
    rest: tuple[SufficientStats, SufficientStats],
    *,
    alpha: float = 0.05,
    sequential: bool = True,
    tuning: float = 5000,
) -> Comparison:
    """The change in a cohort's gap to the rest: (cand_c − ctrl_c) − (cand_rest − ctrl_rest).

    The two-group difference-in-differences (Angrist & Pischke, "Mostly Harmless
    Econometrics", 2009, §5.2) with cohort/rest in place of before/after. Its four arms are
    independent (a unit is in one cohort and one arm), so by Bienaymé's identity its variance
    is the sum of the four arms' variances of the means: V = Var(Δ̂_c) + Var(Δ̂_rest) =
    v(ctrl_c)/n + v(cand_c)/n + v(ctrl_rest)/n + v(cand_rest)/n (each Δ̂ as in ``compare``,
    CUPED-adjusted when both arms carry a covariate). Sequential: the always-valid normal
    mixture of ``sequential.always_valid`` (Waudby-Smith et al. 2024, Theorem 2.2; the
    half-width and e-value of the module docstring) with that V and N = the units of all four
    arms; fixed horizon: the Wald interval Δ̂ ± z_{1−α/2}·√V, p = erfc(|Δ̂|/√(2V)). Always on
    the absolute scale.
    """
    inside = compare(*cohort, alpha=alpha, sequential=sequential, tuning=tuning)
    outside = compare(*rest, alpha=alpha, sequential=sequential, tuning=tuning)
    return _gap(inside, outside, alpha=alpha, sequential=sequential, tuning=tuning)


def _gap(
    inside: Comparison, outside: Comparison, *, alpha: float, sequential: bool, tuning: float
) -> Comparison:
    """``gap_change`` from the two absolute comparisons (cohort, rest)."""
    n_control = inside.n_control + outside.n_control
    n_candidate = inside.n_candidate + outside.n_candidate
    for part, where in ((inside, "the cohort"), (outside, "the rest")):
        if part.insufficient:
            return _insufficient_gap(
                n_control, n_candidate, alpha, sequential, f"{where}: {part.note}"
            )
    effect = inside.effect - outside.effect
    variance = inside.se**2 + outside.se**2
    if sequential:
        av = always_valid(effect, variance, n_control + n_candidate, alpha=alpha, tuning=tuning)
        low, high, p, method = av.ci_low, av.ci_high, av.p_value, "mixture-sprt gap change"
    else:
        se = math.sqrt(variance)
        half = NormalDist().inv_cdf(1.0 - alpha / 2.0) * se
        low, high, p = effect - half, effect + half, math.erfc(abs(effect) / se / math.sqrt(2.0))
        method = "wald-z gap change"
    return Comparison(
        effect=effect, ci_low=low, ci_high=high, p_value=p, se=math.sqrt(variance),
        control_mean=inside.control_mean - outside.control_mean,
        candidate_mean=inside.candidate_mean - outside.candidate_mean,
        n_control=n_control, n_candidate=n_candidate, alpha=alpha, sequential=sequential,
        relative=inside.relative and outside.relative, method=method,
    )  # fmt: skip


def cohort_effects(
    stats: Mapping[C, tuple[SufficientStats, SufficientStats]],
    *,
    alpha: float = 0.05,
    harm_direction: Literal["increase", "decrease"] = "increase",
    relative: bool = False,
    sequential: bool = True,
    tuning: float = 5000,
    family: int | None = None,
) -> CohortEffects[C]:
    """Per-cohort effects and gap changes of one metric, corrected for the number of cohorts.

    Every interval is computed at α/K with K = ``family`` or ``len(stats)`` (Bonferroni; Dunn,
    "Multiple Comparisons Among Means", JASA 56(293), 1961: P(∪ Aᵢ) ≤ Σ P(Aᵢ) = K·α/K), so
    the K effects (and, separately, the K gap changes) are simultaneously valid. Pass
    ``family`` (the number of cohorts declared in advance) to keep K fixed across looks while
    cohorts appear. ``relative`` applies to the effects and to the gap changes: with it the gap
    change is r_c − r_rest, the cohort's relative effect minus the rest's (each by the delta
    method), so a uniform relative change has no gap; without it, Δ_c − Δ_rest. ``tuning`` is
    the mixture's N* as in ``compare`` (for the gaps N counts all units, for a cohort its own).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, not {alpha}")
    if family is not None and family < len(stats):
        raise ValueError(f"family: {family} is fewer than the {len(stats)} cohorts passed")
    k = max(family or len(stats), 1)
    cohort_alpha = alpha / k
    effects: dict[C, Comparison] = {}
    gaps: dict[C, Comparison] = {}
    for cohort, (control, candidate) in stats.items():
        effects[cohort] = compare(
            control, candidate, alpha=cohort_alpha, sequential=sequential, relative=relative,
            tuning=tuning,
        )  # fmt: skip
    items = list(stats.items())
    rest_controls = _sums_of_the_rest([arms[0] for _, arms in items])
    rest_candidates = _sums_of_the_rest([arms[1] for _, arms in items])
    for (cohort, arms), rest_control, rest_candidate in zip(
        items, rest_controls, rest_candidates, strict=True
    ):
        if rest_control is None or rest_candidate is None:
            gaps[cohort] = _insufficient_gap(
                arms[0].n, arms[1].n, cohort_alpha, sequential, "no other cohort"
            )
            continue
        outside = compare(
            rest_control, rest_candidate, alpha=cohort_alpha, sequential=sequential,
            tuning=tuning,
        )  # fmt: skip
        inside = effects[cohort]
        if relative:  # the gap on the relative scale: a uniform relative change is no gap
            outside = compare(
                rest_control, rest_candidate, alpha=cohort_alpha, sequential=sequential,
                relative=True, tuning=tuning,
            )  # fmt: skip
        gaps[cohort] = _gap(
            inside, outside, alpha=cohort_alpha, sequential=sequential, tuning=tuning
        )
    return CohortEffects(
        alpha=alpha, cohort_alpha=cohort_alpha, harm_direction=harm_direction, effects=effects,
        gaps=gaps, family=family,
    )  # fmt: skip


def _sums_of_the_rest(parts: Sequence[SufficientStats]) -> list[SufficientStats | None]:
    """For each part, the sum of all the others (prefix + suffix sums: O(K), not O(K²))."""
    k = len(parts)
    prefix: list[SufficientStats | None] = [None] * k
    suffix: list[SufficientStats | None] = [None] * k
    for i in range(1, k):
        before = prefix[i - 1]
        prefix[i] = parts[i - 1] if before is None else before + parts[i - 1]
    for i in range(k - 2, -1, -1):
        after = suffix[i + 1]
        suffix[i] = parts[i + 1] if after is None else parts[i + 1] + after
    out: list[SufficientStats | None] = []
    for before, after in zip(prefix, suffix, strict=True):
        if before is None or after is None:
            out.append(before if after is None else after)
        else:
            out.append(before + after)
    return out


# --- selection-rate parity (binary decisions) ---


@attrs.frozen(kw_only=True)
class SelectionParity(Generic[C]):
    """Selection rates of one arm across cohorts and their demographic-parity summaries.

    ``difference`` = max − min and ``ratio`` = min / max of the cohorts' selection rates, as
    fairlearn's ``demographic_parity_difference`` / ``demographic_parity_ratio``
    (``MetricFrame(metrics=selection_rate, ...).difference()/.ratio()``, method
    ``between_groups``). Cohorts without units are left out (fairlearn never sees them) and
    listed in ``excluded``. With fewer than two cohorts the summaries are NaN and
    ``insufficient`` is set; when no cohort selects anyone the ratio is 0/0, NaN, as in
    fairlearn. ``four_fifths_violated`` is never NaN: ``ratio < 0.8``, False when undefined.
    """

    rates: Mapping[C, float]
    n: Mapping[C, int]
    difference: float
    ratio: float
    excluded: tuple[C, ...] = ()

    @property
    def insufficient(self) -> bool:
        return len(self.rates) < 2

    @property
    def four_fifths_violated(self) -> bool:
        return not math.isnan(self.ratio) and self.ratio < FOUR_FIFTHS


def selection_parity(stats: Mapping[C, SufficientStats]) -> SelectionParity[C]:
    """Selection-rate parity of one arm's decisions (binary ``SufficientStats`` per cohort).

    Selection rate of cohort a = Σ decisions / n (fairlearn ``selection_rate``,
    E[h(X) | A = a]); difference = max_a − min_a; ratio = min_a / max_a (Feldman et al.,
    "Certifying and Removing Disparate Impact", KDD 2015, Definition 1.1, taken over all pairs).
    """
    for cohort, s in stats.items():
        if s.kind != "binary":
            raise ValueError(
                f"selection_parity: cohort {cohort!r} has {s.kind} statistics, not binary decisions"
            )
    rates = {c: s.total / s.n for c, s in stats.items() if s.n > 0}
    counts = {c: s.n for c, s in stats.items() if s.n > 0}
    excluded = tuple(c for c, s in stats.items() if s.n <= 0)
    if len(rates) < 2:
        return SelectionParity(
            rates=rates, n=counts, difference=math.nan, ratio=math.nan, excluded=excluded
        )
    high, low = max(rates.values()), min(rates.values())
    ratio = low / high if high > 0 else math.nan
    return SelectionParity(
        rates=rates, n=counts, difference=high - low, ratio=ratio, excluded=excluded
    )


def parity_change(
    stats: Mapping[C, tuple[SufficientStats, SufficientStats]],
) -> tuple[SelectionParity[C], SelectionParity[C]]:
    """``selection_parity`` under control and under candidate, from ``cohort → (ctrl, cand)``."""
    control = selection_parity({c: arms[0] for c, arms in stats.items()})
    candidate = selection_parity({c: arms[1] for c, arms in stats.items()})
    return control, candidate


# --- transaction-size (or any numeric) bands ---


def _edge_label(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def band_labels(edges: Sequence[float]) -> list[str]:
    """The labels ``bands`` can return for ``edges``, in order (for an ordered categorical).

    ``"(-inf, e0)"``, ``"[e0, e1)"``, …, ``"[e_last, inf)"``, then ``"missing"`` for NaN.
    """
    points = [float(e) for e in edges]
    if not points:
        raise ValueError("edges: need at least one edge")
    if any(not math.isfinite(e) for e in points) or any(b <= a for a, b in pairwise(points)):
        raise ValueError(f"edges: must be finite and strictly increasing, not {list(edges)}")
    text = [_edge_label(e) for e in points]
    labels = [f"(-inf, {text[0]})"]
    labels += [f"[{a}, {b})" for a, b in pairwise(text)]
    labels += [f"[{text[-1]}, inf)", "missing"]
    return labels


def bands(values: Iterable[float], edges: Sequence[float]) -> list[str]:
    """Label each value with its half-open band ``[lo, hi)`` of ``edges`` (e.g. ``"[0, 100)"``).

    Values below the first edge fall in ``"(-inf, e0)"``, values at or above the last in
    ``"[e_last, inf)"``, and NaN in ``"missing"``. Vectorised with numpy for large columns.
    """
    import numpy as np

    labels = band_labels(edges)
    if hasattr(values, "__len__"):
        array = np.asarray(values, dtype=float)
    else:
        array = np.fromiter(values, dtype=float)
    index = np.searchsorted(np.asarray(edges, dtype=float), array, side="right")
    index = np.where(np.isnan(array), len(labels) - 1, index)
    table = np.asarray(labels, dtype=object)
    return [str(label) for label in table[index].ravel()]

"""Centred moments and how they merge: statistics that keep their precision at any mean.

``Σx² − (Σx)²/n`` loses a variance that is small next to the mean: Σx² of 200,000 values of
mean 1e8 is 2e21, whose rounding alone (about 2e5) is larger than the Σ(x − x̄)² ≈ 2e5 it is
meant to reveal (it gave 221.5 for a true variance of 1). Timestamps (1.7e9 s) and amounts in
cents are such metrics. So the statistics keep ``n``, ``Σx`` and the centred sums

    M2 = Σ(x − x̄)²        C = Σ(x − x̄)(y − ȳ)

which are of the size of the spread, not of the mean. They are computed in two passes (the
mean, then the deviations, less the deviations' own sum squared over n: the "corrected
two-pass" of Chan, Golub and LeVeque 1983, which cancels the first pass's rounding), and two
groups merge exactly with their pairwise update (Chan, Golub and LeVeque 1979):

    M2 = M2a + M2b + δx² · na·nb/n     C = Ca + Cb + δx·δy · na·nb/n     δ = (mean b) − (mean a)

``without`` is its inverse, a part leaving a whole: the rollout controller's tally takes the
old contribution of the units that changed out of its running moments and puts the new one
in, round after round. Each step rounds relative to M2, so the error stays that of the spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["EMPTY", "Moments", "centred", "pooled", "without"]

Moments = tuple[int, float, float, float, float, float]
"""``(n, Σx, M2x, Σy, M2y, Cxy)`` of ``n`` pairs; with one variable ``y`` is absent (zeros)."""

EMPTY: Moments = (0, 0.0, 0.0, 0.0, 0.0, 0.0)


def centred(xs: Sequence[float], ys: Sequence[float] | None = None) -> Moments:
    """The moments of ``xs`` (and of the pairs ``(x, y)`` when ``ys`` is given), two-pass."""
    n = len(xs)
    if n == 0:
        return EMPTY
    sx = math.fsum(xs)
    dx = [x - sx / n for x in xs]
    m2x = _corrected(dx, dx, n)
    if ys is None:
        return (n, sx, m2x, 0.0, 0.0, 0.0)
    if len(ys) != n:
        raise ValueError("centred: needs one y per x")
    sy = math.fsum(ys)
    dy = [y - sy / n for y in ys]
    return (n, sx, m2x, sy, _corrected(dy, dy, n), _corrected(dx, dy, n))


def _corrected(da: Sequence[float], db: Sequence[float], n: int) -> float:
    """Σ da·db − Σda·Σdb / n: the deviations' products, less the first pass's rounding."""
    product = math.fsum(a * b for a, b in zip(da, db, strict=True))
    return product - math.fsum(da) * math.fsum(db) / n


def pooled(a: Sequence[float], b: Sequence[float]) -> Moments:
    """The moments of two disjoint groups together."""
    na, sxa, m2xa, sya, m2ya, ca = a
    nb, sxb, m2xb, syb, m2yb, cb = b
    if nb == 0:
        return (int(na), sxa + sxb, m2xa, sya + syb, m2ya, ca)
    if na == 0:
        return (int(nb), sxa + sxb, m2xb, sya + syb, m2yb, cb)
    n = na + nb
    dx, dy = sxb / nb - sxa / na, syb / nb - sya / na
    weight = na * nb / n
    return (
        int(n),
        sxa + sxb,
        m2xa + m2xb + dx * dx * weight,
        sya + syb,
        m2ya + m2yb + dy * dy * weight,
        ca + cb + dx * dy * weight,
    )


def without(whole: Sequence[float], part: Sequence[float]) -> Moments:
    """The moments of ``whole`` less ``part`` (a subset of its values): ``pooled``'s inverse.

    Rounding can leave an M2 a hair below zero, or a hair above it for a single value: an M2
    is clamped to zero when the rest has fewer than two values or it comes out negative.
    """
    nw, sxw, m2xw, syw, m2yw, cw = whole
    nb, sxb, m2xb, syb, m2yb, cb = part
    n = nw - nb
    if n < 0:
        raise ValueError(f"without: the part has {nb} values, the whole only {nw}")
    if nb == 0:
        return (int(nw), sxw - sxb, m2xw, syw - syb, m2yw, cw)
    if n == 0:
        return EMPTY
    sx, sy = sxw - sxb, syw - syb
    dx, dy = sxb / nb - sx / n, syb / nb - sy / n
    weight = n * nb / nw
    m2x = m2xw - m2xb - dx * dx * weight
    m2y = m2yw - m2yb - dy * dy * weight
    c = cw - cb - dx * dy * weight
    if n == 1:
        m2x, m2y, c = 0.0, 0.0, 0.0
    return (int(n), sx, max(m2x, 0.0), sy, max(m2y, 0.0), c)

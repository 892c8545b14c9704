"""Deterministic bucketing of units into weighted variants (``docs/spec/bucketing.md``).

``h = mmh3.hash(f"{salt}:{unit}", seed=0, signed=False)`` over UTF-8; the unit gets the first
variant ``i`` with ``h < boundary_i``, where ``boundary_i = floor(cum_weight_i * 2**32 / total)``
in the declared order. Integer arithmetic only, so every language gets the same answer.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import mmh3

__all__ = ["BUCKET_SPACE", "SPEC_VERSION", "boundaries", "bucket", "choose", "hash_unit"]

SPEC_VERSION = 1
"""Version of the bucketing specification; the test vectors carry it."""

BUCKET_SPACE = 2**32


def hash_unit(salt: str, unit: str) -> int:
    """The unsigned 32-bit MurmurHash3 (x86, seed 0) of ``"{salt}:{unit}"`` in UTF-8.

    A string with no UTF-8 encoding (a lone surrogate) raises ``UnicodeEncodeError``: it is
    encoded here because ``mmh3.hash`` crashes the interpreter on such a ``str``.
    """
    return mmh3.hash(f"{salt}:{unit}".encode(), 0, False)


def boundaries(weights: Sequence[int]) -> tuple[int, ...]:
    """Cumulative weights scaled to ``2**32``: ``floor(cum_i * 2**32 / total)``.

    Weights are non-negative integers summing to between 1 and ``2**32``; the last boundary is
    always ``2**32``, so every hash falls in some variant.
    """
    total = sum(weights)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights):
        raise ValueError("weights must be non-negative integers")
    if not 1 <= total <= BUCKET_SPACE:
        raise ValueError(f"weights must sum to between 1 and 2**32, not {total}")
    out = []
    cumulative = 0
    for weight in weights:
        cumulative += weight
        out.append(cumulative * BUCKET_SPACE // total)
    return tuple(out)


def choose(h: int, bounds: Sequence[int]) -> int:
    """The index of the first boundary greater than ``h``."""
    return bisect_right(bounds, h)


def bucket(salt: str, unit: str, weights: Sequence[int]) -> int:
    """The index of the variant that ``unit`` falls in, for a split with these ``weights``."""
    return choose(hash_unit(salt, unit), boundaries(weights))

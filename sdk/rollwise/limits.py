"""The size limits of a rules document, one table for the server and the SDK.

The server refuses a write that would break one (413 or 422 naming it) and an SDK refuses a
document from a server that breaks one (it keeps its last good rules), so one careless or hostile
edit cannot make every application slow to load or slow to evaluate. They are chosen so that a
document at every limit loads in an SDK in under 100 ms and evaluates any flag in under 5 µs
(``benchmarks/bench_limits.py``); docs/spec/rules.md lists them.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Final

__all__ = [
    "MATCHES_COST",
    "MAX_ATTRIBUTE_LENGTH",
    "MAX_COHORT_ATTRIBUTES",
    "MAX_CONDITIONS",
    "MAX_CONDITION_COST",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_FLAGS",
    "MAX_OPERAND_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_PAYLOAD_DEPTH",
    "MAX_RULES",
    "MAX_SEGMENTS",
    "MAX_STRING_LENGTH",
    "MAX_VALUES",
    "MAX_VARIANTS",
    "UNBOUNDED",
    "json_depth",
    "json_size",
    "plain_name",
]

MAX_DOCUMENT_BYTES: Final = 512 * 1024
"""The largest rules document (its JSON text) an environment may have: 512 KiB. Validating a
document costs about 0.2 ms per KiB in CPython, which is what bounds its size."""
MAX_FLAGS: Final = 500
"""Flags in one environment."""
MAX_SEGMENTS: Final = 200
"""Segments in one environment."""
MAX_VARIANTS: Final = 100
"""Variants of one flag."""
MAX_COHORT_ATTRIBUTES: Final = 16
"""Cohort attributes of one flag (each exposure carries them)."""
MAX_RULES: Final = 64
"""Rules of one flag."""
MAX_CONDITIONS: Final = 32
"""Conditions of one rule or one segment."""
MAX_CONDITION_COST: Final = 64
"""What evaluating all of a flag's rules may cost: each condition counts 1 (a segment's
conditions once for every rule that uses the segment), a ``matches`` condition counts
``MATCHES_COST``. It bounds the time of the slowest evaluation of the flag."""
MATCHES_COST: Final = 16
"""A ``matches`` condition costs about as much as 16 others on an input of a few dozen
characters (``benchmarks/bench_limits.py``)."""
MAX_VALUES: Final = 10_000
"""Values in one condition's list (``in``, ``not_in``, ``starts_with``…)."""
MAX_STRING_LENGTH: Final = 1_024
"""Characters in one condition operand."""
MAX_ATTRIBUTE_LENGTH: Final = 256
"""Characters in an attribute name (conditions, ``bucket_by``, cohort attributes)."""
MAX_DESCRIPTION_LENGTH: Final = 4_096
"""Characters in a flag's or a segment's description."""
MAX_PAYLOAD_BYTES: Final = 64 * 1024
"""A variant's payload, as compact JSON."""
MAX_PAYLOAD_DEPTH: Final = 32
"""How deep a variant's payload may nest (objects and arrays)."""
MAX_OPERAND_DEPTH: Final = 8
"""How deep a condition's operand may nest (an operator this SDK does not know keeps its operand
as written, so it is bounded too)."""


UNBOUNDED: Final = sys.maxsize
"""What ``json_depth`` answers for a value that refers to itself (only Python objects can)."""
_MAX_VISITS = 1_000_000


def json_depth(value: Any, limit: int | None = None) -> int:
    """How deep ``value`` nests (objects and arrays count one level each, a scalar 0), computed
    without recursion, so a hostile value cannot exhaust the stack here. A value that contains
    itself is ``UNBOUNDED`` deep; with ``limit``, the walk stops as soon as the depth is known
    to pass it (so does a walk of more than a million containers: a Python value that shares
    one list many times over)."""
    if not isinstance(value, dict | list | tuple):
        return 0
    deepest, visits = 0, 0
    open_ids: set[int] = set()  # the containers on the path being walked
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        item, depth, leaving = stack.pop()
        if leaving:
            open_ids.discard(id(item))
            continue
        if id(item) in open_ids:
            return UNBOUNDED
        visits += 1
        deepest = max(deepest, depth)
        if limit is not None and (deepest > limit or visits > _MAX_VISITS):
            return max(deepest, limit + 1)
        open_ids.add(id(item))
        stack.append((item, depth, True))
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, dict | list | tuple))
    return deepest


_PLAIN_NAME = re.compile(r'[^"\\\x00-\x1f\x7f]+').fullmatch


def plain_name(name: str) -> bool:
    """Whether ``name`` can be a cohort attribute: without control characters, quotes or
    backslashes (the server's analysis queries cohort attributes as JSON paths, and its
    ingestion refuses other names)."""
    return _PLAIN_NAME(name) is not None


def json_size(value: Any) -> int:
    """The length in bytes of ``value`` as compact UTF-8 JSON (call after ``json_depth``)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())

"""The environment-wide limits of a rules document, checked inside the write's transaction.

A flag or segment is checked on its own by the SDK's parser (``rollwise.limits``); what one
resource cannot show is checked here against the rest of the environment: how many flags and
segments it has, what a segment edit does to the flags that use the segment, and how large the
rendered document would be. An SDK refuses a document over a limit, so the server must never
render one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rollwise import limits
from rollwise._parse import condition_cost
from rollwise_server.errors import Invalid, PayloadTooLarge

__all__ = ["DOCUMENT_OVERHEAD", "HEADROOM", "check_document_limits"]

DOCUMENT_OVERHEAD = 256
"""Bytes of the rendered document besides the resources (schema version, environment, revision),
counted generously so the bound holds for any environment key."""


HEADROOM = 16 * 1024
"""Bytes an ordinary write must leave under ``max_document_bytes``, kept for the writes that
must never be refused for size: a kill (or any write that turns a flag off) and the rollout
controller's weight changes (a few bytes each), so an environment at the limit can always be
stopped and rolled back."""


def _entry_bytes(key: str, body: str) -> int:
    return len(key.encode()) + 4 + len(body.encode())  # "key": body,


def check_document_limits(
    conn: Any,
    env: str,
    kind: str,
    key: str,
    stored: Mapping[str, Any],
    segment_costs: Mapping[str, int],
) -> None:
    """Raise ``Invalid`` (422) or ``PayloadTooLarge`` (413), naming the limit, when writing
    ``stored`` as ``kind`` ``key`` would take the environment over one. A write that turns a
    flag off may use the ``HEADROOM`` that every other write leaves."""
    others = conn.execute(
        "SELECT kind, key, body FROM resources WHERE env = ? AND kind IN ('flag', 'segment')"
        " AND archived = 0 AND NOT (kind = ? AND key = ?)",
        (env, kind, key),
    ).fetchall()
    count = 1 + sum(1 for other_kind, _, _ in others if other_kind == kind)
    limit_name = "max_flags" if kind == "flag" else "max_segments"
    limit = getattr(limits, limit_name.upper())
    if count > limit:
        raise Invalid(
            f"environment {env!r} would have {count} {kind}s, more than the limit "
            f"{limit_name} = {limit}"
        )
    body = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    size = DOCUMENT_OVERHEAD + _entry_bytes(key, body)
    size += sum(_entry_bytes(other_key, text) for _, other_key, text in others)
    stopping = kind == "flag" and stored.get("enabled") is False
    allowed = limits.MAX_DOCUMENT_BYTES - (0 if stopping else HEADROOM)
    if size > allowed:
        raise PayloadTooLarge(
            f"the rules document of environment {env!r} would be {size} bytes, more than the "
            f"limit max_document_bytes = {limits.MAX_DOCUMENT_BYTES} less {HEADROOM} bytes "
            "kept for kills and rollbacks"
            if not stopping
            else f"the rules document of environment {env!r} would be {size} bytes, more "
            f"than the limit max_document_bytes = {limits.MAX_DOCUMENT_BYTES}"
        )
    if kind == "segment":
        costs = {**segment_costs, key: condition_cost(stored.get("conditions"))}
        for other_kind, flag, text in others:
            if other_kind != "flag":
                continue
            rules = json.loads(text).get("rules") or []
            cost = sum(condition_cost(rule.get("conditions"), costs) for rule in rules)
            if cost > limits.MAX_CONDITION_COST:
                raise Invalid(
                    f"flag {flag!r} uses segment {key!r}; with this change its conditions "
                    f"would cost {cost} units, more than the limit max_condition_cost = "
                    f"{limits.MAX_CONDITION_COST}"
                )

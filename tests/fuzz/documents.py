"""Valid rules documents the fuzz tests start from: every operator, segments, splits, a schedule.

The parser fuzz mutates copies of them (one field at a time made hostile); the evaluator fuzz
evaluates them, unchanged, on hostile contexts.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

__all__ = ["ATTRIBUTES", "EXAMPLE", "KITCHEN_SINK", "base_documents", "matches_document"]

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"

ATTRIBUTES = ["a", "b", "user_id", "country", "amount"]
"""The context attributes the documents' conditions and splits read."""

_OPERANDS: list[tuple[str, dict[str, Any]]] = [
    ("in", {"values": ["DE", "FR", 7]}),
    ("not_in", {"values": ["x"]}),
    ("eq", {"value": 2.5}),
    ("neq", {"value": "DE", "case_insensitive": True}),
    ("lt", {"value": 1e308}),
    ("lte", {"value": -(2**63)}),
    ("gt", {"value": 2**64}),
    ("gte", {"value": 0}),
    ("between", {"values": [-1e308, 1e308]}),
    ("starts_with", {"value": "a"}),
    ("ends_with", {"value": "é", "case_insensitive": True}),
    ("contains", {"value": "\u0301"}),
    ("semver_eq", {"value": "1.2.3-alpha.1"}),
    ("semver_lt", {"value": "v2.0.0"}),
    ("semver_lte", {"value": "2.0.0"}),
    ("semver_gt", {"value": "0.0.1"}),
    ("semver_gte", {"value": "1.0.0"}),
    ("before", {"value": "2030-01-01T00:00:00Z"}),
    ("after", {"value": "2000-01-01"}),
    ("exists", {}),
]


def _matching(pattern: str, **options: Any) -> dict[str, Any]:
    """A flag of one ``matches`` rule (a flag of its own: a pattern costs as much as many
    conditions, ``limits.MATCHES_COST``)."""
    condition = {"attribute": "a", "operator": "matches", "value": pattern, **options}
    return {
        "version": 1,
        "variants": {"hit": {}, "miss": {}},
        "off_variant": "miss",
        "default_variant": "miss",
        "rules": [{"id": "m", "conditions": [condition], "serve": {"variant": "hit"}}],
    }


def _rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for i, (operator, operand) in enumerate(_OPERANDS):
        condition = {"attribute": ATTRIBUTES[i % 2], "operator": operator, **operand}
        rules.append({"id": f"r{i}", "conditions": [condition], "serve": {"variant": f"v{i % 3}"}})
    rules.append(
        {
            "id": "eu-split",
            "conditions": [{"segment": "eu"}, {"segment": "big", "negate": True}],
            "serve": {
                "split": [{"variant": "v0", "weight": 1}, {"variant": "v1", "weight": 2**32 - 1}],
                "bucket_by": "user_id",
            },
        }
    )
    rules.append(
        {
            "id": "everyone",
            "conditions": [],
            "serve": {
                "split": [
                    {"variant": "v0", "weight": 3},
                    {"variant": "v1", "weight": 0},
                    {"variant": "v2", "weight": 5},
                ],
                "bucket_by": "b",
            },
        }
    )
    return rules


KITCHEN_SINK: dict[str, Any] = {
    "schema_version": 1,
    "environment": "fuzz",
    "revision": 3,
    "segments": {
        "eu": {
            "description": "euro-area pilot",
            "conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR"]}],
        },
        "big": {"conditions": [{"attribute": "amount", "operator": "gte", "value": 1000}]},
    },
    "flags": {
        "sink": {
            "version": 2,
            "enabled": True,
            "salt": "sink-salt",
            "description": "every operator once",
            "variants": {
                "v0": {"payload": {"model": "m0", "weights": [0.1, 2e-300, None]}},
                "v1": {"payload": [1, "two", {"three": True}]},
                "v2": {},
            },
            "off_variant": "v0",
            "default_variant": "v2",
            "cohort_attributes": ["country", "amount"],
            "schedule": {"start": "2000-01-01T00:00:00Z", "end": None},
            "rules": _rules(),
        },
        "redos-a": _matching("^(a+)+$"),
        "redos-x": _matching("(x+x+)+y", case_insensitive=True, negate=True),
        "off": {
            "version": 1,
            "enabled": False,
            "variants": {"only": {"payload": "text"}},
            "off_variant": "only",
            "default_variant": "only",
        },
    },
}
"""Every operator (the ``matches`` patterns are catastrophic for a backtracking engine),
negation, case folding, segment references, two splits, a schedule and a disabled flag."""


def base_documents() -> list[dict[str, Any]]:
    """Fresh copies of the documents to mutate: the kitchen sink and the docs' example."""
    return [copy.deepcopy(KITCHEN_SINK), json.loads(EXAMPLE.read_text())]


def matches_document(pattern: str) -> dict[str, Any]:
    """One flag whose only rule is ``a matches pattern``."""
    condition = {"attribute": "a", "operator": "matches", "value": pattern}
    return {
        "schema_version": 1, "environment": "t", "revision": 1,
        "flags": {"f": {
            "version": 1, "variants": {"hit": {}, "miss": {}}, "off_variant": "miss",
            "default_variant": "miss",
            "rules": [{"id": "r", "conditions": [condition], "serve": {"variant": "hit"}}],
        }},
    }  # fmt: skip

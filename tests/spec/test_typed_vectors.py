"""The typed-flag vectors (docs/spec/typed-vectors.json) against this SDK: each through the
typed accessor of the asked type, through ``evaluate_value``, and (for the flag's own type)
through ``evaluate``; a type clash records no exposure. Another language's SDK checks itself
against the same file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import rollwise
from rollwise import FlagType
from rollwise.testing import capture_exposures

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT: dict[str, Any] = json.loads(
    (ROOT / "docs" / "spec" / "typed-vectors.json").read_text(encoding="utf-8")
)
ACCESSORS = {"string": "string_value", "boolean": "bool_value", "integer": "int_value",
             "float": "float_value", "json": "json_value"}  # fmt: skip
DEFAULT = object()


def _id(vector: dict[str, Any]) -> str:
    return f"{vector['flag']}-{vector['type']}-{json.dumps(vector['context'], sort_keys=True)}"


def test_the_vectors_cover_every_type_and_outcome() -> None:
    vectors = DOCUMENT["vectors"]
    assert {v["type"] for v in vectors} == set(ACCESSORS)
    assert {v["reason"] for v in vectors} == {"TARGETING_MATCH", "DEFAULT", "SPLIT", "ERROR"}
    assert {v["error_code"] for v in vectors} == {None, "TYPE_MISMATCH", "FLAG_NOT_FOUND"}
    assert {v["variant"] for v in vectors if v["flag"] == "fraud-threshold"} >= {
        "strict",
        "standard",
    }


@pytest.mark.parametrize("vector", DOCUMENT["vectors"], ids=_id)
def test_a_vector(vector: dict[str, Any]) -> None:
    client = rollwise.Client.offline(ROOT / DOCUMENT["rules"])
    kind = FlagType(vector["type"])
    expected = DEFAULT if vector["value"] is None else vector["value"]
    with capture_exposures(client) as exposures:
        value = getattr(client, ACCESSORS[vector["type"]])(
            vector["flag"], vector["context"], DEFAULT
        )
    assert rollwise.thaw(value) == expected
    assert type(rollwise.thaw(value)) is type(expected)  # 500 is no 500.0, nor 0.5 a string
    detail = client.evaluate_value(vector["flag"], vector["context"], DEFAULT, kind)
    assert detail.variant == vector["variant"]
    assert detail.reason.value == vector["reason"]
    assert (detail.error_code and detail.error_code.value) == vector["error_code"]
    if vector["reason"] == "SPLIT":
        assert [e.variant for e in exposures] == [vector["variant"]]
    else:
        assert exposures == []
    if vector["error_code"] is None:
        assert client.evaluate(vector["flag"], vector["context"]).variant == vector["variant"]

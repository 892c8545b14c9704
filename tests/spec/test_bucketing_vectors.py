"""The vendored bucketing vectors (docs/spec/bucketing-vectors.json) against this SDK.

Every vector is checked at each layer: ``hash_unit``, ``boundaries``, ``choose`` and ``bucket``,
then through the real evaluator (``Client.offline``: the generated fast path for ``variant``
and ``evaluate``, and the reference closures of ``rollwise.compiler``). The file is never
fetched: it is the committed output of ``scripts/make_bucketing_vectors.py``, and a test checks
that the script still produces it byte for byte.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rollwise
from rollwise import bucketing
from rollwise.compiler import compile_rules

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "spec" / "bucketing-vectors.json"
GENERATOR = ROOT / "scripts" / "make_bucketing_vectors.py"
FLAG = "bucketing"
UNMATCHED = "unmatched"

DOCUMENT: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
BY_GROUP: dict[str, list[dict[str, Any]]] = defaultdict(list)
for _vector in DOCUMENT["vectors"]:
    BY_GROUP[_vector["group"]].append(_vector)
GROUPS = sorted(BY_GROUP)


def _describe(vector: dict[str, Any]) -> str:
    unit = vector["unit"] if len(vector["unit"]) <= 40 else vector["unit"][:40] + "..."
    return f"salt={vector['salt']!r} unit={unit!r} weights={vector['weights']}"


def _report(failures: list[str]) -> str:
    shown = "\n  ".join(failures[:10])
    return f"{len(failures)} vector(s) disagree:\n  {shown}"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_bucketing_vectors", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the file itself ---


def test_spec_version_is_the_sdks() -> None:
    assert DOCUMENT["spec_version"] == bucketing.SPEC_VERSION


def test_the_file_is_what_the_generator_produces() -> None:
    generator = _load_generator()
    expected = generator.render(generator.build_document())
    assert VECTORS.read_text(encoding="utf-8") == expected, (
        "docs/spec/bucketing-vectors.json is out of date or edited by hand: "
        "run scripts/make_bucketing_vectors.py"
    )


def test_the_generators_reference_agrees_with_the_sdk() -> None:
    generator = _load_generator()
    generator.cross_check(DOCUMENT)
    assert generator.murmur3_x86_32(b"fraud-model:user-42") == 3197360038


def test_the_vectors_cover_what_the_spec_promises() -> None:
    vectors = DOCUMENT["vectors"]
    assert len(vectors) >= 1000
    assert set(DOCUMENT["groups"]) == set(BY_GROUP)
    assert {len(v["weights"]) for v in vectors} >= {1, 2, 3, 10}
    totals = {sum(v["weights"]) for v in vectors}
    assert {1, 2**32} <= totals
    assert any(0 in v["weights"] for v in vectors)
    tiny = [v for v in vectors if v["weights"] == [1, 9999]]
    assert {v["expected_index"] for v in tiny} == {0, 1}
    assert any(not v["unit"].isascii() for v in vectors)
    assert any(len(v["unit"].encode()) > 1000 for v in vectors)
    assert any("unit_int" in v for v in vectors)
    assert any(not v["salt"].isascii() or ":" in v["salt"] for v in vectors)
    assert len(DOCUMENT["hashes"]) >= 100
    # every arm position is exercised: not all vectors land in the first or the biggest arm
    assert len(Counter(v["expected_index"] for v in vectors)) == 10


def test_the_vectors_are_well_formed() -> None:
    keys = {"group", "salt", "unit", "weights", "variants", "hash", "expected_index"}
    keys |= {"expected_variant"}
    for v in DOCUMENT["vectors"]:
        assert keys <= set(v) <= keys | {"unit_int"}, v
        assert v["salt"], v
        assert v["unit"], v
        assert 0 <= v["hash"] < 2**32, v
        assert all(type(w) is int and w >= 0 for w in v["weights"]), v
        assert 1 <= sum(v["weights"]) <= 2**32, v
        assert len(v["variants"]) == len(set(v["variants"])) == len(v["weights"]), v
        assert v["variants"][v["expected_index"]] == v["expected_variant"], v
        assert v["weights"][v["expected_index"]] > 0, v
        if "unit_int" in v:
            assert type(v["unit_int"]) is int, v
            assert str(v["unit_int"]) == v["unit"], v
            assert abs(v["unit_int"]) < 2**53, v  # exact in every JSON parser


# --- the bucketing functions ---


def test_raw_hashes() -> None:
    failures = []
    for item in DOCUMENT["hashes"]:
        key = f"{item['salt']}:{item['unit']}".encode()
        if key.hex() != item["key_utf8_hex"]:
            failures.append(f"UTF-8 key of {item['salt']!r}, {item['unit']!r}")
        got = bucketing.hash_unit(item["salt"], item["unit"])
        if got != item["hash"]:
            failures.append(f"{item['salt']!r}, {item['unit']!r}: {got} != {item['hash']}")
    assert not failures, _report(failures)


@pytest.mark.parametrize("group", GROUPS)
def test_hash_boundaries_and_bucket(group: str) -> None:
    failures = []
    for v in BY_GROUP[group]:
        h = bucketing.hash_unit(v["salt"], v["unit"])
        bounds = bucketing.boundaries(v["weights"])
        linear = next((i for i, b in enumerate(bounds) if h < b), None)
        got = (
            h,
            bounds[-1],
            linear,
            bucketing.choose(v["hash"], bounds),
            bucketing.bucket(v["salt"], v["unit"], v["weights"]),
        )
        want = (v["hash"], 2**32, *[v["expected_index"]] * 3)
        if got != want:
            failures.append(f"{_describe(v)}: (hash, last, scan, choose, bucket) {got} != {want}")
    assert not failures, _report(failures)


# --- through the evaluator ---


def _flag_document(salt: str, weights: list[int], variants: list[str]) -> dict[str, Any]:
    split = [{"variant": n, "weight": w} for n, w in zip(variants, weights, strict=True)]
    return {
        "schema_version": 1,
        "environment": "spec",
        "revision": 1,
        "flags": {
            FLAG: {
                "version": 1,
                "salt": salt,
                "variants": {name: {} for name in [*variants, UNMATCHED]},
                "off_variant": UNMATCHED,
                "default_variant": UNMATCHED,
                "rules": [{"id": "split", "serve": {"split": split, "bucket_by": "user_id"}}],
            }
        },
    }


@pytest.mark.parametrize("group", GROUPS)
def test_the_evaluator_serves_the_expected_variant(group: str) -> None:
    # one one-flag document per distinct split (salt, weights and variant names)
    splits: dict[tuple[str, tuple[int, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
    for v in BY_GROUP[group]:
        splits.setdefault((v["salt"], tuple(v["weights"]), tuple(v["variants"])), []).append(v)
    failures = []
    for (salt, weights, variants), vectors in splits.items():
        document = _flag_document(salt, list(weights), list(variants))
        client = rollwise.Client.offline(document)
        reference = compile_rules(rollwise.RulesDocument.from_json(document)).flags[FLAG]
        for v in vectors:
            units = [v["unit"]] + ([v["unit_int"]] if "unit_int" in v else [])
            for unit in units:
                ctx = {"user_id": unit}
                assignment = client.evaluate(FLAG, ctx)
                got = (
                    client.variant(FLAG, ctx),
                    assignment.variant,
                    assignment.reason,
                    reference.evaluate(ctx).variant,
                )
                want = (*[v["expected_variant"]] * 2, rollwise.Reason.SPLIT, v["expected_variant"])
                if got != want:
                    failures.append(
                        f"{_describe(v)} as {type(unit).__name__}: (variant, evaluate, reason, "
                        f"reference) {got} != {want}"
                    )
    assert not failures, _report(failures)

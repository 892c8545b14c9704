"""Properties of bucketing (docs/spec/bucketing.md): deterministic, uniform, stable, independent.

The statistical tests use a fixed set of units, so their p-values are fixed numbers: they
cannot flake. Each comes with a check that the same test rejects a broken implementation
(a signed hash, a shifted boundary, a re-salted ramp, a shared salt, Python's ``hash()``), so
that a test which could never fail would be noticed.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import mmh3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import rollwise
from rollwise.bucketing import BUCKET_SPACE, boundaries, bucket, choose, hash_unit

ALPHA = 0.001
UNITS = tuple(f"user-{i}" for i in range(100_000))
FLAG = "bucketing"


# --- helpers ---


@functools.cache
def _hashes(salt: str) -> tuple[int, ...]:
    return tuple(hash_unit(salt, unit) for unit in UNITS)


def _counts(hashes: Sequence[int], bounds: Sequence[int]) -> list[int]:
    counter = Counter(choose(h, bounds) for h in hashes)
    return [counter[i] for i in range(len(bounds))]


def _chi_square_p(
    hashes: Sequence[int], bounds: Sequence[int], declared: Sequence[int] | None = None
) -> float:
    """Chi-square p-value of the arm counts under ``bounds`` against the exact shares of the
    ``declared`` boundaries (by default ``bounds`` themselves)."""
    observed = _counts(hashes, bounds)
    declared = bounds if declared is None else declared
    widths = [b - a for a, b in zip((0, *declared), declared, strict=False)]
    cells = [(o, len(hashes) * w / BUCKET_SPACE) for o, w in zip(observed, widths, strict=True)]
    assert all(o == 0 for o, e in cells if e == 0)
    kept = [(o, e) for o, e in cells if e > 0]
    return float(stats.chisquare([o for o, _ in kept], [e for _, e in kept]).pvalue)


def _independence_p(
    hashes_a: Sequence[int],
    bounds_a: Sequence[int],
    hashes_b: Sequence[int],
    bounds_b: Sequence[int],
) -> float:
    table = [[0] * len(bounds_b) for _ in bounds_a]
    for ha, hb in zip(hashes_a, hashes_b, strict=True):
        table[choose(ha, bounds_a)][choose(hb, bounds_b)] += 1
    return float(stats.chi2_contingency(table).pvalue)


def _document(salt: str, weights: Sequence[int], variants: Sequence[str]) -> dict[str, Any]:
    """One flag: a split bucketed by ``user_id``, then a fallback rule serving ``fallback``."""
    split = [{"variant": v, "weight": w} for v, w in zip(variants, weights, strict=True)]
    return {
        "schema_version": 1,
        "environment": "test",
        "revision": 1,
        "flags": {
            FLAG: {
                "version": 1,
                "salt": salt,
                "variants": {name: {} for name in [*variants, "fallback", "default"]},
                "off_variant": "default",
                "default_variant": "default",
                "rules": [
                    {"id": "split", "serve": {"split": split, "bucket_by": "user_id"}},
                    {"id": "fallback-rule", "serve": {"variant": "fallback"}},
                ],
            }
        },
    }


def _client(salt: str, weights: Sequence[int], variants: Sequence[str]) -> rollwise.Client:
    return rollwise.Client.offline(_document(salt, weights, variants))


def _arms(n: int) -> list[str]:
    return [f"v{i}" for i in range(n)]


@st.composite
def _splits(draw: st.DrawFn) -> list[int]:
    """Valid weights: small ones, or a random partition of a total up to 2**32, zeros allowed."""
    if draw(st.booleans()):
        weights = draw(st.lists(st.integers(0, 100), min_size=1, max_size=12))
        return weights if sum(weights) else [*weights, 1]
    total = draw(st.integers(1, BUCKET_SPACE))
    cuts = sorted(draw(st.lists(st.integers(0, total), max_size=11)))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def _near(bounds: Sequence[int]) -> st.SearchStrategy[int]:
    """Hash values, with the values next to the boundaries (where the bugs are) drawn often."""
    edges = sorted({x for b in bounds for x in (b - 1, b, b + 1) if 0 <= x < BUCKET_SPACE})
    return st.one_of(st.integers(0, BUCKET_SPACE - 1), st.sampled_from(edges or [0]))


# --- the hash ---


def test_hash_unit_is_murmur3_of_the_utf8_key() -> None:
    assert hash_unit("fraud-model", "user-42") == 3197360038
    assert hash_unit("fraud-model", "user-42") == mmh3.hash(b"fraud-model:user-42", 0, False)
    assert hash_unit("s", "josé") == mmh3.hash("s:josé".encode(), 0, False)
    assert hash_unit("s", "jose\u0301") != hash_unit("s", "josé")  # no Unicode normalization


@given(salt=st.text(min_size=1), unit=st.text(min_size=1))
def test_hash_unit_is_an_unsigned_32_bit_hash_of_the_utf8_bytes(salt: str, unit: str) -> None:
    h = hash_unit(salt, unit)
    assert 0 <= h < BUCKET_SPACE
    assert h == mmh3.hash(f"{salt}:{unit}".encode(), 0, False)


def _run(code: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_hash_unit_rejects_a_lone_surrogate_without_crashing() -> None:
    # mmh3.hash() of a str with a lone surrogate kills the interpreter (SIGSEGV, mmh3 5.3.1):
    # hash_unit encodes to UTF-8 first. Run in a child so that a regression cannot kill pytest.
    child = _run("""
        from rollwise.bucketing import hash_unit
        try:
            hash_unit("s", "user-\\ud800")
        except UnicodeEncodeError:
            print("UnicodeEncodeError")
    """)
    assert (child.returncode, child.stdout.strip()) == (0, "UnicodeEncodeError"), child.stderr


def test_evaluator_treats_a_lone_surrogate_unit_as_no_unit() -> None:
    document = json.dumps(_document("s", [1, 1], ["a", "b"]))
    child = _run(
        """
        import json, sys
        import rollwise
        client = rollwise.Client.offline(json.loads(sys.stdin.read()))
        unit = json.loads('"\\\\ud800"')  # what json.loads makes of a request body
        print(client.variant("bucketing", {"user_id": unit}))
        """,
        stdin=document,
    )
    assert (child.returncode, child.stdout.strip()) == (0, "fallback"), child.stderr


# --- deterministic ---

_CHILD = """
    import json, sys
    from rollwise.bucketing import bucket, hash_unit
    salts, units, splits = json.loads(sys.stdin.read())
    print(json.dumps([[hash_unit(s, u), [bucket(s, u, w) for w in splits]]
                      for s in salts for u in units]))
"""
_SALTS = ["fraud-model", "ranker-v2", "フラグ"]
_SPLITS = [[1, 1], [5, 95], [1, 1, 1], [1] * 10, [1, 9999], [2**31, 2**31]]
_UNITS = [*UNITS[:250], "josé", "jose\u0301", "用户", "👩\u200d💻", "مستخدم", "a:b", " ", "0", "-1"]


def _in_process(salts: list[str], units: list[str], splits: list[list[int]]) -> list[Any]:
    return [[hash_unit(s, u), [bucket(s, u, w) for w in splits]] for s in salts for u in units]


@pytest.mark.parametrize("hash_seed", ["0", "1", "4242"])
def test_buckets_are_the_same_in_another_process(hash_seed: str) -> None:
    # A different PYTHONHASHSEED in the child: Python's own str hash() would differ.
    child = _run(_CHILD, json.dumps([_SALTS, _UNITS, _SPLITS]), PYTHONHASHSEED=hash_seed)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == _in_process(_SALTS, _UNITS, _SPLITS)


def test_the_cross_process_check_catches_a_per_process_hash() -> None:
    # The check above would catch an implementation built on Python's randomized hash().
    code = "import sys; print([hash(u) % 2 for u in sys.stdin.read().split()])"
    runs = {_run(code, " ".join(UNITS[:200]), PYTHONHASHSEED=s).stdout for s in ("1", "2")}
    assert len(runs) == 2


# --- uniform ---

UNIFORMITY_SPLITS = {
    "2 equal": [1, 1],
    "3 equal": [1, 1, 1],
    "10 equal": [1] * 10,
    "unequal 5/20/75": [5, 20, 75],
    "canary 1/99": [1, 99],
    "10 unequal": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
}


@pytest.mark.parametrize("weights", UNIFORMITY_SPLITS.values(), ids=UNIFORMITY_SPLITS.keys())
@pytest.mark.parametrize("salt", ["fraud-model", "ranker-v2"])
def test_arms_receive_their_share(salt: str, weights: list[int]) -> None:
    hashes, bounds = _hashes(salt), boundaries(weights)
    assert _chi_square_p(hashes, bounds) > ALPHA, _counts(hashes, bounds)


@pytest.mark.parametrize("byte", ["high", "low"])
def test_the_raw_hash_is_uniform(byte: str) -> None:
    shift = 24 if byte == "high" else 0
    counts = Counter((h >> shift) & 0xFF for h in _hashes("fraud-model"))
    assert stats.chisquare([counts[i] for i in range(256)]).pvalue > ALPHA


def _abs_of_signed_hashes() -> tuple[int, ...]:
    return tuple(abs(mmh3.hash(f"fraud-model:{u}".encode(), 0, True)) for u in UNITS)


def _java_string_hashes() -> tuple[int, ...]:
    """Java's ``String.hashCode`` (31 * h + c): keys that share a prefix get nearby hashes."""
    out = []
    for unit in UNITS:
        h = 0
        for char in f"fraud-model:{unit}":
            h = (31 * h + ord(char)) & 0xFFFFFFFF
        out.append(h)
    return tuple(out)


BIASED: dict[str, Callable[[], tuple[Sequence[int], Sequence[int], list[int]]]] = {
    # |signed hash|, a classic port bug: only [0, 2**31] is ever reached
    "abs of signed hash": lambda: (_abs_of_signed_hashes(), boundaries([1, 1]), [1, 1]),
    # 51% served where 50% is declared
    "boundary 1% off": lambda: (_hashes("fraud-model"), boundaries([51, 49]), [1, 1]),
    # a weak hash
    "String.hashCode": lambda: (_java_string_hashes(), boundaries([1] * 10), [1] * 10),
}


@pytest.mark.parametrize("case", BIASED.values(), ids=BIASED.keys())
def test_the_uniformity_check_rejects_a_biased_bucketing(
    case: Callable[[], tuple[Sequence[int], Sequence[int], list[int]]],
) -> None:
    hashes, buggy_bounds, declared = case()
    assert _chi_square_p(hashes, buggy_bounds, boundaries(declared)) < ALPHA


# --- the exact shares ---


@given(_splits())
def test_boundaries_are_the_exact_shares_rounded_down(weights: list[int]) -> None:
    bounds = boundaries(weights)
    total = sum(weights)
    assert len(bounds) == len(weights)
    assert bounds[-1] == BUCKET_SPACE
    assert list(bounds) == sorted(bounds)
    cumulative = 0
    for weight, bound in zip(weights, bounds, strict=True):
        cumulative += weight
        # floor(cum * 2**32 / total): bound <= exact < bound + 1, in integers
        assert bound * total <= cumulative * BUCKET_SPACE < (bound + 1) * total
    widths = [b - a for a, b in zip((0, *bounds), bounds, strict=False)]
    for weight, width in zip(weights, widths, strict=True):
        # each arm's share of the hash space is within 2**-32 of weight / total
        assert abs(width * total - weight * BUCKET_SPACE) < total
        assert (width == 0) == (weight == 0)


@given(_splits(), st.integers(1, 1000))
def test_boundaries_depend_only_on_the_shares(weights: list[int], factor: int) -> None:
    if sum(weights) * factor <= BUCKET_SPACE:
        assert boundaries([w * factor for w in weights]) == boundaries(weights)


@given(st.data())
def test_zero_weight_arms_receive_no_unit(data: st.DataObject) -> None:
    weights = data.draw(_splits())
    bounds = boundaries(weights)
    h = data.draw(_near(bounds))
    assert weights[choose(h, bounds)] > 0


def test_zero_weight_arms_receive_no_unit_through_the_evaluator() -> None:
    client = _client("fraud-model", [0, 1, 0, 1, 0], _arms(5))
    served = Counter(client.variant(FLAG, {"user_id": unit}) for unit in UNITS[:10_000])
    assert set(served) == {"v1", "v3"}


@pytest.mark.parametrize(
    "weights",
    [[2**32], [2**31, 2**31], [1, 2**32 - 1], [2**32 - 1, 1], [0, 2**32], [1], [0, 0, 1]],
)
def test_the_last_boundary_is_always_2_to_the_32(weights: list[int]) -> None:
    assert boundaries(weights)[-1] == BUCKET_SPACE
    assert choose(BUCKET_SPACE - 1, boundaries(weights)) == max(
        i for i, w in enumerate(weights) if w
    )


BAD_WEIGHTS = {
    "negative": [-1, 2],
    "negative second": [3, -1],
    "bool": [True, 1],
    "bool alone": [True],
    "float": [1.0, 1],
    "fraction": [0.5, 0.5],
    "nan": [float("nan"), 1],
    "total 0": [0, 0],
    "one zero": [0],
    "empty": [],
    "total 2**32 + 1": [2**32, 1],
    "total 2**33": [2**33],
    "huge total": [2**64, 2**64],
}


@pytest.mark.parametrize("weights", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
def test_boundaries_rejects_bad_weights(weights: list[Any]) -> None:
    with pytest.raises(ValueError, match="weights must"):
        boundaries(weights)


# --- stable ramps ---


@given(st.data())
def test_raising_the_first_arm_moves_no_unit_out_of_it(data: st.DataObject) -> None:
    total = data.draw(st.integers(1, BUCKET_SPACE), label="total")
    a = data.draw(st.integers(0, total), label="a")
    b = data.draw(st.integers(a, total), label="b")
    before, after = boundaries([a, total - a]), boundaries([b, total - b])
    assert before[0] <= after[0]  # the whole property: the first arm is [0, boundary_0)
    h = data.draw(_near(before + after), label="h")
    if choose(h, before) == 0:
        assert choose(h, after) == 0


@given(st.data())
def test_raising_the_first_arm_with_the_other_weight_unchanged(data: st.DataObject) -> None:
    # [candidate, control] = [a, c] -> [b, c]: the total changes too
    c = data.draw(st.integers(0, 2**31), label="c")
    a = data.draw(st.integers(0 if c else 1, 2**31), label="a")
    b = data.draw(st.integers(a, 2**31), label="b")
    assert boundaries([a, c])[0] <= boundaries([b, c])[0]


@given(st.data())
def test_the_second_arm_loses_exactly_the_units_that_the_first_gains(
    data: st.DataObject,
) -> None:
    total = data.draw(st.integers(1, BUCKET_SPACE), label="total")
    a = data.draw(st.integers(0, total), label="a")
    b = data.draw(st.integers(a, total), label="b")
    before, after = boundaries([a, total - a]), boundaries([b, total - b])
    h = data.draw(_near(before + after), label="h")
    old, new = choose(h, before), choose(h, after)
    moved = before[0] <= h < after[0]
    assert (old != new) == moved
    if moved:
        assert (old, new) == (1, 0)
    # and the other way round: raising the second arm moves no unit out of it
    if new == 1:
        assert old == 1


@given(salt=st.text(min_size=1), unit=st.text(min_size=1), data=st.data())
def test_a_ramped_up_candidate_keeps_its_units(salt: str, unit: str, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, 10_000), label="a")
    b = data.draw(st.integers(a, 10_000), label="b")
    if bucket(salt, unit, [a, 10_000 - a]) == 0:
        assert bucket(salt, unit, [b, 10_000 - b]) == 0


RAMP = [1, 5, 25, 50, 100]


def _candidates_per_stage(salt_of_stage: Callable[[int], str]) -> list[set[str]]:
    stages = []
    for percent in RAMP:
        client = _client(salt_of_stage(percent), [percent, 100 - percent], ["v2", "v1"])
        ctx: dict[str, Any] = {}
        served = set()
        for unit in UNITS[:20_000]:
            ctx["user_id"] = unit
            if client.variant(FLAG, ctx) == "v2":
                served.add(unit)
        stages.append(served)
    return stages


def _left_the_candidate(stages: list[set[str]]) -> int:
    return sum(len(earlier - later) for earlier, later in itertools.pairwise(stages))


def test_the_canary_ramp_only_ever_adds_units_to_the_candidate() -> None:
    stages = _candidates_per_stage(lambda percent: "fraud-model")
    assert _left_the_candidate(stages) == 0
    for percent, served in zip(RAMP, stages, strict=True):
        if percent == 100:
            assert len(served) == 20_000
        else:
            assert stats.binomtest(len(served), 20_000, percent / 100).pvalue > ALPHA


def test_the_ramp_check_catches_a_salt_that_changes_with_the_stage() -> None:
    stages = _candidates_per_stage(lambda percent: f"fraud-model-stage-{percent}")
    assert _left_the_candidate(stages) > 0


def test_a_middle_arm_is_not_stable() -> None:
    # Documented in the spec: raising arm 0 shifts arm 1's interval, so arm 1 loses units
    # although its own weight is unchanged. Declare the candidate first (or last).
    hashes = _hashes("fraud-model")[:20_000]
    before, after = boundaries([10, 10, 80]), boundaries([20, 10, 70])
    arm1_before = {i for i, h in enumerate(hashes) if choose(h, before) == 1}
    arm1_after = {i for i, h in enumerate(hashes) if choose(h, after) == 1}
    assert arm1_before
    assert not arm1_before & arm1_after


# --- independent across salts ---

INDEPENDENCE = {
    "50/50 x 50/50": ("fraud-model", "ranker-v2", [1, 1], [1, 1]),
    "similar salts": ("fraud-model", "fraud-model-2", [1, 1], [1, 1]),
    "5/95 x 3 arms": ("fraud-model", "checkout", [5, 95], [1, 1, 1]),
    "10 arms x 3 arms": ("a", "b", [1] * 10, [1, 1, 1]),
}


@pytest.mark.parametrize("case", INDEPENDENCE.values(), ids=INDEPENDENCE.keys())
def test_assignments_under_two_salts_are_independent(
    case: tuple[str, str, list[int], list[int]],
) -> None:
    salt_a, salt_b, weights_a, weights_b = case
    p = _independence_p(
        _hashes(salt_a), boundaries(weights_a), _hashes(salt_b), boundaries(weights_b)
    )
    assert p > ALPHA


def test_the_independence_check_catches_a_shared_salt() -> None:
    bounds = boundaries([1, 1])
    assert _independence_p(_hashes("fraud-model"), bounds, _hashes("fraud-model"), bounds) < ALPHA


# --- units through the evaluator ---


@functools.cache
def _ten_arms() -> rollwise.Client:
    return _client("fraud-model", [1] * 10, _arms(10))


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_an_int_unit_is_bucketed_like_its_decimal_string(n: int) -> None:
    expected = f"v{bucket('fraud-model', str(n), [1] * 10)}"
    assert _ten_arms().variant(FLAG, {"user_id": n}) == expected
    assert _ten_arms().variant(FLAG, {"user_id": str(n)}) == expected
    assert _ten_arms().evaluate(FLAG, {"user_id": n}).reason is rollwise.Reason.SPLIT


NO_UNIT = {
    "missing": {},
    "None": {"user_id": None},
    "empty": {"user_id": ""},
    "True": {"user_id": True},
    "False": {"user_id": False},
    "float": {"user_id": 1.0},
    "float with fraction": {"user_id": 3.5},
    "list": {"user_id": ["user-1"]},
    "dict": {"user_id": {"id": "user-1"}},
    "bytes": {"user_id": b"user-1"},
}


@pytest.mark.parametrize("context", NO_UNIT.values(), ids=NO_UNIT.keys())
def test_a_split_without_a_unit_does_not_match(context: dict[str, Any]) -> None:
    assignment = _ten_arms().evaluate(FLAG, context)
    assert (assignment.variant, assignment.rule) == ("fallback", "fallback-rule")
    assert assignment.reason is rollwise.Reason.TARGETING_MATCH
    assert _ten_arms().variant(FLAG, context) == "fallback"


# --- a 0.01% share is served honestly ---


@pytest.mark.parametrize(
    ("weights", "tiny"), [([1, 9999], 0), ([9999, 1], 1)], ids=["tiny first", "tiny last"]
)
def test_a_one_in_ten_thousand_share_is_served_honestly(weights: list[int], tiny: int) -> None:
    bounds = boundaries(weights)
    width = bounds[0] if tiny == 0 else BUCKET_SPACE - bounds[0]
    share = width / BUCKET_SPACE
    # 2**32 / 10_000 = 429_496.7296 hash values, rounded down (first arm) or up (last arm)
    assert width == (429_496 if tiny == 0 else 429_497)
    assert abs(share - 1 / 10_000) < 2**-32
    client = _client("fraud-model", weights, ["a", "b"])
    tiny_variant = ["a", "b"][tiny]
    ctx: dict[str, Any] = {}
    served = 0
    for i in range(1_000_000):
        ctx["user_id"] = f"user-{i}"
        if client.variant(FLAG, ctx) == tiny_variant:
            served += 1
    # about 100 of 1,000,000; a scheme of 100 (or 1,000) coarse buckets would give 0 or 10,000
    assert stats.binomtest(served, 1_000_000, share).pvalue > ALPHA, served

"""Documents at the limits of ``rollwise.limits``: how long an SDK takes to load each one (JSON
text to a client serving it) and the slowest evaluation of any of its flags (a context that
walks every rule and matches none).

    ../.venv/bin/python bench_limits.py

Issue 12 asks for a load under 100 ms and any evaluation under 5 µs at every limit.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import rollwise
from rollwise import limits


def _flag(key: str, rules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"key": key, "version": 1, "variants": {"a": {}, "b": {}}, "off_variant": "a",
            "default_variant": "a", "salt": key, "rules": rules}  # fmt: skip
    body.update(extra)
    return body


def _rule(i: int, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    split = [{"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}]
    return {"id": f"r{i}", "conditions": conditions, "serve": {"split": split}}


def _document(flags: list[dict[str, Any]], segments: dict[str, Any] | None = None) -> str:
    document = {"schema_version": 1, "environment": "production", "revision": 1,
                "segments": segments or {}, "flags": {f["key"]: f for f in flags}}  # fmt: skip
    return json.dumps(document)


def _fill(make: Callable[[int], dict[str, Any]], budget: int, most: int) -> list[dict[str, Any]]:
    """As many flags ``make(i)`` as fit in ``budget`` bytes (at most ``most``)."""
    flags: list[dict[str, Any]] = []
    size = len(_document([]))
    for i in range(most):
        flag = make(i)
        size += len(json.dumps(flag)) + len(json.dumps(flag["key"])) + 4  # "key": {...},
        if size > budget:
            break
        flags.append(flag)
    while len(_document(flags)) > budget:
        flags.pop()
    return flags


def many_flags() -> str:
    """``MAX_FLAGS`` flags of three rules each, up to the document size."""

    def make(i: int) -> dict[str, Any]:
        rules = [_rule(r, [{"attribute": "country", "operator": "in",
                            "values": ["DE", "FR", "NL", f"X{r}"]},
                           {"attribute": "amount", "operator": "between", "values": [0, 100]}])
                 for r in range(3)]  # fmt: skip
        return _flag(f"flag-{i:05d}", rules)

    return _document(_fill(make, limits.MAX_DOCUMENT_BYTES, limits.MAX_FLAGS))


def costly_flags() -> str:
    """Flags at the condition-cost limit: ``MAX_RULES`` rules of one condition each."""

    def make(i: int) -> dict[str, Any]:
        rules = [_rule(r, [{"attribute": f"attr{r % 20}", "operator": "in", "values": [f"v{r}"]}])
                 for r in range(limits.MAX_RULES)]  # fmt: skip
        return _flag(f"costly-{i:04d}", rules)

    return _document(_fill(make, limits.MAX_DOCUMENT_BYTES, limits.MAX_FLAGS))


def regex_flags() -> str:
    """Flags whose cost is all ``matches`` conditions (five, at 20 units each)."""
    count = limits.MAX_CONDITION_COST // limits.MATCHES_COST

    def make(i: int) -> dict[str, Any]:
        rules = [_rule(r, [{"attribute": "email", "operator": "matches",
                            "value": rf"^[a-z0-9._%+-]+@(corp{r}|example)\.(com|org)$"}])
                 for r in range(count)]  # fmt: skip
        return _flag(f"regex-{i:04d}", rules)

    return _document(_fill(make, limits.MAX_DOCUMENT_BYTES, limits.MAX_FLAGS))


def long_lists() -> str:
    """Conditions of ``MAX_VALUES`` user ids, up to the document size."""
    values = [f"user-{i:06d}" for i in range(limits.MAX_VALUES)]

    def make(i: int) -> dict[str, Any]:
        rules = [_rule(0, [{"attribute": "user_id", "operator": "in", "values": values}])]
        return _flag(f"list-{i:03d}", rules)

    return _document(_fill(make, limits.MAX_DOCUMENT_BYTES, limits.MAX_FLAGS))


def big_payloads() -> str:
    """Variants with payloads of ``MAX_PAYLOAD_BYTES``, up to the document size."""
    payload = {
        "weights": [round(i * 0.001, 3) for i in range((limits.MAX_PAYLOAD_BYTES - 20) // 7)]
    }

    def make(i: int) -> dict[str, Any]:
        return _flag(f"model-{i:03d}", [_rule(0, [])],
                     variants={"a": {"payload": payload}, "b": {}})  # fmt: skip

    return _document(_fill(make, limits.MAX_DOCUMENT_BYTES, limits.MAX_FLAGS))


def many_variants() -> str:
    """Flags of ``MAX_VARIANTS`` variants split evenly, up to the document size."""

    def make(i: int) -> dict[str, Any]:
        names = [f"v{n}" for n in range(limits.MAX_VARIANTS)]
        split = [{"variant": n, "weight": 1} for n in names]
        rule = {"id": "all", "conditions": [], "serve": {"split": split}}
        return _flag(f"wide-{i:04d}", [rule], variants={n: {} for n in names},
                     off_variant="v0", default_variant="v0")  # fmt: skip

    return _document(_fill(make, limits.MAX_DOCUMENT_BYTES, limits.MAX_FLAGS))


CONTEXT = {"user_id": "nobody", "country": "US", "amount": 5000.0, "email": "x" * 40,
           **{f"attr{i}": "none" for i in range(20)}}  # fmt: skip


def measure(name: str, text: str, repeats: int = 5) -> dict[str, Any]:
    loads = []
    for _ in range(repeats):
        start = time.perf_counter()
        client = rollwise.Client.offline(text)
        loads.append(time.perf_counter() - start)
    document = client.rules
    if document is None:
        raise SystemExit(f"{name}: the client did not load the document")
    worst = 0.0
    keys = sorted(document.flags)
    for key in keys[:: max(1, len(keys) // 50)]:
        client.variant(key, CONTEXT)  # the first call of a flag compiles it
        best = float("inf")
        for _ in range(5):  # the least disturbed of five runs
            n = 1000
            start = time.perf_counter()
            for _ in range(n):
                client.variant(key, CONTEXT)
            best = min(best, (time.perf_counter() - start) / n)
        worst = max(worst, best)
    return {"document": name, "bytes": len(text), "flags": len(keys),
            "load_ms": statistics.median(loads) * 1e3, "worst_eval_us": worst * 1e6}  # fmt: skip


def main() -> None:
    print(f"{'document':<14}{'bytes':>10}{'flags':>7}{'load ms':>10}{'worst eval us':>15}")
    builds = [many_flags, costly_flags, regex_flags, long_lists, big_payloads, many_variants]
    for build in builds:
        name = build.__name__
        row = measure(name, build())
        print(f"{row['document']:<14}{row['bytes']:>10}{row['flags']:>7}"
              f"{row['load_ms']:>10.1f}{row['worst_eval_us']:>15.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

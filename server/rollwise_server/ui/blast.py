"""The blast radius of a change: of the units recently exposed to a flag, how many would get a
different variant after the change, and in which countries and amount bands.

Each recent exposure (``Store.recent_exposures``) is evaluated again under the old and the new
configuration, with the environment's segments, from what the exposure carries: its unit (as
its unit type's attribute) and the flag's cohort attributes. A condition on any other attribute
cannot be replayed; the radius names those attributes, so a reader knows it is a lower bound.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from rollwise.compiler import compile_rules
from rollwise.errors import RollwiseError
from rollwise.rules import RulesDocument, schema_version_of
from rollwise_server.api.common import threaded
from rollwise_server.storage.base import Store

__all__ = ["AMOUNT_BANDS", "Radius", "blast_radius", "radius_of", "segment_radius"]

WINDOW = 200_000
"""Events scanned at most (the newest of the exposures table)."""
SAMPLE = 5_000
"""Distinct units replayed at most."""
AMOUNT_BANDS = (0.0, 50.0, 200.0, 500.0, 1000.0)
"""Lower bounds of the amount bands shown (``amount`` in the exposures' attributes)."""


@attrs.frozen
class Radius:
    units: int
    """Distinct units replayed."""
    changed: int
    """Of those, units whose variant would change."""
    moves: list[tuple[str, str, int]]
    """``(old variant, new variant, units)``, most first."""
    by_country: list[tuple[str, int, int]]
    """``(country, changed, units)``, most changed first."""
    by_amount: list[tuple[str, int, int]]
    """``(amount band, changed, units)``, in band order."""
    unseen: list[str]
    """Attributes the rules read that exposures do not carry: conditions on them cannot be
    replayed (the radius is then a lower bound)."""
    error: str = ""


def _band(amount: Any) -> str | None:
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return None
    lows = [low for low in AMOUNT_BANDS if value >= low]
    if not lows:
        return f"< {AMOUNT_BANDS[0]:g}"
    low = lows[-1]
    index = AMOUNT_BANDS.index(low)
    if index + 1 < len(AMOUNT_BANDS):
        return f"{low:g}\u2013{AMOUNT_BANDS[index + 1]:g}"
    return f"≥ {low:g}"


def _attributes(body: Mapping[str, Any], segments: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for rule in body.get("rules") or []:
        for cond in rule.get("conditions") or []:
            if "segment" in cond:
                for inner in (segments.get(cond["segment"]) or {}).get("conditions") or []:
                    found.add(str(inner.get("attribute")))
            else:
                found.add(str(cond.get("attribute")))
        serve = rule.get("serve") or {}
        if serve.get("split"):
            found.add(str(serve.get("bucket_by", "user_id")))
    return found


def _evaluator(env: str, key: str, body: Mapping[str, Any], segments: Mapping[str, Any]) -> Any:
    flag = {
        k: v
        for k, v in body.items()
        if k not in ("key", "archived", "updated_at", "updated_by", "stale", "reason")
    }
    flag.setdefault("version", 1)
    document = RulesDocument.from_json(
        {
            "schema_version": schema_version_of([flag]),
            "environment": env,
            "revision": 0,
            "segments": dict(segments),
            "flags": {key: flag},
        }
    )
    return compile_rules(document).flags[key].evaluate


def radius_of(
    env: str,
    key: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    segments: Mapping[str, Any],
    exposures: list[tuple[str, str, str, str]],
    old_segments: Mapping[str, Any] | None = None,
) -> Radius:
    """Replay ``exposures`` (newest first) under ``old`` and ``new`` (pure: tested alone).
    A segment's change is the same flag under ``old_segments`` and ``segments``."""
    before_segments = segments if old_segments is None else old_segments
    try:
        after = _evaluator(env, key, new, segments)
        before = None if old is None else _evaluator(env, key, old, before_segments)
    except RollwiseError as exc:
        return Radius(0, 0, [], [], [], [], error=str(exc))
    seen: set[tuple[str, str]] = set()
    carried: set[str] = set()
    moves: Counter[tuple[str, str]] = Counter()
    countries: Counter[str] = Counter()
    countries_changed: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    bands_changed: Counter[str] = Counter()
    for unit_type, unit, attrs_text, variant in exposures:
        if (unit_type, unit) in seen:
            continue
        seen.add((unit_type, unit))
        if len(seen) > SAMPLE:
            break
        try:
            attributes = json.loads(attrs_text) if attrs_text else {}
        except ValueError:
            attributes = {}
        context = {**(attributes if isinstance(attributes, dict) else {}), unit_type: unit}
        carried.update(context)
        was = before(context).variant if before is not None else variant
        now = after(context).variant
        changed = was != now
        if changed:
            moves[(str(was), str(now))] += 1
        country = context.get("country")
        if isinstance(country, str):
            countries[country] += 1
            countries_changed[country] += changed
        band = _band(context.get("amount")) if "amount" in context else None
        if band is not None:
            bands[band] += 1
            bands_changed[band] += changed
    units = min(len(seen), SAMPLE)
    order = {(_band(low) or ""): i for i, low in enumerate(AMOUNT_BANDS)}
    used = _attributes(new, segments) | (_attributes(old, before_segments) if old else set())
    return Radius(
        units=units,
        changed=sum(moves.values()),
        moves=[(a, b, n) for (a, b), n in moves.most_common()],
        by_country=sorted(
            ((c, countries_changed[c], n) for c, n in countries.items()),
            key=lambda row: (-row[1], -row[2], row[0]),
        ),
        by_amount=sorted(
            ((b, bands_changed[b], n) for b, n in bands.items()), key=lambda r: order.get(r[0], 99)
        ),
        unseen=sorted(used - carried) if units else [],
    )


def _segments(store: Store, env: str) -> dict[str, Any]:
    return {
        s.key: {k: v for k, v in s.body.items() if k != "version"}
        for s in store.list_resources(env, "segment")
    }


def _gather(store: Store, env: str, key: str) -> tuple[dict[str, Any], list[Any]]:
    return _segments(store, env), store.recent_exposures(env, key, window=WINDOW, units=SAMPLE)


MAX_AT_ONCE = 2
"""Blast radii computed at once per server process; the others wait their turn, so previews
can never take all of the worker threads the API needs."""
MAX_SEGMENT_FLAGS = 10
"""Flags replayed for a segment's change (the ones changed most recently); the page says how
many more use it."""


def _turns(console: Any) -> asyncio.Semaphore:
    state = console.request.app.state
    turns: asyncio.Semaphore | None = getattr(state, "blast_turns", None)
    if turns is None:
        turns = state.blast_turns = asyncio.Semaphore(MAX_AT_ONCE)
    return turns


async def blast_radius(
    console: Any, env: str, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> Radius:
    async with _turns(console):
        segments, exposures = await threaded(_gather, console.store, env, key)
        return await threaded(radius_of, env, key, old, new, segments, exposures)


async def segment_radius(
    console: Any, env: str, key: str, new: Mapping[str, Any]
) -> list[tuple[str, Radius]]:
    """The blast radius of changing segment ``key`` to ``new``, for each flag that uses it:
    each flag replayed under the segment as it is and as it would be."""
    async with _turns(console):
        return await threaded(_segment_radii_new, console.store, env, key, new)


def _segment_radii_new(
    store: Store, env: str, key: str, new: Mapping[str, Any]
) -> list[tuple[str, Radius]]:
    current = _segments(store, env)
    after = {**current, key: {k: v for k, v in new.items() if k != "version"}}
    out = []
    users = [
        flag
        for flag in store.list_resources(env, "flag")
        if any(
            isinstance(c, Mapping) and c.get("segment") == key
            for rule in flag.body.get("rules") or []
            for c in rule.get("conditions") or []
        )
    ]
    users.sort(key=lambda flag: flag.updated_at, reverse=True)
    for flag in users[:MAX_SEGMENT_FLAGS]:
        rows = store.recent_exposures(env, flag.key, window=WINDOW, units=SAMPLE)
        body = dict(flag.body)
        out.append((flag.key, radius_of(env, flag.key, body, body, after, rows, current)))
    for flag in users[MAX_SEGMENT_FLAGS:]:
        out.append(
            (
                flag.key,
                Radius(
                    0,
                    0,
                    [],
                    [],
                    [],
                    [],
                    error=f"only the {MAX_SEGMENT_FLAGS} flags changed last are replayed",
                ),
            )
        )
    return out

"""Incremental evidence for a running rollout: each look reduces only what changed since the last.

A look needs, per guardrail and cohort dimension, the statistics that ``reduce_sql`` gives over
the rollout's exposures in ``[started, now - outcome_delay)`` and their outcomes. Reducing all
stored events at every look costs seconds per rollout at a million exposures, every 10 s. The
tally keeps instead, per rollout (tables of migration ``m004``):

* ``rollout_units``: each counted unit's first exposure time and smallest and largest variant;
* the running statistics per slot (a guardrail overall, or by one cohort dimension), variant
  and cohort: the rows of ``reduction_sql`` (``n``, Σx and the centred M2 and co-moment, never
  Σx², which would lose the variance of a metric with a large mean), merged;
* watermarks: the largest exposure and outcome ``seq`` counted, and the ``until`` time;
* ``rollout_version_units`` and counts per flag version and variant, for the SRM check.

A look finds the units that changed: exposures newly counted (arrived since the last look, or
whose time just passed ``until``) and new outcomes of counted units. It reduces those units
twice with the SQL of the full reduction (``unit_reduction_sql``): as they were (events up to
the old watermarks) and as they are now (up to the new ones): the old moments leave the
running ones and the new join them (``moments.without`` and ``moments.pooled``, exact in M2
round after round). The cost follows the new events, not the stored ones; the result equals
``reduce_sql`` at the new watermarks (``tests/rollouts/test_tally.py`` checks it on random
event streams, and keeps a variance of 1 at a mean of 1e8 over many rounds).

The tally restarts from nothing when the rollout or its guardrails change, or the form of its
stored statistics (a fingerprint, with ``_FORM``); that first look counts what is stored in
bulk (one ``GROUP BY`` into ``rollout_units`` and one reduction of all its units per slot), as
the full reduction would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from rollwise.analysis.moments import pooled, without
from rollwise.analysis.reduce import (
    ReductionResult,
    ReductionSpec,
    reduce_spec,
    unit_reduction_sql,
)
from rollwise_server.rollouts.plan import RolloutPlan, reduction_of
from rollwise_server.storage.base import Store

__all__ = ["Look", "Snapshot", "look"]

Specs = list[tuple[tuple[int, str | None], ReductionSpec]]
Sums = dict[str, list[Any]]  # json [variant, cohort] -> [variant, cohort, units, n, Σx, M2x, ...]
_FORM = "moments"
"""The form of the stored statistics, in the fingerprint: a tally stored as raw sums (Σx², before
this form) or by a replica that still writes them restarts rather than being misread."""

_FRESH_ROWS = """
SELECT unit_type, unit, ts, variant FROM exposures
WHERE seq > :lo_e AND seq <= :hi_e AND +env = :env AND +flag = :flag
  AND ts >= :since AND ts < :until
UNION ALL
SELECT unit_type, unit, ts, variant FROM exposures INDEXED BY exposures_flag_ts
WHERE env = :env AND flag = :flag AND ts >= max(:since, :old_until) AND ts < :until
  AND seq <= :lo_e
"""
_OUTCOME_UNITS = """
SELECT DISTINCT r.env, r.flag, o.metric, o.unit_type, o.unit FROM outcomes AS o
JOIN rollout_units AS r INDEXED BY rollout_units_by_unit
    ON r.unit_type = o.unit_type AND r.unit = o.unit AND r.env = o.env
WHERE o.seq > :lo_o AND o.seq <= :hi_o
"""
# the look's fresh exposures and touched units, computed once and passed as JSON parameters;
# CROSS JOIN keeps them the outer loop (one primary-key search per touched unit)
_FRESH = """
fresh AS (
    SELECT value ->> 0 AS unit_type, value ->> 1 AS unit, value ->> 2 AS ts,
           value ->> 3 AS variant
    FROM json_each(:fresh)
), touched AS (
    SELECT value ->> 0 AS unit_type, value ->> 1 AS unit FROM json_each(:touched)
), """
_OLD_UNITS = """
    SELECT r.unit_type, r.unit, r.t0, r.lo, r.hi FROM touched AS t
    CROSS JOIN rollout_units AS r ON r.env = :env AND r.flag = :flag
        AND r.unit_type = t.unit_type AND r.unit = t.unit"""
_NEW_UNITS = f"""
    SELECT unit_type, unit, min(t0) AS t0, min(lo) AS lo, max(hi) AS hi FROM ({_OLD_UNITS}
        UNION ALL
        SELECT unit_type, unit, ts, variant, variant FROM fresh
    ) GROUP BY unit_type, unit"""  # noqa: S608 - constant pieces
_UPSERT = """
INSERT INTO rollout_units (env, flag, unit_type, unit, t0, lo, hi)
SELECT :env, :flag, value ->> 0, value ->> 1, min(value ->> 2), min(value ->> 3),
       max(value ->> 3)
FROM json_each(:fresh) WHERE true GROUP BY value ->> 0, value ->> 1
ON CONFLICT (env, flag, unit_type, unit) DO UPDATE SET
    t0 = min(t0, excluded.t0), lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)"""
_CATCH_UP = """
INSERT INTO rollout_units (env, flag, unit_type, unit, t0, lo, hi)
SELECT env, flag, unit_type, unit, min(ts), min(variant), max(variant) FROM exposures
WHERE env = :env AND flag = :flag AND ts >= :since AND ts < :until AND seq <= :hi_e
GROUP BY unit_type, unit"""
_ALL_UNITS = """
    SELECT unit_type, unit, t0, lo, hi FROM rollout_units WHERE env = :env AND flag = :flag"""
_VERSION_UNITS = """
SELECT DISTINCT env, flag, flag_version, variant, unit_type, unit FROM exposures
WHERE seq > :lo AND seq <= :hi
"""


class Snapshot:
    """One controller round's view of the event tables: the last ``seq`` of each, so that every
    rollout of the round counts the same events, and the new outcomes' units matched to the
    rollouts' counted units once for the whole round (not once per rollout)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.exposure_seq = store.top_seq("exposures")
        self.outcome_seq = store.top_seq("outcomes")
        self._matched: dict[int, dict[tuple[str, str], list[tuple[str, str, str]]]] = {}
        self._exposed: dict[int, dict[tuple[str, str], list[tuple[int, str, str, str]]]] = {}

    def outcome_units(self, env: str, flag: str, after: int) -> list[tuple[str, str, str]]:
        """``(metric, unit_type, unit)`` of the outcomes in ``(after, outcome_seq]`` whose unit
        the rollout already counts (read before any rollout of the round updated its units)."""
        matched = self._matched.get(after)
        if matched is None:
            matched = {}
            rows = self.store.reader().execute(
                _OUTCOME_UNITS, {"lo_o": after, "hi_o": self.outcome_seq}
            )
            for row_env, row_flag, metric, unit_type, unit in rows:
                matched.setdefault((row_env, row_flag), []).append((metric, unit_type, unit))
            self._matched[after] = matched
        return matched.get((env, flag), [])

    def version_units(self, env: str, flag: str, after: int) -> list[tuple[int, str, str, str]]:
        """``(flag_version, variant, unit_type, unit)`` of the rollout's exposures in
        ``(after, exposure_seq]``, read once for the whole round."""
        exposed = self._exposed.get(after)
        if exposed is None:
            exposed = {}
            rows = self.store.reader().execute(
                _VERSION_UNITS, {"lo": after, "hi": self.exposure_seq}
            )
            for row_env, row_flag, version, variant, unit_type, unit in rows:
                exposed.setdefault((row_env, row_flag), []).append(
                    (int(version), variant, unit_type, unit)
                )
            self._exposed[after] = exposed
        return exposed.get((env, flag), [])


@attrs.frozen
class Look:
    """What the tally shows at one look: a reduction per slot, and units per version/variant."""

    results: Mapping[tuple[int, str | None], ReductionResult]
    version_units: Mapping[int, Mapping[str, int]]


def crossing_slot(crossing: tuple[str, str]) -> str:
    """The slot name of a crossing (attribute names hold no control character, so the unit
    separator between them never collides with a single attribute)."""
    return "\x1f".join(crossing)


def slot_specs(plan: RolloutPlan, env: str, flag: str, since: str, until: str) -> Specs:
    """One reduction per guardrail overall, per guardrail and cohort dimension, and per
    guardrail and crossing (``plan.reduction_of`` builds each, as plan validation does);
    without guardrails one that only counts units (slot ``(-1, None)``)."""
    out: Specs = []
    extra = {"env": env, "since": since, "until": until}
    for index, guardrail in enumerate(plan.guardrails):
        window = plan.attribution_window
        out.append(((index, None), reduction_of(guardrail, None, flag, window, **extra)))
        for dim in guardrail.cohorts:
            out.append(((index, dim), reduction_of(guardrail, dim, flag, window, **extra)))
        for crossing in guardrail.crossings:
            spec = reduction_of(guardrail, crossing, flag, window, **extra)
            out.append(((index, crossing_slot(crossing)), spec))
    if not out:
        spec = ReductionSpec(
            flag=flag, metric="rollwise-units", kind="count", env=env, since=since, until=until,
            window_seconds=plan.attribution_window,
        )  # fmt: skip
        out.append(((-1, None), spec))
    return out


def _metrics(plan: RolloutPlan) -> list[str]:
    names = {g.source for g in plan.guardrails} | {
        g.denominator for g in plan.guardrails if g.denominator
    }
    return sorted(names)


def _fingerprint(plan: RolloutPlan, env: str, flag: str, since: str) -> str:
    guardrails = [g.to_json() for g in plan.guardrails]
    return json.dumps(
        [env, flag, since, plan.attribution_window, guardrails, _FORM], sort_keys=True
    )


def _slot_key(slot: tuple[int, str | None]) -> str:
    return f"{slot[0]}:{'' if slot[1] is None else slot[1]}"


def _add(sums: Sums, rows: list[Any], sign: int) -> None:
    """Merge the rows' units and moments into ``sums`` (``sign`` 1), or take them out (-1)."""
    for variant, cohort, units, *numbers in rows:
        key = json.dumps([variant, cohort])
        entry = sums.setdefault(key, [variant, cohort, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0])
        part = [value or 0 for value in numbers]
        entry[2] += sign * (units or 0)
        entry[3:] = pooled(entry[3:], part) if sign > 0 else without(entry[3:], part)
        if entry[2] == 0:  # no unit left in the group: drop it with its rounding residue
            del sums[key]


def look(
    store: Store, plan: RolloutPlan, env: str, flag: str, since: str, until: str,
    min_version: int, snapshot: Snapshot | None = None,
) -> Look:  # fmt: skip
    """Bring the rollout's tally up to now and return what it shows (see the module)."""
    if store.dialect == "postgresql":
        return _full_look(store, plan, env, flag, since, until, min_version)
    row = (
        store.reader()
        .execute("SELECT body FROM rollout_tallies WHERE env = ? AND flag = ?", (env, flag))
        .fetchone()
    )
    body = json.loads(row[0]) if row else None
    behind = body is not None and (
        snapshot is None
        or snapshot.exposure_seq < body["exposure_seq"]
        or snapshot.outcome_seq < body["outcome_seq"]
    )  # a snapshot older than the tally: another replica looked at it since
    if snapshot is None or behind:
        snapshot = Snapshot(store)
    started = body is None or body.get("fingerprint") != _fingerprint(plan, env, flag, since)
    until = max(until, since if started or body is None else body["until"])  # never backwards
    specs = slot_specs(plan, env, flag, since, until)
    bounds = {"env": env, "flag": flag, "since": since, "until": until}
    fresh = "[]"
    if started or body is None:
        body = _start(store, plan, specs, bounds, snapshot, min_version)
    else:
        fresh = _changes(store, snapshot, plan, body, specs, bounds)
    hi_e, hi_o = snapshot.exposure_seq, snapshot.outcome_seq
    groups: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
    for version, variant, unit_type, unit in snapshot.version_units(
        env, flag, body["exposure_seq"]
    ):
        if version >= body["min_version"]:
            groups.setdefault((version, variant), []).append(
                (env, flag, version, variant, unit_type, unit)
            )
    with store.transaction() as writer:
        writer.execute(_UPSERT, {"env": env, "flag": flag, "fresh": fresh})
        for (version, variant), rows in groups.items():
            cursor = writer.executemany(
                "INSERT OR IGNORE INTO rollout_version_units"
                " (env, flag, flag_version, variant, unit_type, unit) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            counts = body["versions"].setdefault(str(version), {})
            counts[variant] = counts.get(variant, 0) + max(cursor.rowcount, 0)
        body.update(exposure_seq=hi_e, outcome_seq=hi_o, until=until)
        writer.execute(
            "INSERT OR REPLACE INTO rollout_tallies (env, flag, body) VALUES (?, ?, ?)",
            (env, flag, json.dumps(body, allow_nan=False)),
        )
    sums: dict[str, Sums] = body["sums"]
    results = {
        slot: ReductionResult.from_rows(spec, _clamped(sums[_slot_key(slot)].values()))
        for slot, spec in specs
    }
    versions = {
        int(v): {variant: int(n) for variant, n in counts.items()}
        for v, counts in body["versions"].items()
    }
    return Look(results, versions)


def _start(
    store: Store, plan: RolloutPlan, specs: Specs, bounds: dict[str, Any], snapshot: Snapshot,
    min_version: int,
) -> dict[str, Any]:  # fmt: skip
    """A tally from nothing, counting what is stored up to the snapshot in bulk: in one
    transaction the rollout's units (one ``GROUP BY``) and its units per flag version, then
    one reduction of all its units per slot."""
    env, flag = bounds["env"], bounds["flag"]
    with store.transaction() as writer:
        writer.execute("DELETE FROM rollout_units WHERE env = ? AND flag = ?", (env, flag))
        writer.execute("DELETE FROM rollout_version_units WHERE env = ? AND flag = ?", (env, flag))
        writer.execute(_CATCH_UP, {**bounds, "hi_e": snapshot.exposure_seq})
        writer.execute(
            "INSERT INTO rollout_version_units"
            " (env, flag, flag_version, variant, unit_type, unit)"
            " SELECT DISTINCT env, flag, flag_version, variant, unit_type, unit FROM exposures"
            " WHERE env = ? AND flag = ? AND flag_version >= ? AND seq <= ?",
            (env, flag, min_version, snapshot.exposure_seq),
        )
        versions: dict[str, dict[str, int]] = {}
        for version, variant, count in writer.execute(
            "SELECT flag_version, variant, count(*) FROM rollout_version_units"
            " WHERE env = ? AND flag = ? GROUP BY flag_version, variant",
            (env, flag),
        ):
            versions.setdefault(str(version), {})[variant] = int(count)
    sums: dict[str, Sums] = {}
    conn = store.reader()
    for slot, spec in specs:
        sql, params = unit_reduction_sql(spec, _ALL_UNITS)
        params.update(env=env, flag=flag, exposure_seq=snapshot.exposure_seq)
        params.update(outcome_seq=snapshot.outcome_seq)
        _add(sums.setdefault(_slot_key(slot), {}), conn.execute(sql, params).fetchall(), 1)
    return {
        "fingerprint": _fingerprint(plan, env, flag, bounds["since"]),
        "exposure_seq": snapshot.exposure_seq,
        "outcome_seq": snapshot.outcome_seq,
        "until": bounds["until"],
        "min_version": min_version,
        "sums": sums,
        "versions": versions,
    }


def _changes(
    store: Store, snapshot: Snapshot, plan: RolloutPlan, body: dict[str, Any], specs: Specs,
    bounds: dict[str, Any],
) -> str:  # fmt: skip
    """Add the change of the units touched since the last look to the sums; the exposures
    newly counted (JSON rows), for ``rollout_units``."""
    conn = store.reader()
    env, flag = bounds["env"], bounds["flag"]
    fresh = conn.execute(
        _FRESH_ROWS,
        {**bounds, "old_until": body["until"], "lo_e": body["exposure_seq"],
         "hi_e": snapshot.exposure_seq},
    ).fetchall()  # fmt: skip
    metrics = set(_metrics(plan))
    touched = {(unit_type, unit) for unit_type, unit, _, _ in fresh}
    touched.update(
        (unit_type, unit)
        for metric, unit_type, unit in snapshot.outcome_units(env, flag, body["outcome_seq"])
        if metric in metrics
    )
    fresh_json = json.dumps(fresh)
    given = {"env": env, "flag": flag, "fresh": fresh_json, "touched": json.dumps(sorted(touched))}
    for slot, spec in specs:
        slot_sums = body["sums"].setdefault(_slot_key(slot), {})
        for units, seqs, sign in (
            (_OLD_UNITS, (body["exposure_seq"], body["outcome_seq"]), -1),
            (_NEW_UNITS, (snapshot.exposure_seq, snapshot.outcome_seq), +1),
        ):
            sql, params = unit_reduction_sql(spec, units, ctes=_FRESH)
            params.update(given, exposure_seq=seqs[0], outcome_seq=seqs[1])
            _add(slot_sums, conn.execute(sql, params).fetchall(), sign)
    return fresh_json


def _clamped(rows: Any) -> list[list[Any]]:
    """An M2 that rounding left a hair below zero is zero."""
    out = []
    for variant, cohort, units, n, sx, m2x, sy, m2y, cxy in rows:
        out.append([variant, cohort, units, n, sx, max(m2x, 0.0), sy, max(m2y, 0.0), cxy])
    return out


def _full_look(
    store: Store, plan: RolloutPlan, env: str, flag: str, since: str, until: str,
    min_version: int,
) -> Look:  # fmt: skip
    """On PostgreSQL: every look reduces all the rollout's events in the database (one query
    per slot, hash aggregates over the analysis indexes: ``benchmarks/RESULTS.md``), and counts
    the units per flag version and variant in one more. Nothing is kept between looks, so any
    replica can take the next look."""
    conn = store.reader()
    results = {
        slot: reduce_spec(conn, spec, dialect="postgresql")
        for slot, spec in slot_specs(plan, env, flag, since, until)
    }
    versions: dict[int, dict[str, int]] = {}
    for version, variant, units in conn.execute(
        "SELECT flag_version, variant, count(DISTINCT (unit_type, unit)) FROM exposures"
        " WHERE env = ? AND flag = ? AND flag_version >= ? GROUP BY flag_version, variant",
        (env, flag, min_version),
    ):
        versions.setdefault(int(version), {})[variant] = int(units)
    return Look(results, versions)

"""``since``: only exposures from a moment on count (a rollout's start), in SQL and in pandas."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd

from rollwise.analysis.reduce import reduce_frame, reduce_sql
from rollwise_server.storage import open_store


def test_since_filters_exposures_the_same_in_sql_and_pandas(tmp_path: Path) -> None:
    open_store(str(tmp_path / "a.db")).close()  # the server's schema
    rows = []
    outcomes = []
    for i in range(40):
        ts = f"2026-11-{10 if i < 20 else 20}T10:00:00.000Z"
        variant = "v2" if i % 2 else "v1"
        rows.append((f"e{i}", "production", ts, "f", 1, variant, "r", "user_id", f"u{i}",
                     json.dumps({"country": "DE"}), ts))  # fmt: skip
        outcomes.append((f"o{i}", "production", ts, "m", "user_id", f"u{i}", float(i % 3 == 0),
                         "{}", ts))  # fmt: skip
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.executemany(
        "INSERT INTO exposures (id, env, ts, flag, flag_version, variant, rule, unit_type, unit,"
        " attrs, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO outcomes (id, env, ts, metric, unit_type, unit, value, attrs, received_at)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        outcomes,
    )
    conn.commit()
    since = "2026-11-15T00:00:00.000Z"
    sql = reduce_sql(conn, "f", "m", env="production", kind="binary", since=since)
    everything = reduce_sql(conn, "f", "m", env="production", kind="binary")
    assert sql.units == 20
    assert everything.units == 40
    columns = ["id", "env", "ts", "flag", "flag_version", "variant", "rule", "unit_type", "unit",
               "attrs", "received_at"]  # fmt: skip
    exposures = pd.DataFrame(rows, columns=columns)
    outcome_frame = pd.DataFrame(
        outcomes,
        columns=["id", "env", "ts", "metric", "unit_type", "unit", "value", "attrs", "received_at"],
    )
    frame = reduce_frame(
        exposures, outcome_frame, "f", "m", env="production", kind="binary", since=since
    )
    assert frame.overall() == sql.overall()

"""Migration ``m005``: an existing database keeps working after the control-plane upgrade."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from rollwise_server.auth import hash_secret
from rollwise_server.storage import open_store
from rollwise_server.storage.migrations_sqlite import migrations

pytestmark = pytest.mark.sqlite_only(reason="upgrades a SQLite file written before m005")


def test_an_m004_database_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m005_control_plane")
    conn.execute(
        "INSERT INTO environments (key, revision, created_at) VALUES"
        " ('production', 3, 't'), ('staging', 0, 't')"
    )
    conn.execute(
        "INSERT INTO tokens (id, name, role, env, secret_hash, created_at, created_by)"
        " VALUES ('tok_1', 'alice', 'editor', NULL, ?, 't', 'x'),"
        " ('tok_2', 'checkout', 'sdk', 'production', ?, 't', 'x')",
        (hash_secret("a"), hash_secret("b")),
    )
    plan = {"guardrails": [{"metric": "m", "harm": "decrease", "tolerance": 0.02},
                           {"metric": "l", "harm": "increase", "tolerance": 5.0}]}  # fmt: skip
    state = {"status": "running", "stage": 0, "approvals": [{"stage": 0, "by": "b"}],
             "srm": {"stage": 0, "p": 1.0}}  # fmt: skip
    conn.execute(
        "INSERT INTO rollouts (env, flag, version, plan, state, updated_at)"
        " VALUES ('production', 'f', 1, ?, ?, 't')",
        (json.dumps(plan), json.dumps(state)),
    )
    conn.execute(
        "INSERT INTO resources VALUES ('production', 'flag', 'f', 1, 0, '{}', 't', 'alice')"
    )
    conn.close()
    store = open_store(str(path))
    try:
        envs = {e["key"]: e for e in store.environments()}
        assert (envs["production"]["protected"], envs["staging"]["protected"]) == (True, False)
        assert envs["production"]["revision"] == 3
        tokens = {t.id: t for t in store.tokens()}
        assert (tokens["tok_1"].owner, tokens["tok_1"].envs) == ("alice", None)
        assert (tokens["tok_2"].owner, tokens["tok_2"].envs) == ("checkout", ("production",))
        assert store.token_by_hash(hash_secret("a")) == tokens["tok_1"]
        record = store.get_rollout("production", "f")
        assert record is not None
        assert record.state["stage"] == 1
        assert record.state["approvals"][0]["stage"] == 1
        assert record.state["srm"]["stage"] == 1
        assert [g["tolerance"] for g in record.plan["guardrails"]] == [-0.02, 5.0]
        assert store.get_resource("production", "flag", "f").version == 1
    finally:
        store.close()

"""``rollwise db copy``: a SQLite installation moved into PostgreSQL (and back) is the same
installation: the same rules, history, audit log, tokens, rollouts and events."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rollwise_server.cli import main
from rollwise_server.storage.postgres import PostgresStore
from rollwise_server.testing import (
    DEFAULT_POSTGRESQL,
    LiveServer,
    connect,
    live_server,
    new_database,
    postgresql_under_test,
)
from tests.analysis.test_reduce import generate
from tests.server.test_predictions import prediction
from tests.server.test_results import PATH, create_flag, post_events

TABLES = ("environments", "resources", "resource_versions", "audit", "tokens", "rollouts",
          "webhook_outbox", "console_sessions", "monitors", "exposures", "outcomes",
          "predictions")  # fmt: skip


def copy(source: str, target: str) -> Any:
    return CliRunner().invoke(main, ["db", "copy", "--from", source, "--to", target, "--json"])


def snapshot(server: LiveServer) -> dict[str, Any]:
    """What a user sees of an installation, through the API."""
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    sdk = server.session(server.token("sdk", env="production", name="reader-sdk"))
    rules = sdk.get(f"{server.url}/api/v1/sdk/rules")
    audit = admin.get(f"{server.url}/api/v1/audit", params={"limit": 500}).json()
    results = admin.get(f"{server.url}{PATH}", params={"metric": "conv", "cohort": "country"})
    return {
        "etag": rules.headers["ETag"],
        "document": rules.json(),
        "history": admin.get(f"{base}/flags/fraud-model/history").json(),
        "audit": [e for e in audit["entries"] if e["resource_type"] != "token"],
        "rollout": admin.get(f"{base}/flags/fraud-model/rollout").json(),
        "results": results.json(),
    }


def test_a_sqlite_installation_moves_to_postgresql_whole(tmp_path: Path) -> None:
    sqlite = str(tmp_path / "source.db")
    exposures, outcomes = generate(11, units=120)
    with live_server(tmp_path / "a", db=sqlite) as source:
        create_flag(source)
        post_events(source, "exposures", exposures)
        post_events(source, "events", outcomes)
        sdk = source.session(source.token("sdk", env="production"))
        shadow = [prediction(unit=f"u{i}") for i in range(7)]
        stored = sdk.post(f"{source.url}/api/v1/sdk/predictions", json={"events": shadow})
        assert stored.json()["accepted"] == 7, stored.text
        admin = source.session()
        flag_url = f"{source.url}/api/v1/envs/production/flags/fraud-model"
        flag = admin.get(flag_url).json()
        flag["description"] = "edited before the move"
        admin.put(flag_url, json={**flag, "reason": "history"}).raise_for_status()
        plan = {"control": "v1", "candidate": "v2", "rule": "eu-small",
                "stages": [{"share": 0.01, "min_duration": "10m"}, {"share": 1.0}],
                "guardrails": [{"metric": "conv", "kind": "binary", "harm": "decrease",
                                "cohorts": ["country"]}]}  # fmt: skip
        response = admin.put(f"{flag_url}/rollout", json={**plan, "reason": "move"})
        assert response.status_code in (200, 201), response.text
        monitor = {"variant": "v2", "drift": ["country"],
                   "baseline": {"kind": "window", "since": "2026-11-01T00:00:00Z",
                                "until": "2026-11-08T00:00:00Z"}}  # fmt: skip
        response = admin.put(f"{flag_url}/monitors/mix", json=monitor)
        assert response.status_code == 200, response.text
        before = snapshot(source)
        admin_token = source.admin_token
    (tmp_path / "b").mkdir()
    postgresql = new_database(tmp_path / "b", postgresql_under_test() or DEFAULT_POSTGRESQL)
    result = copy(f"sqlite:///{sqlite}", postgresql)
    assert result.exit_code == 0, result.output
    counts = {row["table"]: (row["source"], row["target"]) for row in json.loads(result.stdout)}
    assert set(counts) == set(TABLES)
    assert all(source == target for source, target in counts.values()), counts
    assert counts["exposures"][0] == len(exposures)
    assert counts["outcomes"][0] == len(outcomes)
    assert counts["predictions"] == (7, 7)
    assert counts["monitors"] == (1, 1)
    analyzed = (
        connect(postgresql)
        .execute(  # the planner's statistics, before any reduction
            "SELECT relname FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND last_analyze IS NOT NULL"
        )
        .fetchall()
    )
    assert {"exposures_default", "outcomes_default"} <= {r[0] for r in analyzed}, analyzed
    with live_server(tmp_path / "b", db=postgresql) as moved:
        moved.admin_token = admin_token  # the old secret works in the new database
        after = snapshot(moved)
    assert after == before

    again = copy(f"sqlite:///{sqlite}", postgresql)  # the target is no longer new
    assert again.exit_code == 1
    assert "the target database is not new" in again.output
    assert connect(postgresql).execute("SELECT count(*) FROM exposures").fetchone() == (
        len(exposures),
    )

    back = str(tmp_path / "back.db")  # and back into SQLite
    returned = copy(postgresql, f"sqlite:///{back}")
    assert returned.exit_code == 0, returned.output
    rows = connect(postgresql)  # what the moved server holds now, it too has written since
    assert {row["table"]: row["target"] for row in json.loads(returned.stdout)} == {
        table: rows.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in TABLES
    }


@pytest.mark.parametrize("target", ["sqlite:///{tmp}/same.db", "mysql://x/y"])
def test_bad_copies_are_refused_with_a_reason(tmp_path: Path, target: str) -> None:
    url = target.format(tmp=tmp_path)
    source = url if url.startswith("sqlite") else f"sqlite:///{tmp_path}/s.db"
    result = copy(source, url)
    assert result.exit_code != 0
    assert ("same database" in result.output) or ("unsupported database URL" in result.output)


def test_a_live_installation_is_copied_from_one_snapshot(tmp_path: Path) -> None:
    """The source keeps serving and ingesting while it is copied, with a rollout running:
    the copy holds one consistent reading of it (every table's count equal on both sides),
    and the moved server goes on with the rollout where it was."""
    sqlite = str(tmp_path / "live.db")
    exposures, _ = generate(12, units=300)
    with live_server(tmp_path / "a", db=sqlite) as source:
        create_flag(source)
        admin = source.session()
        flag_url = f"{source.url}/api/v1/envs/production/flags/fraud-model"
        plan = {"control": "v1", "candidate": "v2", "rule": "eu-small",
                "stages": [{"share": 0.05, "min_duration": "1h"}, {"share": 1.0}],
                "reason": "live"}  # fmt: skip
        admin.put(f"{flag_url}/rollout", json=plan).raise_for_status()
        admin.post(f"{flag_url}/rollout/start", json={"reason": "live"}).raise_for_status()
        post_events(source, "exposures", exposures[:100])
        sending = threading.Event()

        def keep_ingesting() -> None:
            for start in range(100, len(exposures), 20):
                post_events(source, "exposures", exposures[start : start + 20])
                sending.set()

        ingest = threading.Thread(target=keep_ingesting)
        ingest.start()
        try:
            assert sending.wait(30)  # the copy starts while batches are arriving
            (tmp_path / "b").mkdir()
            postgresql = new_database(tmp_path / "b", postgresql_under_test() or DEFAULT_POSTGRESQL)
            result = copy(f"sqlite:///{sqlite}", postgresql)
        finally:
            ingest.join(60)
        assert result.exit_code == 0, result.output
        counts = {row["table"]: (row["source"], row["target"]) for row in json.loads(result.stdout)}
        assert all(source == target for source, target in counts.values()), counts
        assert 100 < counts["exposures"][1] <= len(exposures)
        rollout = admin.get(f"{flag_url}/rollout").json()
    with live_server(tmp_path / "b", db=postgresql) as moved:
        moved_rollout = moved.session().get(
            f"{moved.url}/api/v1/envs/production/flags/fraud-model/rollout"
        )
        moved_rollout.raise_for_status()
    assert (
        (moved_rollout.json()["state"]["status"], moved_rollout.json()["state"]["stage"])
        == (
            rollout["state"]["status"],
            rollout["state"]["stage"],
        )
        == ("running", 1)
    )


def test_a_copy_whose_counts_differ_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A target that loses a row (a fault that cannot be caused for real here) is reported:
    exit 1, the table named."""
    sqlite = str(tmp_path / "source.db")
    exposures, _ = generate(13, units=50)
    with live_server(tmp_path / "a", db=sqlite) as source:
        create_flag(source)
        post_events(source, "exposures", exposures)
    real_insert = PostgresStore.insert_rows

    def lose_one_exposure(self: Any, conn: Any, table: str, columns: Any, rows: Any) -> None:
        real_insert(self, conn, table, columns, rows[1:] if table == "exposures" else rows)

    monkeypatch.setattr(PostgresStore, "insert_rows", lose_one_exposure)
    (tmp_path / "b").mkdir()
    postgresql = new_database(tmp_path / "b", postgresql_under_test() or DEFAULT_POSTGRESQL)
    result = copy(f"sqlite:///{sqlite}", postgresql)
    assert result.exit_code == 1
    assert "the counts of exposures differ" in result.output

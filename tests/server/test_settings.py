"""Settings from the environment, and the database URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollwise.errors import ConfigurationError
from rollwise_server.settings import Settings
from rollwise_server.storage import SQLiteStore, open_store


def test_settings_from_environment_variables() -> None:
    settings = Settings.from_env(
        {"ROLLWISE_DB": "sqlite:///x.db", "ROLLWISE_HEARTBEAT_SECONDS": "2.5"}, max_batch_events=5
    )
    assert (settings.db, settings.heartbeat_seconds, settings.max_batch_events) == (
        "sqlite:///x.db",
        2.5,
        5,
    )
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ROLLWISE_MAX_BATCH_EVENTS": "many"}, "ROLLWISE_MAX_BATCH_EVENTS"),
        ({"ROLLWISE_HEARTBEAT_SECONDS": "0"}, "heartbeat_seconds: must be positive"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(environ)


def test_open_store_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/nested/dir/a.db")
    assert isinstance(store, SQLiteStore)
    assert [e["key"] for e in store.environments()] == ["staging", "production"]
    store.close()
    again = open_store(str(tmp_path / "nested" / "dir" / "a.db"))  # migrations applied once
    assert again.revision("production") == 0
    again.close()
    with pytest.raises(ConfigurationError, match="unsupported database URL scheme 'mysql'"):
        open_store("mysql://localhost/x")
    with pytest.raises(ConfigurationError, match="needs a file path"):
        open_store("sqlite:///:memory:")


def test_the_audit_log_is_append_only(tmp_path: Path) -> None:
    import sqlite3

    store = open_store(str(tmp_path / "a.db"))
    store.append_audit(actor="me", action="test", env=None, resource_type="x", resource_key=None)
    store.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")

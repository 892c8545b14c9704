"""Settings from the environment, and the database URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rollwise.errors import ConfigurationError
from rollwise_server.settings import SETTINGS, Duration, Settings
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
        ({"ROLLWISE_HEARTBEAT_SECONDS": "0"}, "ROLLWISE_HEARTBEAT_SECONDS: '0' is not longer"),
        ({"ROLLWISE_CONTROLLER_INTERVAL": "10 s"}, "ROLLWISE_CONTROLLER_INTERVAL: '10 s' is not a "
         "duration: write a number with a unit such as 90s, 30m, 1h30m, 14d, 2w or 500ms"),
        ({"ROLLWISE_WEBHOOK_GIVE_UP_AFTER": "1M"}, "ROLLWISE_WEBHOOK_GIVE_UP_AFTER: '1M'"),
        ({"ROLLWISE_TOKEN_CACHE_SECONDS": "5s1m"}, "units out of order"),
        ({"ROLLWISE_REVISION_POLL_SECONDS": "-2"}, "ROLLWISE_REVISION_POLL_SECONDS: '-2' is not"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Settings.from_env(environ)


SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def test_every_time_setting_is_a_duration() -> None:
    """A setting named as a time (``*_seconds``, ``*_interval``, ``*_after``) is declared with
    the type ``Duration``, so that its variable reads the one grammar (docs/spec/durations.md)."""
    timed = [s.name for s in SETTINGS if s.name.endswith(("_seconds", "_interval", "_after"))]
    assert timed
    assert [name for name in timed if SETTINGS_BY_NAME[name].type is not Duration] == []


def test_time_settings_take_durations() -> None:
    """Every setting that is a span of time reads the one duration grammar, or seconds."""
    durations = [s for s in SETTINGS if s.type is Duration]
    assert {s.name for s in durations} >= {
        "heartbeat_seconds", "token_cache_seconds", "revision_poll_seconds",
        "controller_interval", "webhook_give_up_after", "webhook_retry_seconds",
    }  # fmt: skip
    texts = ["500ms", "30s", "1m30s", "2h", "1d12h", "2w", "45"]
    seconds = [0.5, 30.0, 90.0, 7200.0, 129600.0, 1209600.0, 45.0]
    for i, setting in enumerate(durations):
        text, expected = texts[i % len(texts)], seconds[i % len(texts)]
        settings = Settings.from_env({setting.env_var: text})
        assert getattr(settings, setting.name) == expected, setting.name
    assert Settings.from_env({"ROLLWISE_WEBHOOK_GIVE_UP_AFTER": "30d"}).webhook_give_up_after == (
        30 * 86400.0
    )


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

"""The last-known-good rules cache: one file per server and key, atomic writes, and a load that
ignores (with a warning) anything corrupted or foreign instead of raising."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollwise.rules import RulesDocument
from rollwise.snapshot import load_snapshot, save_snapshot, snapshot_path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
URL = "https://flags.example.com"
KEY = "sdk-prod-4f9c2b7e1d"


@pytest.fixture
def document() -> RulesDocument:
    return RulesDocument.from_file(EXAMPLE)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "rollwise"
    ]


# -- where -----------------------------------------------------------------------------------


def test_one_file_per_server_and_key(tmp_path: Path) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    assert path.parent == tmp_path
    assert path.name.startswith("rules-")
    assert path.suffix == ".json"
    assert len(path.stem) == len("rules-") + 16
    assert snapshot_path(str(tmp_path), URL, KEY) == path  # deterministic; str or PathLike
    assert snapshot_path(tmp_path, URL + "/", KEY) == path  # a trailing slash is the same server
    others = {
        snapshot_path(tmp_path, "https://staging.example.com", KEY),
        snapshot_path(tmp_path, URL, "sdk-staging-0000"),
        snapshot_path(tmp_path, URL + "/x", KEY),
    }
    assert path not in others
    assert len(others) == 3


def test_the_key_is_never_in_the_file_name_or_the_file(
    tmp_path: Path, document: RulesDocument
) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    assert KEY not in str(path)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    assert KEY.encode() not in path.read_bytes()


# -- save ------------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path, document: RulesDocument) -> None:
    path = snapshot_path(tmp_path / "cache" / "rollwise", URL, KEY)  # the directory is created
    before = time.time()
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    after = time.time()
    loaded = load_snapshot(path, url=URL, sdk_key=KEY)
    assert loaded is not None
    again, saved_at = loaded
    assert again == document
    assert before - 0.001 <= saved_at <= after  # stored with millisecond precision


def test_the_file_format(tmp_path: Path, document: RulesDocument) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    content = json.loads(path.read_text("utf-8"))
    assert set(content) == {
        "format",
        "format_version",
        "url",
        "key_fingerprint",
        "saved_at",
        "document",
    }
    assert content["format"] == "rollwise-rules-snapshot"
    assert content["format_version"] == 1
    assert content["url"] == URL
    assert content["key_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:16]
    assert content["saved_at"].endswith("Z")
    assert content["document"] == json.loads(json.dumps(document.to_json()))


def test_a_new_save_replaces_the_old_one(tmp_path: Path, document: RulesDocument) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    newer = RulesDocument.from_json({**document.to_json(), "revision": document.revision + 1})
    save_snapshot(path, newer, url=URL, sdk_key=KEY)
    loaded = load_snapshot(path, url=URL, sdk_key=KEY)
    assert loaded is not None
    assert loaded[0].revision == document.revision + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_file_is_private_to_its_owner(tmp_path: Path, document: RulesDocument) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, document: RulesDocument, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    old = path.read_bytes()
    newer = RulesDocument.from_json({**document.to_json(), "revision": 99})

    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="No space left"):
        save_snapshot(path, newer, url=URL, sdk_key=KEY)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    loaded = load_snapshot(path, url=URL, sdk_key=KEY)
    assert loaded is not None
    assert loaded[0] == document


# -- load ------------------------------------------------------------------------------------


def test_no_file_is_none_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert (
        load_snapshot(snapshot_path(tmp_path / "nowhere", URL, KEY), url=URL, sdk_key=KEY) is None
    )
    assert caplog.records == []


def _edit(change: Callable[[dict[str, Any]], object]) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        content = json.loads(raw)
        change(content)
        return json.dumps(content).encode()

    return edit


CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty file": (lambda raw: b"", "not JSON"),
    "truncated": (lambda raw: raw[: len(raw) // 2], "not JSON"),
    "not UTF-8": (lambda raw: b"\xff\xfe" + raw, "not JSON"),
    "a list": (lambda raw: b"[1, 2]", "not a rules snapshot"),
    "a bare rules document": (
        lambda raw: json.dumps(json.loads(raw)["document"]).encode(),
        "not a rules snapshot",
    ),
    "newer format": (_edit(lambda c: c.update(format_version=2)), "unsupported format_version 2"),
    "no saved_at": (_edit(lambda c: c.pop("saved_at")), "saved_at"),
    "bad saved_at": (_edit(lambda c: c.update(saved_at="yesterday")), "saved_at"),
    "naive saved_at": (_edit(lambda c: c.update(saved_at="2026-01-01T00:00:00")), "saved_at"),
    "bad document": (
        _edit(lambda c: c["document"].update(revision="seven")),
        "invalid rules document",
    ),
    "newer schema": (
        _edit(lambda c: c["document"].update(schema_version=999)),
        "invalid rules document",
    ),
    "no document": (_edit(lambda c: c.pop("document")), "invalid rules document"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_corrupted_file_is_ignored_with_a_warning(
    tmp_path: Path, document: RulesDocument, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    corrupt, reason = CORRUPTIONS[case]
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    path.write_bytes(corrupt(path.read_bytes()))
    assert load_snapshot(path, url=URL, sdk_key=KEY) is None
    (message,) = warnings_in(caplog)
    assert str(path) in message
    assert reason in message


@pytest.mark.parametrize(
    ("url", "key", "reason"),
    [
        ("https://staging.example.com", KEY, "another server"),
        ("http://flags.example.com", KEY, "another server"),
        (URL, "sdk-staging-0000", "another SDK key"),
    ],
)
def test_a_foreign_file_is_ignored_with_a_warning(
    tmp_path: Path,
    document: RulesDocument,
    caplog: pytest.LogCaptureFixture,
    url: str,
    key: str,
    reason: str,
) -> None:
    # A snapshot copied or renamed to the path where another server's or key's file belongs.
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)
    assert load_snapshot(path, url=url, sdk_key=key) is None
    (message,) = warnings_in(caplog)
    assert str(path) in message
    assert reason in message
    assert KEY not in message
    assert key not in message


def test_a_trailing_slash_is_not_foreign(tmp_path: Path, document: RulesDocument) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL + "/", sdk_key=KEY)
    assert load_snapshot(path, url=URL, sdk_key=KEY) is not None


def test_an_unreadable_path_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    path.mkdir()  # a directory where the file should be
    assert load_snapshot(path, url=URL, sdk_key=KEY) is None
    (message,) = warnings_in(caplog)
    assert str(path) in message
    assert "cannot be read" in message


def test_load_never_raises(
    tmp_path: Path,
    document: RulesDocument,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = snapshot_path(tmp_path, URL, KEY)
    save_snapshot(path, document, url=URL, sdk_key=KEY)

    def explode(cls: type[RulesDocument], data: Any, *, strict: bool = False) -> RulesDocument:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(RulesDocument, "from_json", classmethod(explode))
    assert load_snapshot(path, url=URL, sdk_key=KEY) is None
    (message,) = warnings_in(caplog)
    assert "RecursionError" in message

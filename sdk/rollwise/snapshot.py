"""The last good rules document on disk, so a client can serve while the server is unreachable.

A client that starts during an outage loads the snapshot its previous run saved and serves those
rules at once. One file per (server URL, SDK key), so clients of two environments sharing a cache
directory never serve each other's rules; the key itself is never written, only fingerprints.
Writes are atomic (temporary file, fsync, ``os.replace``): a crash mid-write leaves the previous
snapshot, never half a file. Loading never raises: a corrupted or foreign file is logged and
ignored, because a bad cache must not stop an application from starting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rollwise.errors import RulesError
from rollwise.events import format_ts
from rollwise.rules import RulesDocument

__all__ = ["load_snapshot", "save_snapshot", "snapshot_path"]

logger = logging.getLogger("rollwise")

_FORMAT = "rollwise-rules-snapshot"
_FORMAT_VERSION = 1


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _normal_url(url: str) -> str:
    """``https://flags.example`` and ``https://flags.example/`` are the same server."""
    return url.rstrip("/")


def _key_fingerprint(sdk_key: str) -> str:
    return _sha256(sdk_key)[:16]


def snapshot_path(cache_dir: str | os.PathLike[str], url: str, sdk_key: str) -> Path:
    """The snapshot file for this server and key: ``<cache_dir>/rules-<16 hex digits>.json``."""
    digest = _sha256(json.dumps([_normal_url(url), sdk_key]))[:16]
    return Path(cache_dir) / f"rules-{digest}.json"


def save_snapshot(path: Path, document: RulesDocument, *, url: str, sdk_key: str) -> None:
    """Write ``document`` to ``path`` atomically, creating the directory if needed.

    Raises ``OSError`` when the file cannot be written; the previous snapshot is then intact and
    no temporary file is left behind. The file is readable by its owner only (``mkstemp``).
    """
    content = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "url": url,
        "key_fingerprint": _key_fingerprint(sdk_key),
        "saved_at": format_ts(time.time()),
        "document": document.to_json(),
    }
    data = json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not possible, nor needed, everywhere."""
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def load_snapshot(path: Path, *, url: str, sdk_key: str) -> tuple[RulesDocument, float] | None:
    """The saved document and when it was saved (epoch seconds), or ``None``.

    ``None`` without a word when there is no file; ``None`` with a warning on the ``rollwise``
    logger, naming the file and the reason, when it is unreadable, corrupted, of another format,
    or written for another server URL or SDK key. Never raises.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        result: tuple[RulesDocument, float] | str = f"cannot be read: {exc}"
    else:
        try:
            result = _parse(raw, url=url, sdk_key=sdk_key)
        except Exception as exc:  # noqa: BLE001 - a bad cache file must never stop start-up
            result = f"cannot be loaded: {type(exc).__name__}: {exc}"
    if isinstance(result, str):
        logger.warning("ignoring the rules snapshot %s: %s", path, result)
        return None
    return result


def _parse(raw: bytes, *, url: str, sdk_key: str) -> tuple[RulesDocument, float] | str:
    """The document and its time, or why the file cannot be used."""
    try:
        content: Any = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return f"corrupted (not JSON: {exc})"
    if not isinstance(content, dict) or content.get("format") != _FORMAT:
        return f'not a rules snapshot (no "format": "{_FORMAT}")'
    version = content.get("format_version")
    if version != _FORMAT_VERSION:
        return f"unsupported format_version {version!r} (this SDK reads {_FORMAT_VERSION})"
    stored_url = content.get("url")
    if not isinstance(stored_url, str) or _normal_url(stored_url) != _normal_url(url):
        return f"saved for another server ({stored_url!r}, not {url!r})"
    if content.get("key_fingerprint") != _key_fingerprint(sdk_key):
        return "saved for another SDK key"
    saved_at = _epoch(content.get("saved_at"))
    if saved_at is None:
        return f"corrupted (saved_at {content.get('saved_at')!r} is not an RFC 3339 time)"
    try:
        document = RulesDocument.from_json(content.get("document"))
    except RulesError as exc:
        return f"invalid rules document: {exc}"
    return document, saved_at


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None

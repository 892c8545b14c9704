"""``GET …/{flags|segments|metrics}/{key}/history``: the versions of a resource, a page at a time.

Each entry carries the version's body and its change as a JSON Patch against the version
before. Computing those patches and encoding large bodies is CPU work a viewer can ask for in a
loop, so none of it runs on the event loop: a page is read, diffed and encoded in a worker
thread, and each entry, immutable once written, is kept encoded in a bounded cache (repeated
reads cost a copy, not a diff). A page holds at most ``limit`` versions and, beyond its first,
no more than ``PAGE_BYTES`` of bodies; ``next_before`` pages to older versions.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import jsonpatch
import msgspec
from cachetools import LRUCache
from starlette.requests import Request
from starlette.responses import Response

from rollwise_server.api.common import authorize, state, threaded
from rollwise_server.errors import BadRequest
from rollwise_server.models import History, HistoryEntry, JsonPatchOperation
from rollwise_server.storage.base import Kind, ResourceVersion, Store

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "PAGE_BYTES", "history"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PAGE_BYTES = 2 * 1024 * 1024
"""Bodies in one page beyond its newest version: a page of a large flag holds fewer versions."""
CACHE_BYTES = 64 * 1024 * 1024

_KINDS: dict[str, Kind] = {"flags": "flag", "segments": "segment", "metrics": "metric"}


class _Entries:
    """Encoded history entries by (env, kind, key, version): a version never changes."""

    def __init__(self) -> None:
        self._cache: LRUCache[tuple[str, str, str, int], bytes] = LRUCache(
            CACHE_BYTES, getsizeof=len
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, int]) -> bytes | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: tuple[str, str, str, int], value: bytes) -> None:
        if len(value) <= CACHE_BYTES // 8:
            with self._lock:
                self._cache[key] = value


def _entry(previous: ResourceVersion | None, entry: ResourceVersion) -> bytes:
    before = {} if previous is None else dict(previous.body)
    after = dict(entry.body)
    for side in (before, after):
        side.pop("version", None)
    diff = msgspec.convert(jsonpatch.make_patch(before, after).patch, list[JsonPatchOperation])
    shown = HistoryEntry(
        version=entry.version, action=entry.action, actor=entry.actor, reason=entry.reason,
        ts=entry.ts, archived=entry.archived, diff=diff, body=dict(entry.body),
    )  # fmt: skip
    return msgspec.json.encode(shown)


def _page(
    store: Store, cache: _Entries, env: str, kind: Kind, key: str, before: int | None, limit: int
) -> bytes:
    """One page, encoded (runs in a worker thread). Only versions not in the cache are read
    and decoded: a page read again costs no diff and no JSON decoding. Entries are added from
    the newest while the page stays within ``PAGE_BYTES`` (diffs and bodies both counted)."""
    numbers = store.history_versions(
        env, kind, key, before=before, limit=limit, max_bytes=PAGE_BYTES
    )
    found = {n: cache.get((env, kind, key, n)) for n in numbers}
    missing = [n for n, entry in found.items() if entry is None]
    by_number: dict[int, ResourceVersion] = {}
    if missing:
        lowest, highest = missing[0], missing[-1]
        span = highest - lowest + (2 if lowest > 1 else 1)  # and the version before, to diff
        versions = store.history(env, kind, key, before=highest + 1, limit=span)
        by_number = {v.version: v for v in versions}
    page: list[bytes] = []
    size = 0
    for number in reversed(numbers):  # the newest first
        entry = found[number]
        if entry is None:
            entry = _entry(by_number.get(number - 1), by_number[number])
            cache.put((env, kind, key, number), entry)
        if page and size + len(entry) > PAGE_BYTES:
            break
        page.append(entry)
        size += len(entry)
    oldest = numbers[len(numbers) - len(page)] if numbers else None
    next_before = oldest if oldest is not None and oldest > 1 else None
    encoded: list[Any] = [msgspec.Raw(entry) for entry in reversed(page)]  # cached as bytes
    return msgspec.json.encode(History(key, encoded, next_before))


def _paging(request: Request) -> tuple[int | None, int]:
    params = request.query_params
    try:
        limit = int(params.get("limit", str(DEFAULT_LIMIT)))
        before = int(params["before"]) if "before" in params else None
    except ValueError:
        raise BadRequest("limit and before must be integers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}")
    if before is not None and not 1 <= before <= 2**62:
        raise BadRequest("before: must be a version (a positive integer)")
    return before, limit


async def history(request: Request) -> Response:
    env, key = request.path_params["env"], request.path_params["key"]
    kind = _KINDS[request.url.path.split("/")[5]]
    await authorize(request, "read", env)
    before, limit = _paging(request)
    app = request.app.state
    if getattr(app, "history_entries", None) is None:
        app.history_entries, app.history_turns = _Entries(), asyncio.Semaphore(1)
    async with app.history_turns:  # one page computed at a time: the loop keeps its share
        body = await threaded(
            _page, state(request).store, app.history_entries, env, kind, key, before, limit
        )
    return Response(body, media_type="application/json")

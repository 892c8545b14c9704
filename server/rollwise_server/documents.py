"""The per-environment rules document, rendered once per revision.

SDKs poll ``GET /api/v1/sdk/rules`` with ``If-None-Match`` and follow the SSE stream; both
serve the same bytes, rendered (and gzip-compressed) once for each revision and reused until
the next one. The revision is the ETag.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import threading
from typing import Any

import attrs

from rollwise.limits import MAX_DOCUMENT_BYTES
from rollwise_server.storage.base import Store

__all__ = ["DocumentCache", "RenderedDocument", "etag_matches"]

logger = logging.getLogger("rollwise.server")


@attrs.frozen
class RenderedDocument:
    env: str
    revision: int
    body: bytes
    gzipped: bytes
    document: dict[str, Any]
    event: bytes = b""
    """The whole server-sent event of this revision, encoded once for every stream."""

    @property
    def etag(self) -> str:
        return f'"{self.revision}"'


def etag_matches(if_none_match: str | None, revision: int) -> bool:
    """Whether an ``If-None-Match`` header names ``revision`` (weak or strong, or ``*``)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/").strip('"')
        if tag == str(revision):
            return True
    return False


class DocumentCache:
    """Holds the latest rendered document of each environment."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._documents: dict[str, RenderedDocument] = {}
        self._renders: dict[str, asyncio.Lock] = {}

    def render_lock(self, env: str) -> asyncio.Lock:
        """One render per environment at a time: streams woken together share its result."""
        lock = self._renders.get(env)
        if lock is None:
            lock = self._renders[env] = asyncio.Lock()
        return lock

    def peek(self, env: str, revision: int) -> RenderedDocument | None:
        """The cached document if it is at ``revision`` (no database access)."""
        cached = self._documents.get(env)
        return cached if cached is not None and cached.revision == revision else None

    def render(self, env: str) -> RenderedDocument:
        """Read and render the environment's current document (runs in a worker thread)."""
        revision, document = self._store.rules_document(env)
        cached = self._documents.get(env)
        if cached is not None and cached.revision >= revision:
            return cached
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        if len(body) > MAX_DOCUMENT_BYTES:  # only data written before the limits existed
            logger.error(
                "rollwise: the rules document of environment %r is %d bytes, over the limit "
                "max_document_bytes = %d: SDKs refuse it and keep their last good rules; "
                "archive or shrink flags", env, len(body), MAX_DOCUMENT_BYTES,
            )  # fmt: skip
        data = b'{"revision":%d,"document":%s}' % (revision, body)
        event = b"id: %d\r\nevent: rules\r\ndata: %s\r\n\r\n" % (revision, data)
        rendered = RenderedDocument(env, revision, body, gzip.compress(body, 6), document, event)
        with self._lock:
            current = self._documents.get(env)
            if current is None or current.revision < revision:
                self._documents[env] = rendered
        return rendered

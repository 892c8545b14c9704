"""Flag change listeners: application code told when a flag changes, instead of polling.

When the client installs a new rules document, each flag whose version changed (or that
appeared, or went away), and each flag using a segment that changed, is one ``FlagChange``.
Listeners run on a thread of their own, in order, after the new document is in use: the sync
thread hands the changes over and goes on (a slow listener never delays the next document),
and a listener that raises is logged and counted, and never stops sync or the other listeners.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Collection, Iterable
from typing import Any

import attrs

from rollwise.rules import Flag, RulesDocument, SegmentRef

__all__ = ["ChangeListener", "FlagChange", "FlagChanges", "changes_between"]

logger = logging.getLogger("rollwise")

MAX_PENDING = 10_000
"""Changes waiting for slow listeners; beyond it the oldest documents' changes are dropped
(counted): a listener that never returns must not grow the process without bound."""


@attrs.frozen
class FlagChange:
    """One flag changed by a new rules document."""

    key: str
    old_version: int | None
    """``None``: the flag is new in this environment."""
    new_version: int | None
    """``None``: the flag is gone (archived)."""
    old: Flag | None
    new: Flag | None
    revision: int
    """The revision of the document that brought the change."""


ChangeListener = Callable[[FlagChange], Any]


def _segments(flag: Flag) -> set[str]:
    return {c.segment for rule in flag.rules for c in rule.conditions if isinstance(c, SegmentRef)}


def changes_between(old: RulesDocument | None, new: RulesDocument) -> list[FlagChange]:
    """The flags that differ from ``old`` to ``new``, by key. The first document (``old`` is
    ``None``) changes nothing: listeners hear of changes after the client has its rules."""
    if old is None:
        return []
    moved_segments = {
        key for key in {*old.segments, *new.segments}
        if old.segments.get(key) != new.segments.get(key)
    }  # fmt: skip
    out = []
    for key in sorted({*old.flags, *new.flags}):
        before, after = old.flags.get(key), new.flags.get(key)
        same_version = before is not None and after is not None and before.version == after.version
        if same_version and not (after is not None and _segments(after) & moved_segments):
            continue
        out.append(FlagChange(
            key, None if before is None else before.version,
            None if after is None else after.version, before, after, new.revision,
        ))  # fmt: skip
    return out


class FlagChanges:
    """The client's change listeners and the thread that calls them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: tuple[tuple[ChangeListener, frozenset[str] | None], ...] = ()
        self._queue: queue.Queue[FlagChange | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.errors = 0
        self.dropped = 0

    def add(self, listener: ChangeListener, flags: Iterable[str] | None = None) -> None:
        keys = None if flags is None else frozenset(flags)
        with self._lock:
            self._listeners = (*self._listeners, (listener, keys))

    def remove(self, listener: ChangeListener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x[0] != listener)

    def publish(self, changes: Collection[FlagChange]) -> None:
        """Hand ``changes`` to the listeners' thread (the caller never waits for them)."""
        if not changes or not self._listeners:
            return
        for change in changes:
            if self._queue.qsize() >= MAX_PENDING:
                self.dropped += 1
                continue
            self._queue.put(change)
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="rollwise-flag-changes", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            change = self._queue.get()
            if change is None:
                return
            for listener, keys in self._listeners:
                if keys is not None and change.key not in keys:
                    continue
                try:
                    listener(change)
                    self.delivered += 1
                except Exception:
                    self.errors += 1
                    logger.exception("rollwise: a flag change listener raised (for %s)",
                                     change.key)  # fmt: skip

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)

"""Change notifications: who is told when an environment's revision moves.

``Broadcaster`` fans a new revision out to every subscriber of that environment in this
process (each SSE stream holds one subscription). With SQLite there is one process and the
writer publishes directly; with several replicas on PostgreSQL, a LISTEN/NOTIFY listener
publishes into each replica's broadcaster, so the streams code does not change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

__all__ = ["Broadcaster", "Subscription"]


class Subscription:
    """One subscriber's view: the newest revision it has not consumed yet."""

    def __init__(self, broadcaster: Broadcaster, env: str) -> None:
        self._broadcaster = broadcaster
        self.env = env
        self._event = asyncio.Event()
        self.latest: int | None = None

    def _offer(self, revision: int) -> None:
        if self.latest is None or revision > self.latest:
            self.latest = revision
            self._event.set()

    async def wait(self, timeout: float | None = None) -> int | None:
        """The newest unseen revision, waiting up to ``timeout`` seconds (``None``: timed out)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return None
        self._event.clear()
        return self.latest

    def close(self) -> None:
        self._broadcaster._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Broadcaster:
    """In-process fan-out of revisions; lives on the server's event loop."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self.revisions: dict[str, int] = {}

    def subscribe(self, env: str) -> Subscription:
        subscription = Subscription(self, env)
        self._subscribers[env].add(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        self._subscribers[subscription.env].discard(subscription)

    def publish(self, env: str, revision: int) -> None:
        """Record ``revision`` for ``env`` and wake its subscribers (older ones are ignored)."""
        if revision <= self.revisions.get(env, -1):
            return
        self.revisions[env] = revision
        for subscription in list(self._subscribers.get(env, ())):
            subscription._offer(revision)

    def connected(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

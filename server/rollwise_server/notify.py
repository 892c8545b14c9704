"""Change notifications: who is told when an environment's revision moves.

``Broadcaster`` fans a new revision out to every subscriber of that environment in this
process (each SSE stream holds one subscription). With SQLite there is one process and the
writer publishes directly; with several replicas on PostgreSQL, a LISTEN/NOTIFY listener
publishes into each replica's broadcaster, so the streams code does not change.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

__all__ = ["Broadcaster", "Subscription"]


class Subscription:
    """One subscriber's view: the newest revision it has not consumed yet."""

    def __init__(self, broadcaster: Broadcaster, env: str, token_id: str | None = None) -> None:
        self._broadcaster = broadcaster
        self.env = env
        self.token_id = token_id
        self._event = asyncio.Event()
        self.latest: int | None = None
        self.closed = False
        """Set when the subscriber's token was revoked or expired: the stream ends."""
        self.removed = False

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

    def end(self) -> None:
        """Its token ended: wake the stream so that it closes."""
        self.closed = True
        self._event.set()

    def close(self) -> None:
        """Unsubscribe (once; closing again does nothing)."""
        self._broadcaster._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Broadcaster:
    """In-process fan-out of revisions; lives on the server's event loop."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._per_token: Counter[str] = Counter()
        self.revisions: dict[str, int] = {}

    def subscribe(self, env: str, token_id: str | None = None) -> Subscription:
        subscription = Subscription(self, env, token_id)
        self._subscribers[env].add(subscription)
        if token_id is not None:
            self._per_token[token_id] += 1
        return subscription

    def streams_of(self, token_id: str) -> int:
        """How many subscriptions ``token_id`` holds (its open streams)."""
        return self._per_token[token_id]

    def token_ids(self) -> list[str]:
        """The tokens of the open subscriptions."""
        return sorted(
            {s.token_id for subs in self._subscribers.values() for s in subs if s.token_id}
        )

    def close_token(self, token_id: str) -> int:
        """End every subscription of ``token_id``; how many there were."""
        ended = [s for subs in self._subscribers.values() for s in subs if s.token_id == token_id]
        for subscription in ended:
            subscription.end()
        return len(ended)

    def _remove(self, subscription: Subscription) -> None:
        if subscription.removed:
            return
        subscription.removed = True
        self._subscribers[subscription.env].discard(subscription)
        token_id = subscription.token_id
        if token_id is not None:
            self._per_token[token_id] -= 1
            if self._per_token[token_id] <= 0:
                del self._per_token[token_id]

    def publish(self, env: str, revision: int) -> None:
        """Record ``revision`` for ``env`` and wake its subscribers (older ones are ignored)."""
        if revision <= self.revisions.get(env, -1):
            return
        self.revisions[env] = revision
        for subscription in list(self._subscribers.get(env, ())):
            subscription._offer(revision)

    def connected(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

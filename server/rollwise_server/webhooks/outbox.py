"""``Webhooks``: what the server calls when a rollout decision should reach people.

``notify`` writes the event into the outbox table (one row per configured endpoint, one
transaction) and wakes the delivery worker; when it returns, the event is on disk and survives
a crash or a restart. It never raises: a database that cannot be written is logged, and the
decision it reports stands (the audit log has it either way).

The body is JSON: Standard Webhooks' ``type`` and ``timestamp`` (when the event happened),
``event`` (the same as ``type``), a Slack-compatible ``text`` line, and the event's own fields
(``env``, ``flag``, ``reason``, ``evidence``, ...).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rollwise_server.storage.base import Store
from rollwise_server.webhooks.endpoints import Endpoints
from rollwise_server.webhooks.signing import parse_secret
from rollwise_server.webhooks.worker import DeliveryWorker, RetryPolicy

if TYPE_CHECKING:
    from rollwise_server.settings import Settings

__all__ = ["Webhooks"]

logger = logging.getLogger("rollwise.server")


class Webhooks:
    """The outbox's front door, and the owner of the delivery worker (if any)."""

    def __init__(
        self,
        store: Store,
        urls: str | Sequence[str] = (),
        *,
        worker: DeliveryWorker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.endpoints = Endpoints.parse(urls if isinstance(urls, str) else tuple(urls))
        self.worker = worker
        self._clock = clock

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> Webhooks:
        """The server's webhooks: the endpoints, the secret and the retry budget of
        ``settings`` (validated there), with a worker to deliver them."""
        endpoints = Endpoints.parse(settings.webhook_urls)
        key = parse_secret(settings.webhook_secret) if endpoints else None
        policy = RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            give_up_after=settings.webhook_give_up_after,
            first_delay=settings.webhook_retry_seconds,
        )
        return cls(
            store, settings.webhook_urls, worker=DeliveryWorker(store, endpoints, key, policy)
        )

    def start(self) -> None:
        if self.worker is not None:
            self.worker.start()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    def notify(self, event: str, text: str, payload: Mapping[str, Any]) -> str | None:
        """Queue ``event`` for every endpoint; its message id (``webhook-id``), or ``None``
        when no endpoint is configured or the outbox could not be written."""
        if not self.endpoints:
            return None
        now = self._clock()
        message_id = f"msg_{uuid.uuid4().hex}"
        moment = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = json.dumps(
            {**payload, "type": event, "timestamp": moment, "event": event, "text": text},
            sort_keys=True,
            separators=(",", ":"),
        )
        try:
            self.store.enqueue_webhook(
                message_id=message_id,
                event=event,
                body=body,
                endpoints=[(endpoint.id, endpoint.label) for endpoint in self.endpoints],
                now=now,
            )
        except Exception:
            logger.exception(
                "rollwise: the webhook event %s (%s) could not be queued and will not be sent",
                event,
                message_id,
            )
            return None
        if self.worker is not None:
            self.worker.wake.set()
        return message_id

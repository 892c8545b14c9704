"""What one server instance holds while it runs: store, auth, documents, broadcaster, metrics,
the ingestion worker, the webhooks, the throttle of failed authentications."""

from __future__ import annotations

import attrs

from rollwise_server.auth import TokenAuth
from rollwise_server.documents import DocumentCache
from rollwise_server.ingest_worker import IngestWorker
from rollwise_server.metrics import Metrics
from rollwise_server.notify import Broadcaster
from rollwise_server.settings import Settings
from rollwise_server.storage.base import Store
from rollwise_server.throttle import AuthThrottle
from rollwise_server.webhooks import Webhooks

__all__ = ["ServerState"]


@attrs.define
class ServerState:
    settings: Settings
    store: Store
    auth: TokenAuth
    documents: DocumentCache
    broadcaster: Broadcaster
    metrics: Metrics
    ingest: IngestWorker
    webhooks: Webhooks
    throttle: AuthThrottle

    def publish(self, env: str, revision: int) -> None:
        """A change moved ``env`` to ``revision``: update the gauge and wake the streams."""
        self.broadcaster.publish(env, revision)
        self.metrics.revision.labels(env).set(revision)

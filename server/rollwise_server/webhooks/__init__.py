"""Outgoing webhooks: Standard Webhooks signatures, a durable outbox, one delivery worker.

``endpoints`` (the configured URLs and their redacted labels), ``signing`` (the
``webhook-signature`` scheme and the ``whsec_`` secret), ``outbox`` (``Webhooks.notify``: an
event queued durably for every endpoint) and ``worker`` (the thread that delivers, retries with
backoff and gives up). The decision record is ``docs/decisions/0009-webhooks.md``.
"""

from __future__ import annotations

from rollwise_server.webhooks.endpoints import Endpoint, Endpoints, redact
from rollwise_server.webhooks.outbox import Webhooks
from rollwise_server.webhooks.signing import new_secret, parse_secret, signature
from rollwise_server.webhooks.worker import DeliveryWorker, RetryPolicy

__all__ = [
    "DeliveryWorker",
    "Endpoint",
    "Endpoints",
    "RetryPolicy",
    "Webhooks",
    "new_secret",
    "parse_secret",
    "redact",
    "signature",
]

"""The webhook outbox: what ``GET /api/v1/webhooks/deliveries`` answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from rollwise_server.models.common import NullableTimestamp, Timestamp

__all__ = ["WebhookDelivery", "WebhookDeliveryPage"]


class WebhookDelivery(msgspec.Struct, frozen=True):
    """One event for one endpoint in the webhook outbox."""

    id: Annotated[int, Meta(description="The delivery's id (paging cursor).")]
    message_id: Annotated[
        str,
        Meta(
            description="The `webhook-id` header: the same on every attempt and endpoint (the "
            "receiver's idempotency key)."
        ),
    ]
    event: Annotated[str, Meta(examples=["rollout.rollback"])]
    endpoint: Annotated[
        str, Meta(description="scheme://host[:port] of the URL (never its path or query).")
    ]
    endpoint_id: Annotated[str, Meta(description="The first 16 hex digits of the URL's SHA-256.")]
    state: Literal["pending", "delivered", "failed"]
    attempts: Annotated[int, Meta(ge=0)]
    created_at: Timestamp
    next_attempt_at: Annotated[NullableTimestamp, Meta(description="While pending.")]
    last_attempt_at: NullableTimestamp
    last_status: Annotated[
        int | None, Meta(description="The HTTP status of the last attempt (null: no answer).")
    ]
    last_error: str | None
    finished_at: Annotated[NullableTimestamp, Meta(description="When it was delivered or failed.")]
    body: Annotated[Any, Meta(description="The JSON body sent (the same on every attempt).")]


class WebhookDeliveryPage(msgspec.Struct, frozen=True):
    deliveries: Annotated[list[WebhookDelivery], Meta(description="Newest first.")]
    next_before: Annotated[
        int | None,
        Meta(description="Pass as `before` for the next page; null on the last one."),
    ]

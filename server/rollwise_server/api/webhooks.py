"""``GET /api/v1/webhooks/deliveries``: the webhook outbox, newest first (admin).

Each row is one event for one endpoint: its state (``pending``, ``delivered``, ``failed``),
the attempts made, the last answer or error, and when the next attempt is due. Endpoints are
shown as ``scheme://host[:port]`` and an id, never as the URL, which may be a credential.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rollwise_server import models
from rollwise_server.api.common import authorize, model_response, state, threaded
from rollwise_server.errors import BadRequest
from rollwise_server.storage.base import WEBHOOK_STATES, WebhookDelivery, WebhookQuery

__all__ = ["ROUTES_WEBHOOKS", "list_deliveries", "render"]

MAX_LIMIT = 1000


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render(delivery: WebhookDelivery) -> models.WebhookDelivery:
    """A delivery as the API shows it."""
    try:
        body: Any = json.loads(delivery.body)
    except ValueError:
        body = delivery.body
    return models.WebhookDelivery(
        id=delivery.id,
        message_id=delivery.message_id,
        event=delivery.event,
        endpoint=delivery.endpoint_label,
        endpoint_id=delivery.endpoint,
        state=delivery.state,  # type: ignore[arg-type]
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        next_attempt_at=_iso(delivery.next_attempt) if delivery.state == "pending" else None,
        last_attempt_at=delivery.last_attempt_at,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        finished_at=delivery.finished_at,
        body=body,
    )


def _integer(params: Any, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise BadRequest(f"{name}: must be an integer from {low} to {high}, not {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be an integer from {low} to {high}, not {value}")
    return value


async def list_deliveries(request: Request) -> Response:
    await authorize(request, "admin", everywhere=True)
    params = request.query_params
    status = params.get("state")
    if status is not None and status not in WEBHOOK_STATES:
        raise BadRequest(f"state: must be one of {', '.join(WEBHOOK_STATES)}, not {status[:40]!r}")
    limit = _integer(params, "limit", 100, 1, MAX_LIMIT) or 100
    before = _integer(params, "before", None, 0, 2**63 - 1)
    query = WebhookQuery(state=status, event=params.get("event"), before_id=before, limit=limit + 1)
    rows = await threaded(state(request).store.webhook_deliveries, query)
    page = rows[:limit]
    next_before = page[-1].id if len(rows) > limit else None
    return model_response(models.WebhookDeliveryPage([render(d) for d in page], next_before))


ROUTES_WEBHOOKS = [
    Route("/api/v1/webhooks/deliveries", list_deliveries, methods=["GET"]),
]

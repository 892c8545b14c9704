"""The audit log: what ``GET /api/v1/audit`` answers."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from rollwise_server.models.common import Timestamp

__all__ = ["AuditEntry", "AuditPage"]


class AuditEntry(msgspec.Struct, frozen=True):
    id: Annotated[int, Meta(ge=1)]
    ts: Timestamp
    actor: Annotated[
        str, Meta(description="Who: the token's owner, or a system actor such as controller.")
    ]
    action: str
    env: str | None
    resource_type: Annotated[
        str, Meta(description="flag, segment, metric, rollout, token or environment.")
    ]
    resource_key: str | None
    version: int | None
    reason: str | None
    details: dict[str, Any]
    owner: Annotated[
        str | None,
        Meta(description="The person behind the change (the token's owner); null for the "
             "controller."),
    ]  # fmt: skip
    token_id: Annotated[
        str | None,
        Meta(description="The token used; null for the controller and for changes made "
             "directly in the database."),
    ]  # fmt: skip


class AuditPage(msgspec.Struct, frozen=True):
    entries: Annotated[list[AuditEntry], Meta(description="Newest first.")]
    next_before: Annotated[
        int | None,
        Meta(description="Pass as `before` for the next page; null on the last one."),
    ]

"""A page of a resource's history: what ``GET …/{key}/history`` answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from rollwise_server.models.common import Timestamp

__all__ = ["History", "HistoryEntry", "JsonPatchOperation"]


class JsonPatchOperation(msgspec.Struct, frozen=True, omit_defaults=True):
    """One RFC 6902 operation."""

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    from_: str | UnsetType = msgspec.field(default=UNSET, name="from")
    value: Any | UnsetType = UNSET


class HistoryEntry(msgspec.Struct, frozen=True):
    version: Annotated[int, Meta(ge=1)]
    action: Annotated[
        str,
        Meta(
            description="flag.create, flag.update, flag.archive, flag.kill, flag.revert, "
            "flag.promote, flag.rollout, segment.create, metric.create, ..."
        ),
    ]
    actor: str
    reason: str | None
    ts: Timestamp
    archived: bool
    diff: Annotated[
        list[JsonPatchOperation],
        Meta(description="JSON Patch from the previous version's body."),
    ]
    body: Annotated[dict[str, Any], Meta(description="The body at this version.")]


class History(msgspec.Struct, frozen=True):
    key: str
    versions: Annotated[
        list[HistoryEntry],
        Meta(
            description="A page of versions, oldest first: the newest `limit` below `before`, "
            "fewer if their bodies pass 2 MiB (never none)."
        ),
    ]
    next_before: Annotated[
        int | None, Meta(description="`before` of the next (older) page; null at version 1.")
    ]

"""The problem document (RFC 9457) every error answers with."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from rollwise_server.models.common import Key

__all__ = ["Problem", "ProblemItem", "RolloutRef"]


class ProblemItem(msgspec.Struct, frozen=True):
    path: Annotated[str, Meta(description="JSON path in the body; '' is the root.")]
    message: str


class RolloutRef(msgspec.Struct, frozen=True, omit_defaults=True):
    env: str
    flag: str
    status: Literal["running", "paused", "awaiting_approval", "errored"] | UnsetType = UNSET


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An error (RFC 9457 problem details)."""

    type: Annotated[str, Meta(extra_json_schema={"format": "uri-reference"})]
    title: str
    status: Annotated[int, Meta(ge=400, le=599)]
    code: Annotated[
        str,
        Meta(
            description="Machine-readable: bad_request, unauthorized, forbidden, not_found, "
            "conflict, payload_too_large, invalid, precondition_required, http (routing) or "
            "internal."
        ),
    ]
    detail: str
    problems: list[ProblemItem] | UnsetType = UNSET
    current_version: (
        Annotated[int, Meta(description="409: the version the resource is at now.")] | UnsetType
    ) = UNSET
    flags: (
        Annotated[
            list[Key],
            Meta(
                description="409 on archiving a segment: the flags that use it; on archiving a "
                "metric: the flags whose active rollouts guard it."
            ),
        ]
        | UnsetType
    ) = UNSET
    rollout: (
        Annotated[
            RolloutRef,
            Meta(
                description="409 on a change refused because of an active rollout (running, "
                "paused or awaiting approval): the rollout, and its status when a new plan is "
                "refused."
            ),
        ]
        | UnsetType
    ) = UNSET

    MEMBERS: ClassVar[frozenset[str]] = frozenset(
        {"problems", "current_version", "flags", "rollout"}
    )
    """The members an error may add to the five of every problem."""

"""Environments: what ``/api/v1/envs`` takes and answers."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from rollwise_server.models.common import Key, Reason, Timestamp

__all__ = ["Environment", "EnvironmentCreate", "EnvironmentList", "EnvironmentUpdate"]

_PROTECTED = (
    "A protected environment (production is, by default): killing or reverting a flag, "
    "promoting one into it, and rolling back or aborting a rollout need a reason (422 without "
    "one), and an approver must be another person than the one who started the rollout or "
    "wrote its plan."
)
Protected = Annotated[
    bool, Meta(description=_PROTECTED, extra={"problem": "must be true or false"})
]


class Environment(msgspec.Struct, frozen=True):
    key: Key
    revision: Annotated[
        int, Meta(ge=0, description="Raised on every change to its flags and segments.")
    ]
    created_at: Timestamp
    protected: Protected


class EnvironmentList(msgspec.Struct, frozen=True):
    environments: list[Environment]


class EnvironmentCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Unknown fields are 422."""

    key: Annotated[Key, Meta(extra={"problem": "must be 1-128 letters, digits, '_', '.' or '-'"})]
    protected: Protected = False
    reason: Reason = None


class EnvironmentUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Protect or unprotect an environment (audited as environment.protect or
    environment.unprotect; nothing changes, and nothing is audited, when it is so already).
    Unknown fields are 422."""

    protected: Annotated[
        bool, Meta(description=_PROTECTED, extra={"problem": "is required: true or false"})
    ]
    reason: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=2000,
            pattern=r"\S",
            description="Why (required, not blank): stored in the audit log.",
            extra={"problem": "is required to change an environment's protection"},
        ),
    ]

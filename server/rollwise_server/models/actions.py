"""The bodies of the flag actions (kill, revert, promote) and of archiving.

They have always ignored fields they do not know (a client may send a whole flag back) and
answered a bad field with 400, so these models allow unknown fields and decode with
``status=400``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from rollwise_server.models.common import KEY_REGEX, MAX_VERSION, Reason, Version

__all__ = ["Promote", "Revert", "VersionedWrite"]


class VersionedWrite(msgspec.Struct, frozen=True):
    """The optional body of archive, kill and the rollout actions."""

    version: Version | None = None
    reason: Reason = None


class Revert(msgspec.Struct, frozen=True):
    to_version: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_VERSION,
            description="The version whose configuration becomes the new version.",
            extra={"problem": "must be the integer version to go back to"},
        ),
    ]
    version: Version | None = None
    reason: Reason = None


class Promote(msgspec.Struct, frozen=True):
    to: Annotated[
        str,
        Meta(
            description="The target environment (not this one).",
            # documented as a key; not refused as one here: a target that is no environment
            # is looked up and answered 404, as it always was
            extra_json_schema={"pattern": KEY_REGEX},
            extra={"problem": "must name the target environment"},
        ),
    ]
    version: Annotated[
        Version | None,
        Meta(
            description="The version of the flag in the target environment this edits; by "
            "default its current version."
        ),
    ] = None
    reason: Reason = None

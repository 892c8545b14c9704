"""OFREP's request and answers (the protocol's shapes: docs/ofrep.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

__all__ = ["OfrepBulk", "OfrepFailure", "OfrepRequest", "OfrepSuccess"]


class OfrepRequest(msgspec.Struct, frozen=True):
    """The evaluation context: its attributes, and ``targetingKey`` (the unit, ``user_id``)."""

    context: Annotated[dict[str, Any], Meta(description="The evaluation context.")] = {}


class OfrepSuccess(msgspec.Struct, frozen=True):
    key: str
    value: Annotated[
        str | bool | int | float | dict[str, Any] | list[Any],
        Meta(description="The variant's typed value (docs/spec/rules.md, Flag types): a string "
             "flag's variant key unless the variant gives one, a boolean, a number, or a JSON "
             "object or array."),
    ]  # fmt: skip
    variant: Annotated[str, Meta(description="The variant's key: the model version.")]
    reason: Annotated[str, Meta(description="TARGETING_MATCH, SPLIT, DEFAULT or DISABLED.")]
    metadata: Annotated[dict[str, Any], Meta(description="flag_version and rule, when known.")] = {}


class OfrepFailure(msgspec.Struct, frozen=True):
    errorCode: Annotated[
        str, Meta(description="FLAG_NOT_FOUND, INVALID_CONTEXT, PARSE_ERROR or GENERAL.")
    ]
    key: str | None = None
    errorDetails: str | None = None


class OfrepBulk(msgspec.Struct, frozen=True):
    flags: Annotated[
        list[dict[str, Any]],
        Meta(description="Each flag: an OfrepSuccess, or an OfrepFailure for that flag."),
    ]
    metadata: dict[str, Any] = {}

"""API tokens: what ``/api/v1/tokens`` takes and answers."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from rollwise_server.models.common import Key, NullableTimestamp, Timestamp

__all__ = ["CreatedToken", "Role", "Token", "TokenCreate", "TokenList"]

Role = Literal["admin", "editor", "approver", "viewer", "sdk"]
"""The roles of ``rollwise_server.auth.ROLES`` (a test keeps them equal)."""
_ROLE_PROBLEM = "must be one of admin, editor, approver, viewer, sdk"


class Token(msgspec.Struct, frozen=True):
    """An API token (its secret is shown once, on creation)."""

    id: str
    name: str
    role: Role
    env: Annotated[str | None, Meta(description="sdk tokens only.")]
    created_at: Timestamp
    created_by: str
    revoked_at: NullableTimestamp
    owner: Annotated[
        str,
        Meta(
            description="The person the token belongs to: the actor in the audit log (an sdk "
            "token's is its name unless given)."
        ),
    ]
    envs: Annotated[
        list[str] | None,
        Meta(
            description="The environments its role applies to; null: all of them. An sdk "
            "token's is its one environment."
        ),
    ]
    expires_at: Annotated[
        NullableTimestamp,
        Meta(description="When it stops working (401 from then on); null: never."),
    ]


class CreatedToken(Token, frozen=True):
    token: Annotated[
        str, Meta(pattern="^rw_", description="The secret: shown only in this answer.")
    ]


class TokenList(msgspec.Struct, frozen=True):
    tokens: list[Token]


class TokenCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Unknown fields are 422, and so is every problem with the fields, each with its path (an
    unknown environment in envs too; an sdk token's unknown env is 404)."""

    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            description="What it is for, e.g. the application or the laptop.",
            extra={"problem": "must be a string of 1-100 characters"},
        ),
    ]
    role: Annotated[Role, Meta(extra={"problem": _ROLE_PROBLEM})]
    owner: Annotated[
        Annotated[str, Meta(min_length=1, max_length=200, pattern="^[^\\x00-\\x1f\\x7f]*$")] | None,
        Meta(
            description="The person it belongs to (1-200 characters, no control characters, "
            "not blank): the actor in the audit log, compared by the two-person rule. "
            "Required, except for an sdk token (its name by default).",
            extra={"problem": "is required: the person the token belongs to (1-200 characters)"},
        ),
    ] = None
    env: Annotated[
        str | None,
        Meta(
            description="The one environment of an sdk token (or give it as envs: [env]); "
            "null for the other roles.",
            extra={"problem": "an sdk token needs its one environment"},
        ),
    ] = None
    envs: Annotated[
        Annotated[list[Key], Meta(min_length=1)] | None,
        Meta(
            description="The environments the role applies to (existing ones); null (the "
            "default): all of them. Tokens, creating environments and the audit log of every "
            "environment need a token for all of them.",
            extra={"problem": "must be a non-empty list of environments, or null (all)"},
        ),
    ] = None
    expires_at: Annotated[
        str | None,
        Meta(
            description="When it stops working, in the future (RFC 3339; no offset means UTC); "
            "null (the default): never.",
            extra_json_schema={"format": "date-time"},
            extra={"problem": "must be an RFC 3339 date-time or null (never)"},
        ),
    ] = None

    openapi: ClassVar[dict[str, Any]] = {
        # Across fields, which a type cannot say: an sdk token has one environment and its
        # owner defaults to its name; the other roles take envs, never env, and need an owner.
        "if": {"required": ["role"], "properties": {"role": {"const": "sdk"}}},
        "then": {
            "anyOf": [
                {"required": ["env"], "properties": {"env": {"$ref": "#/components/schemas/key"}}},
                {"required": ["envs"], "properties": {"envs": {"type": "array", "maxItems": 1}}},
            ],
            "properties": {"envs": {"maxItems": 1}},
        },
        "else": {
            "required": ["owner"],
            "properties": {"env": {"type": "null"}, "owner": {"type": "string"}},
        },
    }

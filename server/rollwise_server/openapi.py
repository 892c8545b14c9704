"""The OpenAPI 3.1 description of the server's HTTP API, served at ``/api/v1/openapi.json``.

``openapi_document()`` builds the whole document from Python literals (the server package does not
ship ``docs/``). The flag and segment shapes are the ``$defs`` of ``docs/spec/rules.schema.json``,
kept here under the same names in ``components/schemas`` with ``$ref`` rewritten (OpenAPI 3.1
schemas are JSON Schema 2020-12). One is restated: the spec constrains the operand of an
``attributeCondition`` with nine ``if``/``then`` pairs under ``allOf``, from which schemathesis
cannot generate requests, so here they are an equivalent ``oneOf`` with one branch per operator
group (the operators are disjoint) and one for unknown operators. ``tests/server/test_openapi.py``
checks that the others stay equal to the spec and that this one accepts exactly what it accepts,
that every route of ``app.ROUTES`` is documented (and nothing else), and runs schemathesis against
a live server so that the statuses and bodies documented here are the ones the server sends.
"""

from __future__ import annotations

import copy
from typing import Any

from rollwise._version import __version__
from rollwise_server.api.results import OPENAPI_PATHS
from rollwise_server.auth import ROLES
from rollwise_server.ingest import MAX_ATTRS, MAX_UNIT_LENGTH
from rollwise_server.settings import Settings

__all__ = ["openapi_document", "rules_schemas"]

Json = dict[str, Any]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"


def _names(names: str) -> list[str]:
    return names.split()


def _ref(name: str, **extra: Any) -> Json:
    return {"$ref": f"#/components/schemas/{name}", **extra}


# --- the rules document: the $defs of docs/spec/rules.schema.json ---------------------------

_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}(?![\s\S])"
_DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+\-][0-9]{2}:[0-9]{2})?)?(?![\s\S])"
)
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z\-][0-9A-Za-z\-]*)"
_SEMVER_PATTERN = (
    r"^v?(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
    rf"(?:-{_IDENT}(?:\.{_IDENT})*)?(?:\+[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*)?(?![\s\S])"
)


def _operand(operators: list[str], required: str | None, value: Json, values: Json) -> Json:
    """The branch of ``attributeCondition`` for ``operators``: the shape of their operand."""
    branch: Json = {"properties": {"operator": {"enum": operators}}}
    if required is not None:
        branch["required"] = [required]
    branch["properties"].update({"value": value, "values": values})
    return branch


def _operands(absent: Json) -> list[Json]:
    """The operand of each known operator; an unknown operator (from a newer server) is kept."""
    branches = [
        _operand(
            ["in", "not_in"],
            "values",
            absent,
            {"type": "array", "items": _ref("stringOrInteger")},
        ),
        _operand(["eq", "neq"], "value", {"type": ["string", "number"]}, absent),
        _operand(["lt", "lte", "gt", "gte"], "value", {"type": "number"}, absent),
        _operand(
            ["between"],
            "values",
            absent,
            {
                "description": "[lo, hi] with lo <= hi; matches lo <= x < hi.",
                "type": "array",
                "prefixItems": [{"type": "number"}, {"type": "number"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        _operand(
            ["starts_with", "ends_with", "contains"],
            "value",
            _ref("stringOrInteger"),
            absent,
        ),
        _operand(
            ["matches"],
            "value",
            {
                "description": "A Python re pattern (re.search) of at most 256 "
                "characters; it must compile.",
                "type": "string",
                "maxLength": 256,
            },
            absent,
        ),
        _operand(
            ["semver_eq", "semver_lt", "semver_lte", "semver_gt", "semver_gte"],
            "value",
            _ref("semver"),
            absent,
        ),
        _operand(["before", "after"], "value", _ref("dateTime"), absent),
        _operand(["exists"], None, absent, absent),
    ]
    known = [name for branch in branches for name in branch["properties"]["operator"]["enum"]]
    return [*branches, {"properties": {"operator": {"not": {"enum": known}}}}]


def rules_schemas() -> Json:
    """The ``$defs`` of ``docs/spec/rules.schema.json``, with ``$ref`` into ``components``.

    ``attributeCondition`` says with ``oneOf`` what the spec says with ``allOf`` of ``if``/``then``.
    """
    absent = _ref("absent")
    return {
        "key": {
            "description": "A flag, segment, variant, rule or environment key: 1-128 ASCII "
            "letters, digits, '_', '.' or '-', starting with a letter or digit.",
            "type": "string",
            "pattern": _KEY_PATTERN,
        },
        "dateTime": {
            "description": "An ISO 8601 date or date-time in the portable form "
            "YYYY-MM-DD[THH:MM[:SS[.ffffff]][Z|+HH:MM|-HH:MM]]. No offset means UTC; a date "
            "alone is its midnight UTC.",
            "type": "string",
            "pattern": _DATE_TIME_PATTERN,
        },
        "semver": {
            "description": "A Semantic Versioning 2.0.0 version with an optional leading 'v'.",
            "type": "string",
            "pattern": _SEMVER_PATTERN,
        },
        "stringOrInteger": {
            "description": "A string, or an integer compared as its decimal string. JSON Schema "
            "counts 1.0 as an integer; the SDK does not, so write integers without a fraction.",
            "type": ["string", "integer"],
        },
        "absent": {
            "description": "A field that this operator does not use: absent or null.",
            "type": "null",
        },
        "segment": {
            "type": "object",
            "properties": {
                "key": _ref(
                    "key",
                    description="Optional; when present, equal to the segment's key in 'segments'.",
                ),
                "description": {"type": "string", "default": ""},
                "conditions": {
                    "description": "All must hold. A segment cannot reference another segment.",
                    "type": "array",
                    "items": _ref("attributeCondition"),
                    "default": [],
                },
            },
        },
        "flag": {
            "type": "object",
            "required": ["version", "variants", "off_variant", "default_variant"],
            "properties": {
                "key": _ref(
                    "key",
                    description="Optional; when present, equal to the flag's key in 'flags'.",
                ),
                "version": {
                    "description": "The flag's version, raised on every change; exposures "
                    "carry it.",
                    "type": "integer",
                    "minimum": 1,
                },
                "enabled": {
                    "description": "false kills the flag: it serves off_variant to everyone "
                    "(reason DISABLED).",
                    "type": "boolean",
                    "default": True,
                },
                "salt": {
                    "description": "Bucketing salt (docs/spec/bucketing.md); defaults to the "
                    "flag key.",
                    "type": "string",
                    "minLength": 1,
                },
                "description": {"type": "string", "default": ""},
                "variants": {
                    "description": "The model versions this flag can serve, by variant key. "
                    "At least one.",
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": _ref("key"),
                    "additionalProperties": _ref("variant"),
                },
                "off_variant": {
                    "description": "A key of 'variants': the known-safe model served when the "
                    "flag is disabled or outside its schedule.",
                    "type": "string",
                },
                "default_variant": {
                    "description": "A key of 'variants': served when no rule matches.",
                    "type": "string",
                },
                "cohort_attributes": {
                    "description": "Context attributes logged with each exposure as cohort "
                    "dimensions.",
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "uniqueItems": True,
                    "default": [],
                },
                "schedule": {
                    "oneOf": [{"type": "null"}, _ref("schedule")],
                    "default": None,
                },
                "rules": {
                    "description": "Tried in order; the first rule whose conditions all hold "
                    "serves.",
                    "type": "array",
                    "items": _ref("rule"),
                    "default": [],
                },
            },
        },
        "variant": {
            "type": "object",
            "properties": {
                "payload": {
                    "description": "Any JSON value, handed to the application read-only.",
                    "default": None,
                }
            },
        },
        "schedule": {
            "description": "The flag is active when start <= now < end; either end may be null "
            "(open).",
            "type": "object",
            "properties": {
                "start": {"oneOf": [{"type": "null"}, _ref("dateTime")], "default": None},
                "end": {"oneOf": [{"type": "null"}, _ref("dateTime")], "default": None},
            },
        },
        "rule": {
            "type": "object",
            "required": ["id", "serve"],
            "properties": {
                "id": _ref("key", description="Unique within the flag; Assignment.rule."),
                "conditions": {
                    "description": "All must hold; an empty list holds for every context.",
                    "type": "array",
                    "items": _ref("condition"),
                    "default": [],
                },
                "serve": _ref("serve"),
            },
        },
        "serve": {
            "description": "Exactly one of 'variant' or 'split' (the other absent or null).",
            "type": "object",
            "oneOf": [
                {
                    "required": ["variant"],
                    "properties": {
                        "variant": {
                            "type": "string",
                            "description": "A key of the flag's variants.",
                        },
                        "split": {"type": "null"},
                    },
                },
                {
                    "required": ["split"],
                    "properties": {
                        "variant": {"type": "null"},
                        "split": {
                            "description": "Weighted arms in declared order; weights sum to "
                            "between 1 and 2**32; each variant at most once.",
                            "type": "array",
                            "minItems": 1,
                            "items": _ref("splitArm"),
                        },
                        "bucket_by": {
                            "description": "The context attribute whose value is the "
                            "bucketing unit.",
                            "type": "string",
                            "minLength": 1,
                            "default": "user_id",
                        },
                    },
                },
            ],
        },
        "splitArm": {
            "type": "object",
            "required": ["variant", "weight"],
            "properties": {
                "variant": {"type": "string", "description": "A key of the flag's variants."},
                "weight": {"type": "integer", "minimum": 0, "maximum": 2**32},
            },
        },
        "condition": {
            "description": "A segment reference or an attribute condition.",
            "if": {"type": "object", "required": ["segment"]},
            "then": _ref("segmentRef"),
            "else": _ref("attributeCondition"),
        },
        "segmentRef": {
            "description": "Holds when every condition of the segment holds; negated, when not "
            "all of them hold.",
            "type": "object",
            "required": ["segment"],
            "properties": {
                "segment": _ref("key", description="A key of the document's segments."),
                "negate": {"type": "boolean", "default": False},
            },
        },
        "attributeCondition": {
            "description": "The operand (value or values) has the shape its operator needs.",
            "type": "object",
            "required": ["attribute", "operator"],
            "not": {"required": ["segment"]},
            "properties": {
                "attribute": {
                    "description": "The name of a context attribute.",
                    "type": "string",
                    "minLength": 1,
                },
                "operator": {
                    "description": "One of the operators of docs/spec/rules.md. An operator the "
                    "SDK does not know (from a newer server) is accepted, and its rule never "
                    "matches.",
                    "type": "string",
                    "minLength": 1,
                },
                "value": {"description": "The operand of one-value operators; null means absent."},
                "values": {
                    "description": "The operand of in, not_in and between; always a list.",
                    "type": ["array", "null"],
                },
                "negate": {"type": "boolean", "default": False},
                "case_insensitive": {
                    "description": "Compare strings after str.casefold() (re.IGNORECASE for "
                    "matches); ignored by the other operators.",
                    "type": "boolean",
                    "default": False,
                },
            },
            "oneOf": _operands(absent),
        },
    }


def _rules_document() -> Json:
    """The top level of ``docs/spec/rules.schema.json``: what ``GET /sdk/rules`` answers."""
    return {
        "description": "The JSON document that the flag server publishes per environment and "
        "the SDKs evaluate (docs/spec/rules.md). Keys are sorted; archived flags and segments "
        "are left out.",
        "type": "object",
        "required": ["schema_version", "environment", "revision"],
        "properties": {
            "schema_version": {
                "description": "The version of this schema. An SDK rejects a newer version "
                "(UnsupportedSchemaError).",
                "const": 1,
            },
            "environment": _ref("key"),
            "revision": {
                "description": "Monotonically increasing per environment; a new document has a "
                "higher revision.",
                "type": "integer",
                "minimum": 0,
            },
            "segments": {
                "description": "Reusable sets of conditions, by segment key.",
                "type": "object",
                "propertyNames": _ref("key"),
                "additionalProperties": _ref("segment"),
                "default": {},
            },
            "flags": {
                "description": "The flags, by flag key.",
                "type": "object",
                "propertyNames": _ref("key"),
                "additionalProperties": _ref("flag"),
                "default": {},
            },
        },
    }


# --- the API's own schemas -------------------------------------------------------------------

_TIMESTAMP: Json = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339, UTC, e.g. 2026-11-01T09:30:00.123456Z.",
}
_NULLABLE_TIMESTAMP: Json = {**_TIMESTAMP, "type": ["string", "null"]}
_IGNORED: Json = {
    "description": "Ignored: the server sets it (so that a GET answer can be sent back)."
}
_VERSION: Json = {
    "description": "The version this write edits (optimistic concurrency), if If-Match is absent. "
    "Ignored on create.",
    "type": "integer",
    "minimum": 1,
}
_FLAG_FIELDS = (
    "enabled", "salt", "description", "variants", "off_variant", "default_variant",
    "cohort_attributes", "schedule", "rules",
)  # fmt: skip


def _api_schemas() -> Json:
    rules = rules_schemas()
    flag_properties = {name: rules["flag"]["properties"][name] for name in _FLAG_FIELDS}
    metadata = {
        "archived": {
            "type": "boolean",
            "description": "Archived (deleted): out of the rules document, history kept.",
        },
        "updated_at": _TIMESTAMP,
        "updated_by": {"type": "string", "description": "The actor (token name) of the change."},
    }
    writable_metadata = {"archived": _IGNORED, "updated_at": _IGNORED, "updated_by": _IGNORED}
    problem_item = {
        "type": "object",
        "required": ["path", "message"],
        "properties": {
            "path": {"type": "string", "description": "JSON path in the body; '' is the root."},
            "message": {"type": "string"},
        },
    }
    return {
        "Problem": {
            "description": "An error (RFC 9457 problem details).",
            "type": "object",
            "required": ["type", "title", "status", "code", "detail"],
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "code": {
                    "type": "string",
                    "description": "Machine-readable: bad_request, unauthorized, forbidden, "
                    "not_found, conflict, payload_too_large, invalid, precondition_required, "
                    "http (routing) or internal.",
                },
                "detail": {"type": "string"},
                "problems": {"type": "array", "items": problem_item},
                "current_version": {
                    "type": "integer",
                    "description": "409: the version the resource is at now.",
                },
                "flags": {
                    "type": "array",
                    "items": _ref("key"),
                    "description": "409 on archiving a segment: the flags that use it.",
                },
            },
        },
        "ValidationProblem": {
            "description": "422: every problem of the request, by JSON path.",
            "allOf": [_ref("Problem"), {"required": ["problems"]}],
        },
        "Reason": {
            "description": "Why the change is made; stored in the history and the audit log.",
            "type": ["string", "null"],
            "maxLength": 2000,
        },
        "FlagWrite": {
            "description": "A flag as in the rules document, plus its key. Unknown fields, "
            "unknown variants and unknown segments are 422.",
            "type": "object",
            "required": ["variants", "off_variant", "default_variant"],
            "properties": {
                "key": _ref("key", description="Required on create; ignored on replace."),
                "version": _VERSION,
                **flag_properties,
                "reason": _ref("Reason"),
                **writable_metadata,
            },
            "additionalProperties": False,
        },
        "FlagCreate": {"allOf": [_ref("FlagWrite"), {"required": ["key"]}]},
        "Flag": {
            "description": "A flag as in the rules document, plus its key and metadata.",
            "allOf": [
                _ref("flag"),
                {
                    "required": _names(
                        "key version enabled salt variants off_variant default_variant"
                        " cohort_attributes schedule rules archived updated_at updated_by"
                    ),
                    "properties": {"key": _ref("key"), **metadata},
                },
            ],
        },
        "FlagList": {
            "type": "object",
            "required": ["flags"],
            "properties": {"flags": {"type": "array", "items": _ref("Flag")}},
        },
        "SegmentWrite": {
            "description": "A segment as in the rules document, plus its key.",
            "type": "object",
            "properties": {
                "key": _ref("key", description="Required on create; ignored on replace."),
                "version": _VERSION,
                "description": rules["segment"]["properties"]["description"],
                "conditions": rules["segment"]["properties"]["conditions"],
                "reason": _ref("Reason"),
                **writable_metadata,
            },
            "additionalProperties": False,
        },
        "SegmentCreate": {"allOf": [_ref("SegmentWrite"), {"required": ["key"]}]},
        "Segment": {
            "description": "A segment as in the rules document, plus its key, version and "
            "metadata.",
            "allOf": [
                _ref("segment"),
                {
                    "required": _names("key version conditions archived updated_at updated_by"),
                    "properties": {
                        "key": _ref("key"),
                        "version": {"type": "integer", "minimum": 1},
                        **metadata,
                    },
                },
            ],
        },
        "SegmentList": {
            "type": "object",
            "required": ["segments"],
            "properties": {"segments": {"type": "array", "items": _ref("Segment")}},
        },
        "VersionedWrite": {
            "description": "The optional body of archive and kill.",
            "type": "object",
            "properties": {"version": _VERSION, "reason": _ref("Reason")},
        },
        "Revert": {
            "type": "object",
            "required": ["to_version"],
            "properties": {
                "to_version": {
                    "description": "The version whose configuration becomes the new version.",
                    "type": "integer",
                    "minimum": 1,
                },
                "version": _VERSION,
                "reason": _ref("Reason"),
            },
        },
        "Promote": {
            "type": "object",
            "required": ["to"],
            "properties": {
                "to": _ref("key", description="The target environment (not this one)."),
                "version": {
                    **_VERSION,
                    "description": "The version of the flag in the target environment this "
                    "edits; by default its current version.",
                },
                "reason": _ref("Reason"),
            },
        },
        "JsonPatchOperation": {
            "description": "One RFC 6902 operation.",
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
                "path": {"type": "string"},
                "from": {"type": "string"},
                "value": {},
            },
        },
        "History": {
            "type": "object",
            "required": ["key", "versions"],
            "properties": {
                "key": {"type": "string"},
                "versions": {
                    "description": "Every version, oldest first.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": _names("version action actor reason ts archived diff body"),
                        "properties": {
                            "version": {"type": "integer", "minimum": 1},
                            "action": {
                                "type": "string",
                                "description": "flag.create, flag.update, flag.archive, "
                                "flag.kill, flag.revert, flag.promote, segment.create, ...",
                            },
                            "actor": {"type": "string"},
                            "reason": {"type": ["string", "null"]},
                            "ts": _TIMESTAMP,
                            "archived": {"type": "boolean"},
                            "diff": {
                                "description": "JSON Patch from the previous version's body.",
                                "type": "array",
                                "items": _ref("JsonPatchOperation"),
                            },
                            "body": {"type": "object", "description": "The body at this version."},
                        },
                    },
                },
            },
        },
        "Environment": {
            "type": "object",
            "required": ["key", "revision", "created_at"],
            "properties": {
                "key": _ref("key"),
                "revision": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Raised on every change in the environment.",
                },
                "created_at": _TIMESTAMP,
            },
        },
        "EnvironmentList": {
            "type": "object",
            "required": ["environments"],
            "properties": {"environments": {"type": "array", "items": _ref("Environment")}},
        },
        "EnvironmentCreate": {
            "type": "object",
            "required": ["key"],
            "properties": {"key": _ref("key"), "reason": _ref("Reason")},
        },
        "Token": {
            "description": "An API token (its secret is shown once, on creation).",
            "type": "object",
            "required": ["id", "name", "role", "env", "created_at", "created_by", "revoked_at"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "role": {"enum": list(ROLES)},
                "env": {"type": ["string", "null"], "description": "sdk tokens only."},
                "created_at": _TIMESTAMP,
                "created_by": {"type": "string"},
                "revoked_at": _NULLABLE_TIMESTAMP,
            },
        },
        "CreatedToken": {
            "allOf": [
                _ref("Token"),
                {
                    "required": ["token"],
                    "properties": {
                        "token": {
                            "type": "string",
                            "pattern": "^rw_",
                            "description": "The secret: shown only in this answer.",
                        }
                    },
                },
            ]
        },
        "TokenList": {
            "type": "object",
            "required": ["tokens"],
            "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
        },
        "TokenCreate": {
            "type": "object",
            "required": ["name", "role"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                    "description": "Who uses it; the actor in the audit log.",
                },
                "role": {"enum": list(ROLES)},
                "env": {
                    "type": ["string", "null"],
                    "description": "The environment of an sdk token (required for sdk, null "
                    "otherwise).",
                },
            },
            "if": {"properties": {"role": {"const": "sdk"}}},
            "then": {"required": ["env"], "properties": {"env": _ref("key")}},
            "else": {"properties": {"env": {"type": "null"}}},
        },
        "AuditEntry": {
            "type": "object",
            "required": _names(
                "id ts actor action env resource_type resource_key version reason details"
            ),
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "ts": _TIMESTAMP,
                "actor": {"type": "string"},
                "action": {"type": "string"},
                "env": {"type": ["string", "null"]},
                "resource_type": {
                    "type": "string",
                    "description": "flag, segment, token or environment.",
                },
                "resource_key": {"type": ["string", "null"]},
                "version": {"type": ["integer", "null"]},
                "reason": {"type": ["string", "null"]},
                "details": {"type": "object"},
            },
        },
        "AuditPage": {
            "type": "object",
            "required": ["entries", "next_before"],
            "properties": {
                "entries": {
                    "description": "Newest first.",
                    "type": "array",
                    "items": _ref("AuditEntry"),
                },
                "next_before": {
                    "type": ["integer", "null"],
                    "description": "Pass as `before` for the next page; null on the last one.",
                },
            },
        },
        "RulesDocument": _rules_document(),
        **_event_schemas(),
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["ok", "unavailable"]},
                "version": {"type": "string"},
                "detail": {"type": "string"},
            },
        },
    }


def _event_schemas() -> Json:
    max_events = Settings().max_batch_events
    attrs = {
        "description": f"Cohort attributes: at most {MAX_ATTRS}, each a string of at most "
        f"{MAX_UNIT_LENGTH} characters, a finite number, a boolean or null.",
        "type": ["object", "null"],
        "maxProperties": MAX_ATTRS,
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": MAX_UNIT_LENGTH},
                {"type": ["number", "boolean", "null"]},
            ]
        },
    }
    common = {
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "Made by the SDK; a redelivered event with the same id is a duplicate.",
        },
        "ts": {"type": "string", "format": "date-time"},
        "unit_type": {"type": "string", "minLength": 1, "maxLength": 64},
        "unit": {"type": "string", "minLength": 1, "maxLength": MAX_UNIT_LENGTH},
        "attrs": attrs,
    }
    schemas: Json = {
        "Exposure": {
            "type": "object",
            "required": ["id", "ts", "flag", "flag_version", "variant", "unit_type", "unit"],
            "properties": {
                **common,
                "flag": _ref("key"),
                "flag_version": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                "variant": _ref("key"),
                "rule": {"oneOf": [_ref("key"), {"type": "null"}]},
            },
        },
        "Outcome": {
            "type": "object",
            "required": ["id", "ts", "metric", "unit_type", "unit", "value"],
            "properties": {**common, "metric": _ref("key"), "value": {"type": "number"}},
        },
    }
    for kind in ("Exposure", "Outcome"):
        events = {"type": "array", "maxItems": max_events, "items": _ref(kind)}
        schemas[f"{kind}Batch"] = {
            "description": f'{{"events": [...]}} or a bare array; at most {max_events} events '
            "(413 above). Each event is validated on its own: invalid ones are counted and "
            "reported, the others stored.",
            "oneOf": [
                {"type": "object", "required": ["events"], "properties": {"events": events}},
                events,
            ],
        }
    schemas["IngestResult"] = {
        "type": "object",
        "required": ["accepted", "duplicates", "rejected", "errors"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0, "description": "Newly stored."},
            "duplicates": {
                "type": "integer",
                "minimum": 0,
                "description": "Already stored (same id): nothing added.",
            },
            "rejected": {"type": "integer", "minimum": 0},
            "errors": {
                "description": "The first 100 rejected events and why.",
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["index", "id", "problems"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "id": {"type": ["string", "null"]},
                        "problems": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["path", "message"],
                                "properties": {
                                    "path": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }
    return schemas


# --- parameters, responses, operations -------------------------------------------------------

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Malformed request: invalid JSON, a wrong type, a bad header value.", "Problem"),
    401: ("No bearer token, or an unknown or revoked one.", "Problem"),
    403: ("The token's role may not do this.", "Problem"),
    404: ("No such environment or resource.", "Problem"),
    409: ("A stale version (current_version says the latest), or a conflicting state.", "Problem"),
    413: ("The body is larger than the server accepts.", "Problem"),
    422: ("Invalid: every problem with its JSON path.", "ValidationProblem"),
    428: ("Name the version you edit: If-Match or `version` in the body.", "Problem"),
}

_ETAG = {
    "ETag": {
        "description": 'The version (or revision) as a strong entity tag, e.g. "3".',
        "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
    }
}


def _json(schema: Json, description: str, headers: Json | None = None) -> Json:
    response: Json = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses: int, **descriptions: str) -> Json:
    out: Json = {}
    for status in statuses:
        description, schema = _ERRORS[status]
        description = descriptions.get(f"e{status}", description)
        out[str(status)] = {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": _ref(schema)}},
        }
    return out


def _parameter(where: str, name: str, schema: Json, description: str, **extra: Any) -> Json:
    return {"name": name, "in": where, "schema": schema, "description": description, **extra}


def _path(name: str, schema: Json, description: str, example: str | None = None) -> Json:
    extra = {} if example is None else {"example": example}
    return _parameter("path", name, schema, description, required=True, **extra)


_ENV = _path("env", _ref("key"), "The environment, e.g. production.", "production")
_REASON = _parameter(
    "query",
    "reason",
    {"type": "string", "maxLength": 2000},
    "Why: stored in the history and audit log (a `reason` in the body wins).",
)
_IF_MATCH = _parameter(
    "header",
    "If-Match",
    {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'},
    'The version this write edits, e.g. "3" (the ETag of a GET); instead of `version` in the '
    "body. A stale one is 409.",
)

_PERMISSIONS = {
    "read": "Roles viewer, editor, approver, admin.",
    "write": "Roles editor, admin.",
    "admin": "Role admin.",
    "sdk": "Role sdk (the token's environment).",
}


_EU_RULE: Json = {
    "id": "eu-ramp",
    "conditions": [
        {"segment": "eu"},
        {"attribute": "amount", "operator": "lt", "value": 500},
    ],
    "serve": {"split": [{"variant": "v2", "weight": 5}, {"variant": "v1", "weight": 95}]},
}
_FLAG_EXAMPLE: Json = {
    "description": "Which fraud model scores card transactions",
    "variants": {
        "v1": {"payload": {"model": "fraud-2025-06"}},
        "v2": {"payload": {"model": "fraud-2025-11"}},
    },
    "off_variant": "v1",
    "default_variant": "v1",
    "cohort_attributes": ["country", "amount"],
    "rules": [_EU_RULE],
}
_CONDITIONS_EXAMPLE = [{"attribute": "country", "operator": "in", "values": ["DE", "FR", "NL"]}]
_EVENT_EXAMPLE: Json = {
    "id": "0f8e3c1a-5b7d-4c2e-9a10-3d6f2b8c4e71",
    "ts": "2026-11-01T09:30:00.123Z",
    "unit_type": "user_id",
    "unit": "u-1842",
    "attrs": {"country": "DE", "amount": 120.5},
}
_BODY_EXAMPLES: dict[str, Json] = {
    "createEnvironment": {"key": "canary", "reason": "a canary cluster"},
    "createToken": {"name": "checkout-service", "role": "sdk", "env": "production"},
    "createFlag": {"key": "fraud-model-eu", **_FLAG_EXAMPLE, "reason": "EU pilot"},
    "replaceFlag": {**_FLAG_EXAMPLE, "version": 1, "reason": "5% of small EU payments on v2"},
    "archiveFlag": {"reason": "replaced by fraud-model-eu"},
    "killFlag": {"reason": "v2 flags too many good payments"},
    "revertFlag": {"to_version": 1, "reason": "back to the first configuration"},
    "promoteFlag": {"to": "staging", "reason": "try the production setup in staging"},
    "createSegment": {
        "key": "nordics",
        "conditions": [
            {"attribute": "country", "operator": "in", "values": ["DK", "FI", "NO", "SE"]}
        ],
    },
    "replaceSegment": {
        "version": 1,
        "description": "Customers in the euro-area pilot countries",
        "conditions": _CONDITIONS_EXAMPLE,
    },
    "archiveSegment": {"reason": "the pilot is over"},
    "ingestExposures": {
        "events": [
            {
                **_EVENT_EXAMPLE,
                "flag": "fraud-model",
                "flag_version": 1,
                "variant": "v2",
                "rule": "eu-ramp",
            }
        ]
    },
    "ingestEvents": {"events": [{**_EVENT_EXAMPLE, "metric": "chargeback", "value": 1}]},
}


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    responses: Json,
    *,
    permission: str | None,
    description: str = "",
    parameters: list[Json] | None = None,
    body: Json | None = None,
    body_required: bool = True,
) -> Json:
    operation: Json = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if permission is None:
        operation["security"] = []
        operation["description"] = description or summary
    else:
        operation["description"] = f"{description}\n\n{_PERMISSIONS[permission]}".strip()
        operation["x-rollwise-permission"] = permission
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        media: Json = {"schema": body}
        if operation_id in _BODY_EXAMPLES:
            media["example"] = copy.deepcopy(_BODY_EXAMPLES[operation_id])
        operation["requestBody"] = {"required": body_required, "content": {JSON: media}}
    operation["responses"] = responses
    return operation


def _resource_paths(kind: str, title: str, example: str) -> Json:
    """The flag or segment endpoints (one code path on the server)."""
    plural = f"{kind}s"
    key = _path("key", _ref("key"), f"The {kind} key.", example)
    base = f"/api/v1/envs/{{env}}/{plural}"
    paths: Json = {
        base: {
            "parameters": [_ENV],
            "get": _operation(
                f"list{title}s",
                plural,
                f"List the {plural} of an environment",
                {
                    "200": _json(_ref(f"{title}List"), f"The {plural}, by key."),
                    **_errors(401, 403, 404),
                },
                permission="read",
                parameters=[
                    _parameter(
                        "query",
                        "archived",
                        {"type": "boolean", "default": False},
                        f"Include archived {plural}.",
                    )
                ],
            ),
            "post": _operation(
                f"create{title}",
                plural,
                f"Create a {kind}",
                {
                    "201": _json(_ref(title), "Created at version 1 (or re-created).", _ETAG),
                    **_errors(400, 401, 403, 404, 409, 413, 422, e409=f"The {kind} exists."),
                },
                permission="write",
                description=f"Creates the {kind} at version 1, or re-creates an archived one at "
                "its next version.",
                parameters=[_REASON],
                body=_ref(f"{title}Create"),
            ),
        },
        f"{base}/{{key}}": {
            "parameters": [_ENV, key],
            "get": _operation(
                f"get{title}",
                plural,
                f"Get a {kind} (archived ones too)",
                {"200": _json(_ref(title), f"The {kind}.", _ETAG), **_errors(401, 403, 404)},
                permission="read",
            ),
            "put": _operation(
                f"replace{title}",
                plural,
                f"Replace a {kind}",
                {
                    "200": _json(_ref(title), f"The {kind} at its new version.", _ETAG),
                    **_errors(400, 401, 403, 404, 409, 413, 422, 428),
                },
                permission="write",
                description="The whole new configuration; the version it edits in If-Match or "
                "`version` (428 if neither). Replacing an archived one restores it.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref(f"{title}Write"),
            ),
            "delete": _operation(
                f"archive{title}",
                plural,
                f"Archive a {kind}",
                {
                    "200": _json(_ref(title), f"The archived {kind}."),
                    **_errors(
                        400,
                        401,
                        403,
                        404,
                        409,
                        413,
                        e409="A stale version, archived already"
                        + (", or still used by flags (`flags`)." if kind == "segment" else "."),
                    ),
                },
                permission="write",
                description=f"The {kind} leaves the rules document; its history stays. The "
                "version is optional (If-Match or the body): without one, the current version.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("VersionedWrite"),
                body_required=False,
            ),
        },
        f"{base}/{{key}}/history": {
            "parameters": [_ENV, key],
            "get": _operation(
                f"get{title}History",
                plural,
                f"Every version of a {kind}",
                {
                    "200": _json(
                        _ref("History"), "Actor, time, reason and the change as a JSON Patch."
                    ),
                    **_errors(401, 403, 404),
                },
                permission="read",
            ),
        },
    }
    return paths


def _flag_action_paths() -> Json:
    key = _path("key", _ref("key"), "The flag key.", "fraud-model")
    base = "/api/v1/envs/{env}/flags/{key}"
    flag = _ref("Flag")
    return {
        f"{base}/kill": {
            "parameters": [_ENV, key],
            "post": _operation(
                "killFlag",
                "flags",
                "Kill a flag: serve its off variant to everyone now",
                {
                    "200": _json(flag, "The flag at its new version, enabled false."),
                    **_errors(400, 401, 403, 404, 409, 413, e409="A stale version, or archived."),
                },
                permission="write",
                description="A new version with enabled false. Without a version it applies "
                "to whatever version is current.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("VersionedWrite"),
                body_required=False,
            ),
        },
        f"{base}/revert": {
            "parameters": [_ENV, key],
            "post": _operation(
                "revertFlag",
                "flags",
                "Revert a flag to an earlier version's configuration",
                {
                    "200": _json(flag, "The flag at its new version."),
                    **_errors(
                        400,
                        401,
                        403,
                        404,
                        409,
                        413,
                        422,
                        e404="No such environment, flag, or version to revert to.",
                        e422="The old configuration is not valid any more (e.g. a segment is "
                        "gone).",
                    ),
                },
                permission="write",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("Revert"),
            ),
        },
        f"{base}/promote": {
            "parameters": [_ENV, key],
            "post": _operation(
                "promoteFlag",
                "flags",
                "Copy a flag's configuration to another environment",
                {
                    "200": _json(flag, "The flag updated in the target environment."),
                    "201": _json(flag, "The flag created in the target environment."),
                    **_errors(
                        400,
                        401,
                        403,
                        404,
                        409,
                        413,
                        422,
                        e422="Not valid in the target environment (e.g. a segment missing).",
                    ),
                },
                permission="write",
                description="A normal, audited change in the target environment.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("Promote"),
            ),
        },
    }


def _admin_paths() -> Json:
    audit_filters = [
        _parameter(
            "query",
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            "Page size.",
        ),
        _parameter(
            "query",
            "before",
            {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            "Entries with an id below this one (`next_before` of the previous page).",
        ),
        _parameter("query", "env", {"type": "string"}, "Only this environment."),
        _parameter(
            "query", "resource_type", {"type": "string"}, "flag, segment, token or environment."
        ),
        _parameter("query", "resource_key", {"type": "string"}, "Only this resource key."),
        _parameter("query", "flag", {"type": "string"}, "Only this flag (sets both above)."),
        _parameter("query", "segment", {"type": "string"}, "Only this segment."),
        _parameter("query", "actor", {"type": "string"}, "Only this actor (token name)."),
        _parameter("query", "action", {"type": "string"}, "Only this action, e.g. flag.kill."),
        _parameter("query", "since", {"type": "string", "format": "date-time"}, "ts >= since."),
        _parameter("query", "until", {"type": "string", "format": "date-time"}, "ts < until."),
    ]
    return {
        "/api/v1/envs": {
            "get": _operation(
                "listEnvironments",
                "environments",
                "List the environments",
                {
                    "200": _json(_ref("EnvironmentList"), "Every environment."),
                    **_errors(401, 403),
                },
                permission="read",
            ),
            "post": _operation(
                "createEnvironment",
                "environments",
                "Create an environment",
                {
                    "201": _json(_ref("Environment"), "Created, at revision 0."),
                    **_errors(400, 401, 403, 409, 413, 422, e409="The environment exists."),
                },
                permission="admin",
                parameters=[_REASON],
                body=_ref("EnvironmentCreate"),
            ),
        },
        "/api/v1/tokens": {
            "get": _operation(
                "listTokens",
                "tokens",
                "List the API tokens (never their secrets)",
                {"200": _json(_ref("TokenList"), "Every token."), **_errors(401, 403)},
                permission="admin",
            ),
            "post": _operation(
                "createToken",
                "tokens",
                "Create an API token",
                {
                    "201": _json(_ref("CreatedToken"), "Created; the secret is in `token`."),
                    **_errors(400, 401, 403, 404, 413, 422, e404="The sdk token's environment."),
                },
                permission="admin",
                body=_ref("TokenCreate"),
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "parameters": [_path("token_id", {"type": "string"}, "The token's id (tok_...).")],
            "delete": _operation(
                "revokeToken",
                "tokens",
                "Revoke an API token",
                {
                    "200": _json(_ref("Token"), "Revoked (revoking twice is not an error)."),
                    **_errors(401, 403, 404),
                },
                permission="admin",
            ),
        },
        "/api/v1/audit": {
            "get": _operation(
                "listAudit",
                "audit",
                "The audit log: every change, newest first",
                {
                    "200": _json(_ref("AuditPage"), "One page."),
                    **_errors(400, 401, 403, e400="A bad limit or before."),
                },
                permission="read",
                description="Every change to flags, segments, tokens and environments "
                "(append-only), filtered and paginated.",
                parameters=audit_filters,
            ),
        },
    }


def _sdk_paths() -> Json:
    exposure_body = _ref("ExposureBatch")
    ingest_errors = _errors(
        400, 401, 403, 413, e400="Not JSON, not a batch, or bad gzip; nothing stored."
    )
    content_encoding = _parameter(
        "header",
        "Content-Encoding",
        {"enum": ["gzip", "identity"]},
        "gzip: the body is gzip-compressed.",
    )
    return {
        "/api/v1/sdk/rules": {
            "get": _operation(
                "getRules",
                "sdk",
                "The rules document of the token's environment",
                {
                    "200": _json(
                        _ref("RulesDocument"),
                        "The document; gzip-encoded when asked (Accept-Encoding: gzip).",
                        _ETAG,
                    ),
                    "304": {
                        "description": "Unchanged since the revision in If-None-Match.",
                        "headers": _ETAG,
                    },
                    **_errors(401, 403),
                },
                permission="sdk",
                description="ETag is the revision; send it back in If-None-Match for a 304.",
                parameters=[
                    _parameter(
                        "header",
                        "If-None-Match",
                        {"type": "string"},
                        'Entity tags, e.g. "12" (the ETag of the last answer), or *.',
                    ),
                ],
            ),
        },
        "/api/v1/sdk/stream": {
            "get": _operation(
                "streamRules",
                "sdk",
                "Server-sent events: a `rules` event for every new revision",
                {
                    "200": {
                        "description": "An endless text/event-stream. Each `rules` event has "
                        'the revision as its id and data {"revision": n, "document": {...}}; '
                        "the first is the current document unless Last-Event-ID names it. "
                        "Comment lines are heartbeats.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 403, e400="Last-Event-ID is not a revision."),
                },
                permission="sdk",
                parameters=[
                    _parameter(
                        "header",
                        "Last-Event-ID",
                        {"type": "string", "pattern": "^[0-9]{1,18}$"},
                        "The last revision received, on reconnect.",
                    ),
                    _parameter(
                        "query",
                        "last_event_id",
                        {"type": "string", "pattern": "^[0-9]{1,18}$"},
                        "The same, for clients that cannot set headers.",
                    ),
                ],
            ),
        },
        "/api/v1/sdk/exposures": {
            "post": _operation(
                "ingestExposures",
                "sdk",
                "Post a batch of exposures",
                {"200": _json(_ref("IngestResult"), "What was stored."), **ingest_errors},
                permission="sdk",
                description="Idempotent on the event id.",
                parameters=[content_encoding],
                body=exposure_body,
            ),
        },
        "/api/v1/sdk/events": {
            "post": _operation(
                "ingestEvents",
                "sdk",
                "Post a batch of outcome events",
                {"200": _json(_ref("IngestResult"), "What was stored."), **ingest_errors},
                permission="sdk",
                description="Idempotent on the event id.",
                parameters=[content_encoding],
                body=_ref("OutcomeBatch"),
            ),
        },
    }


def _operations_paths() -> Json:
    health = _ref("Health")
    return {
        "/healthz": {
            "get": _operation(
                "healthz",
                "operations",
                "Liveness: the process is up",
                {"200": _json(health, "Up.")},
                permission=None,
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "operations",
                "Readiness: the database answers",
                {"200": _json(health, "Ready."), "503": _json(health, "Not ready.")},
                permission=None,
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "operations",
                "Prometheus metrics",
                {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                permission=None,
            )
        },
        "/api/v1/openapi.json": {
            "get": _operation(
                "openapi",
                "operations",
                "This OpenAPI document",
                {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                permission=None,
            )
        },
    }


_DESCRIPTION = """\
The rollwise flag server: flags and segments per environment, their history and the audit log,
API tokens, and the SDK endpoints (the rules document, its change stream, event ingestion).

* Authentication: `Authorization: Bearer rw_...`. Roles: sdk (one environment's rules and
  events), viewer (read), editor (change flags and segments), approver, admin (everything).
* Errors are `application/problem+json` (RFC 9457) with a machine-readable `code`; 422 lists
  every problem with its JSON path.
* Optimistic concurrency: a write names the version it edits (If-Match or `version` in the
  body); a stale one is 409 with `current_version`.
* Every GET also answers HEAD.
"""


def _rollout_paths() -> Json:
    key = _path("key", _ref("key"), "The flag key.", "fraud-model")
    base = "/api/v1/envs/{env}/flags/{key}/rollout"
    rollout: Json = {
        "type": "object",
        "required": ["flag", "env", "version", "plan", "state", "updated_at"],
        "properties": {
            "flag": {"type": "string"},
            "env": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "plan": {"type": "object"},
            "state": {"type": "object", "required": ["status"]},
            "updated_at": {"type": "string"},
        },
    }
    action = _path(
        "action",
        {"enum": ["start", "pause", "resume", "advance", "approve", "rollback"]},
        "The transition.",
        "start",
    )
    return {
        base: {
            "parameters": [_ENV, key],
            "get": _operation(
                "getRollout", "rollouts", "The flag's rollout: plan, state and evidence",
                {"200": _json(rollout, "The rollout."), **_errors(401, 403, 404)},
                permission="read",
            ),
            "put": _operation(
                "putRollout", "rollouts", "Set the rollout plan (a draft, or a paused rollout's)",
                {
                    "200": _json(rollout, "The rollout with its new plan."),
                    **_errors(400, 401, 403, 404, 409, 413, 422),
                },
                permission="write",
                parameters=[_IF_MATCH],
                body={"type": "object"},
            ),
        },
        f"{base}/{{action}}": {
            "parameters": [_ENV, key, action],
            "post": _operation(
                "rolloutAction", "rollouts", "Start, pause, resume, advance, approve or roll back",
                {
                    "200": _json(rollout, "The rollout in its new state."),
                    **_errors(400, 401, 403, 404, 409, 413, 422),
                },
                permission="write",
                description="approve needs the approver permission (and, in production, "
                "another person than the one who started the rollout).",
                parameters=[_IF_MATCH],
                body={"type": "object"},
                body_required=False,
            ),
        },
    }  # fmt: skip


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of the server (a new dict on every call)."""
    paths: Json = {
        **_operations_paths(),
        **_admin_paths(),
        **_resource_paths("flag", "Flag", "fraud-model"),
        **_flag_action_paths(),
        **_resource_paths("segment", "Segment", "eu"),
        **_sdk_paths(),
        **_rollout_paths(),
        **copy.deepcopy(OPENAPI_PATHS),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rollwise flag server",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "operations", "description": "Health, readiness, metrics, this document."},
            {"name": "environments", "description": "staging, production and more."},
            {"name": "flags", "description": "Flags: edit, kill, revert, promote, history."},
            {"name": "segments", "description": "Reusable sets of conditions."},
            {"name": "tokens", "description": "API tokens and their roles (admin)."},
            {"name": "audit", "description": "Who changed what, when and why."},
            {"name": "sdk", "description": "For SDKs: rules, change stream, events."},
            {"name": "rollouts", "description": "Staged rollouts with guardrails."},
            {"name": "results", "description": "Per-cohort sufficient statistics for analysis."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token: rw_ followed by 43 URL-safe characters.",
                }
            },
            "schemas": {**rules_schemas(), **_api_schemas()},
        },
    }

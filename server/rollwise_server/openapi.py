"""The OpenAPI 3.1 description of the server's HTTP API, served at ``/api/v1/openapi.json``.

``openapi_document()`` assembles it from three sources (decision 0015): the rules document's
shapes are the ``$defs`` of the SDK's packaged ``rollwise/spec/rules.schema.json``
(``rules_schemas``, ``$ref`` pointed into ``components``); the shapes declared as msgspec models
(``rollwise_server.models``) are generated from them; the rest — paths, parameters, responses,
security, and the shapes not yet moved to models — is written here. ``tests/server/
test_openapi.py`` checks that the rules components are the spec's, that every route of
``app.ROUTES`` is documented (and nothing else), and runs schemathesis against a live server so
that the statuses and bodies documented here are the ones the server sends.
"""

from __future__ import annotations

import copy
from typing import Any

from rollwise._version import __version__
from rollwise.spec import rules_schema
from rollwise_server.api.results import OPENAPI_PATHS
from rollwise_server.api.rollouts import ACTIONS
from rollwise_server.models import MODELS, components
from rollwise_server.settings import Settings

__all__ = ["openapi_document", "rules_schemas"]

Json = dict[str, Any]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"


def _names(names: str) -> list[str]:
    return names.split()


def _ref(name: str, **extra: Any) -> Json:
    return {"$ref": f"#/components/schemas/{name}", **extra}


# --- the rules document: rollwise/spec/rules.schema.json, loaded --------------------------


def _moved(value: Any) -> Any:
    """A fragment of the rules schema with its ``$ref``s pointing into ``components``."""
    if isinstance(value, dict):
        return {
            k: v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _moved(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_moved(v) for v in value]
    return value


def rules_schemas() -> Json:
    """The ``$defs`` of the SDK's ``rules.schema.json`` under the same names, with ``$ref``
    into ``components``, and ``RulesDocument``, its top level (what ``GET /sdk/rules``
    answers). Loaded from the package, never restated here."""
    spec = rules_schema()
    schemas: Json = _moved(spec["$defs"])
    top = {k: spec[k] for k in ("description", "type", "required", "properties")}
    schemas["RulesDocument"] = _moved(top)
    return schemas


# --- the API's own schemas -------------------------------------------------------------------

_TIMESTAMP: Json = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339, UTC, e.g. 2026-11-01T09:30:00.123456Z.",
}
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
        "updated_by": {
            "type": "string",
            "description": "The actor of the change: the owner of the token used.",
        },
    }
    writable_metadata = {
        "archived": _IGNORED, "updated_at": _IGNORED, "updated_by": _IGNORED, "stale": _IGNORED,
    }  # fmt: skip
    return {
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
                        " cohort_attributes schedule rules archived updated_at updated_by stale"
                    ),
                    "properties": {
                        "key": _ref("key"),
                        **metadata,
                        "stale": {
                            "type": "boolean",
                            "description": "Past its schedule's end: it serves only its off "
                            "variant and can be cleaned up.",
                        },
                    },
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
        **_metric_schemas(),
        **_event_schemas(),
    }


def _metric_schemas() -> Json:
    """The metric catalogue's create body: ``MetricWrite`` (a model) with its key required."""
    return {"MetricCreate": {"allOf": [_ref("MetricWrite"), {"required": ["key"]}]}}


def _event_schemas() -> Json:
    """A batch is ``{"events": [...]}`` (a model) or the bare array of its events."""
    max_events = Settings().max_batch_events
    schemas: Json = {}
    for kind in ("Exposure", "Outcome", "Prediction"):
        events = {"type": "array", "maxItems": max_events, "items": _ref(kind)}
        schemas[f"{kind}Batch"] = {
            "description": f'{{"events": [...]}} or a bare array; at most {max_events} events '
            "(413 above). Each event is validated on its own: invalid ones are counted and "
            "reported, the others stored.",
            "oneOf": [_ref(f"{kind}Events"), events],
        }
    return schemas


# --- parameters, responses, operations -------------------------------------------------------

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Malformed request: invalid JSON, a wrong type, a bad header value.", "Problem"),
    401: (
        "No bearer token (Authorization: Bearer rw_...; any other scheme is 401), or an "
        "unknown, revoked or expired one.",
        "Problem",
    ),
    403: ("The token's role may not do this, or not in this environment.", "Problem"),
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


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_THROTTLED = (
    "Too many failed authentications from this address (`auth_failures_per_minute`, code "
    "too_many_auth_failures): every request from it that needs a token is refused until the "
    "minute is over."
)
_STREAMS = (
    f"{_THROTTLED} Or the token has `max_streams_per_token` streams open already (code "
    "too_many_streams): poll the rules meanwhile."
)
_STORAGE_FULL = (
    "The database cannot be written: the disk is full (code storage_full). Nothing was "
    "stored; send it again later."
)


def _retry_later(description: str) -> Json:
    return {
        "description": description,
        "headers": copy.deepcopy(_RETRY_AFTER),
        "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
    }


def _add_operational_errors(method: str, operation: Json) -> None:
    """What any authenticated operation may answer besides its own statuses: 429 when its
    address is throttled (or, for the stream, its token has too many open), and for writes
    503 when the disk is full."""
    responses = operation["responses"]
    streams = operation["operationId"] == "streamRules"
    responses.setdefault("429", _retry_later(_STREAMS if streams else _THROTTLED))
    if method in ("post", "put", "patch", "delete"):
        responses.setdefault("503", _retry_later(_STORAGE_FULL))


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


def _page_parameters(what: str, most: int, default: int, lowest: int, highest: int) -> list[Json]:
    """``limit`` and ``before``: the paging of the audit log, deliveries and history."""
    return [
        _parameter(
            "query",
            "limit",
            {"type": "integer", "minimum": 1, "maximum": most, "default": default},
            "Page size.",
        ),
        _parameter(
            "query",
            "before",
            {"type": "integer", "minimum": lowest, "maximum": highest},
            f"{what} below this one (`next_before` of the previous page).",
        ),
    ]


_HISTORY_PAGING = _page_parameters("Versions", 100, 20, 1, 2**62)
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
_IN_ENV = "The role must apply to the environment: a token whose `envs` leave it out gets 403."
_EVERYWHERE = "The token must apply to every environment: one with `envs` gets 403."


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
    "createEnvironment": {"key": "canary", "protected": False, "reason": "a canary cluster"},
    "updateEnvironment": {"protected": True, "reason": "it serves customers from today"},
    "createToken": {
        "name": "alice-laptop",
        "owner": "alice@example.com",
        "role": "editor",
        "envs": ["staging"],
        "expires_at": "2030-01-01T00:00:00Z",
    },
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
    "createMetric": {
        "key": "chargeback",
        "kind": "binary",
        "direction": "lower_is_better",
        "description": "The payment was disputed within 90 days",
        "default_tolerance": 0.001,
        "owner": "risk-team",
    },
    "replaceMetric": {
        "version": 1,
        "kind": "binary",
        "direction": "higher_is_better",
        "description": "The model flagged a payment later confirmed as fraud",
        "default_tolerance": -0.005,
        "owner": "risk-team",
        "reason": "tolerate a 0.5 point drop",
    },
    "archiveMetric": {"reason": "replaced by chargeback"},
    "putRollout": {
        "control": "v1",
        "candidate": "v2",
        "rule": "eu-ramp",
        "stages": [
            {"share": 0.05, "min_duration": "30m", "min_units": 1000},
            {"share": 0.25, "min_duration": "1d", "min_units": 20000, "approval": True},
            {"share": 1},
        ],
        "guardrails": [
            {"metric": "fraud_caught", "cohorts": ["country"]},
            {"metric": "latency_ms", "tolerance": 0.05, "relative": True},
        ],
        "deadline": "2030-01-01T00:00:00Z",
        "on_breach": "rollback",
        "attribution_window": "14d",
        "reason": "fraud-2025-11 for small EU payments",
    },
    "rolloutAction": {"reason": "the plan is reviewed"},
    "ofrepEvaluateFlag": {"context": {"targetingKey": "user-42", "country": "DE"}},
    "ofrepEvaluateFlags": {"context": {"targetingKey": "user-42", "country": "DE"}},
    "putMonitor": {
        "variant": "v2",
        "baseline": {
            "kind": "window",
            "since": "2026-11-18T00:00:00Z",
            "until": "2026-11-25T00:00:00Z",
        },
        "metrics": [{"metric": "fraud_caught", "cohorts": ["country"]}],
        "drift": ["country"],
        "interval": "10m",
        "reason": "watch v2 after its rollout",
    },
    "putLessons": {"text": "The NL cohort needed its own threshold.", "reason": "review meeting"},
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
    everywhere: bool = False,
) -> Json:
    """One operation. ``everywhere``: only a token for every environment may call it (the
    document says so with ``x-rollwise-all-environments``)."""
    operation: Json = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if permission is None:
        operation["security"] = []
        operation["description"] = description or summary
    else:
        who = _PERMISSIONS[permission]
        if everywhere:
            who = f"{who} {_EVERYWHERE}"
        operation["description"] = f"{description}\n\n{who}".strip()
        operation["x-rollwise-permission"] = permission
        if everywhere:
            operation["x-rollwise-all-environments"] = True
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        media: Json = {"schema": body}
        if operation_id in _BODY_EXAMPLES:
            media["example"] = copy.deepcopy(_BODY_EXAMPLES[operation_id])
        operation["requestBody"] = {"required": body_required, "content": {JSON: media}}
    operation["responses"] = responses
    return operation


_MANAGED = (
    "a change that the flag's active rollout forbids (`rollout` names it: a managed flag's "
    "rule, control and candidate, salt and the candidate's reach are frozen, and it cannot "
    "be archived)"
)
_CONFLICTS = {
    "flag": (
        f"A stale version, or {_MANAGED}.",
        f"A stale version, archived already, or {_MANAGED}.",
    ),
    "segment": (
        "A stale version, or archived.",
        "A stale version, archived already, or still used by flags (`flags`).",
    ),
    "metric": (
        "A stale version, or archived.",
        "A stale version, archived already, or a guardrail of active rollouts (`flags`).",
    ),
}
_LIST_PARAMETERS = {
    "flag": [
        _parameter(
            "query",
            "stale",
            {"type": "boolean", "default": False},
            "Only the stale flags (past their schedule's end).",
        )
    ],
    "segment": [],
    "metric": [],
}
_LIST_DESCRIPTIONS = {
    "flag": "The flags, by key.",
    "segment": "The segments, by key.",
    "metric": "The metrics, by key, and the metrics with events that it does not define.",
}


def _resource_paths(kind: str, title: str, example: str) -> Json:
    """The flag, segment or metric endpoints (one code path on the server)."""
    plural = f"{kind}s"
    key = _path("key", _ref("key"), f"The {kind} key.", example)
    base = f"/api/v1/envs/{{env}}/{plural}"
    replace_conflict, archive_conflict = _CONFLICTS[kind]
    paths: Json = {
        base: {
            "parameters": [_ENV],
            "get": _operation(
                f"list{title}s",
                plural,
                f"List the {plural} of an environment",
                {
                    "200": _json(_ref(f"{title}List"), _LIST_DESCRIPTIONS[kind]),
                    **_errors(401, 403, 404),
                },
                permission="read",
                parameters=[
                    _parameter(
                        "query",
                        "archived",
                        {"type": "boolean", "default": False},
                        f"Include archived {plural}.",
                    ),
                    *_LIST_PARAMETERS[kind],
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
                    **_errors(400, 401, 403, 404, 409, 413, 422, 428, e409=replace_conflict),
                },
                permission="write",
                description="The whole new configuration; the version it edits in If-Match or "
                "`version` (428 if neither). An archived one is 409: create it again to "
                "restore it.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref(f"{title}Write"),
            ),
            "delete": _operation(
                f"archive{title}",
                plural,
                f"Archive a {kind}",
                {
                    "200": _json(_ref(title), f"The archived {kind}."),
                    **_errors(400, 401, 403, 404, 409, 413, e409=archive_conflict),
                },
                permission="write",
                description=(
                    "The flag leaves the rules document; its history stays."
                    if kind == "flag"
                    else "The segment leaves the rules document; its history stays."
                    if kind == "segment"
                    else "The metric leaves the catalogue; its history and events stay."
                )
                + " The version is optional (If-Match or the body): without one, the current "
                "version.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("VersionedWrite"),
                body_required=False,
            ),
        },
        f"{base}/{{key}}/history": {
            "parameters": [_ENV, key, *_HISTORY_PAGING],
            "get": _operation(
                f"get{title}History",
                plural,
                f"The versions of a {kind}, a page at a time",
                {
                    "200": _json(
                        _ref("History"), "Actor, time, reason and the change as a JSON Patch."
                    ),
                    **_errors(400, 401, 403, 404),
                },
                permission="read",
            ),
        },
    }
    return paths


_NEEDS_REASON = "In a protected environment a reason is required (422, problem path `reason`)."


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
                    **_errors(
                        400,
                        401,
                        403,
                        404,
                        409,
                        413,
                        422,
                        e409="A stale version, or archived.",
                        e422="No reason, in a protected environment (problem path `reason`).",
                    ),
                },
                permission="write",
                description="A new version with enabled false. Without a version it applies "
                "to whatever version is current. An active rollout of the flag ends with it "
                f"(aborted, end_reason killed). {_NEEDS_REASON}",
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
                        e409=f"A stale version, archived, or {_MANAGED}.",
                        e422="No reason, in a protected environment (problem path `reason`); "
                        "or the old configuration is not valid any more (e.g. a segment is "
                        "gone).",
                    ),
                },
                permission="write",
                description=_NEEDS_REASON,
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
                        e403="The token may not read the flag here, or change flags in the "
                        "target environment.",
                        e409="A stale version, the flag archived here, or a change that the "
                        "flag's active rollout in the target environment forbids (`rollout`).",
                        e422="No reason, into a protected environment (problem path "
                        "`reason`); or not valid in the target environment (e.g. a segment "
                        "missing).",
                    ),
                },
                permission="write",
                description="A normal, audited change in the target environment (read "
                "permission here, write permission there). Into a protected environment a "
                "reason is required (422, problem path `reason`).",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("Promote"),
            ),
        },
    }


def _admin_paths() -> Json:
    audit_filters = [
        *_page_parameters("Entries with an id", 1000, 100, 0, 2**63 - 1),
        _parameter(
            "query",
            "env",
            {"type": "string"},
            "Only this environment (403 if the token's role does not apply to it).",
        ),
        _parameter(
            "query",
            "resource_type",
            {"type": "string"},
            "flag, segment, metric, rollout, monitor, token or environment.",
        ),
        _parameter("query", "resource_key", {"type": "string"}, "Only this resource key."),
        _parameter(
            "query",
            "flag",
            {"type": "string"},
            "Only this flag: its own entries and those of its rollout and monitors (instead of "
            "the two above).",
        ),
        _parameter("query", "segment", {"type": "string"}, "Only this segment."),
        _parameter("query", "metric", {"type": "string"}, "Only this metric."),
        _parameter(
            "query",
            "actor",
            {"type": "string"},
            "Only this actor (a token's owner, or controller).",
        ),
        _parameter("query", "action", {"type": "string"}, "Only this action, e.g. flag.kill."),
        _parameter("query", "since", {"type": "string", "format": "date-time"}, "ts >= since."),
        _parameter("query", "until", {"type": "string", "format": "date-time"}, "ts < until."),
    ]
    environment = _ref("Environment")
    return {
        "/api/v1/envs": {
            "get": _operation(
                "listEnvironments",
                "environments",
                "List the environments",
                {
                    "200": _json(
                        _ref("EnvironmentList"),
                        "Every environment the token's role applies to.",
                    ),
                    **_errors(401, 403),
                },
                permission="read",
            ),
            "post": _operation(
                "createEnvironment",
                "environments",
                "Create an environment",
                {
                    "201": _json(environment, "Created, at revision 0."),
                    **_errors(400, 401, 403, 409, 413, 422, e409="The environment exists."),
                },
                permission="admin",
                parameters=[_REASON],
                body=_ref("EnvironmentCreate"),
                everywhere=True,
            ),
        },
        "/api/v1/envs/{env}": {
            "parameters": [_ENV],
            "get": _operation(
                "getEnvironment",
                "environments",
                "Get an environment",
                {"200": _json(environment, "The environment."), **_errors(401, 403, 404)},
                permission="read",
            ),
            "patch": _operation(
                "updateEnvironment",
                "environments",
                "Protect or unprotect an environment",
                {
                    "200": _json(environment, "The environment as it is now."),
                    **_errors(
                        400,
                        401,
                        403,
                        404,
                        413,
                        422,
                        e422="Every problem: protected missing or not a boolean, no reason, "
                        "an unknown field.",
                    ),
                },
                permission="admin",
                description="Audited, with the reason.",
                body=_ref("EnvironmentUpdate"),
            ),
        },
        "/api/v1/tokens": {
            "get": _operation(
                "listTokens",
                "tokens",
                "List the API tokens (never their secrets)",
                {"200": _json(_ref("TokenList"), "Every token."), **_errors(401, 403)},
                permission="admin",
                everywhere=True,
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
                description="A token belongs to a person (`owner`), has a role that applies to "
                "some environments (`envs`) or all of them, and may expire (`expires_at`).",
                body=_ref("TokenCreate"),
                everywhere=True,
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
                everywhere=True,
            ),
        },
        "/api/v1/audit": {
            "get": _operation(
                "listAudit",
                "audit",
                "The audit log: every change, newest first",
                {
                    "200": _json(_ref("AuditPage"), "One page."),
                    **_errors(
                        400,
                        401,
                        403,
                        e400="A bad limit, before, since or until.",
                        e403="The token's role may not read, or not in the environment of `env`.",
                    ),
                },
                permission="read",
                description="Every change to flags, segments, metrics, rollouts, tokens and "
                "environments (append-only), filtered and paginated. A token whose role applies "
                "to some environments (`envs`) sees only theirs.",
                parameters=audit_filters,
            ),
        },
    }


def _webhook_paths() -> Json:
    parameters = [
        _parameter(
            "query",
            "state",
            {"enum": ["pending", "delivered", "failed"]},
            "Only deliveries in this state.",
        ),
        _parameter("query", "event", {"type": "string"}, "Only this event, e.g. rollout.rollback."),
        *_page_parameters("Deliveries with an id", 1000, 100, 0, 2**63 - 1),
    ]
    return {
        "/api/v1/webhooks/deliveries": {
            "get": _operation(
                "listWebhookDeliveries",
                "webhooks",
                "The webhook outbox: every event for every endpoint, newest first",
                {
                    "200": _json(_ref("WebhookDeliveryPage"), "One page."),
                    **_errors(400, 401, 403, e400="A bad state, limit or before."),
                },
                permission="admin",
                description="Each delivery's state (pending, delivered, failed), attempts, "
                "last answer or error and next attempt; endpoints are named by scheme, host "
                "and port only.",
                parameters=parameters,
                everywhere=True,
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
        "/api/v1/sdk/predictions": {
            "post": _operation(
                "ingestPredictions",
                "sdk",
                "Post a batch of shadow-run predictions",
                {"200": _json(_ref("IngestResult"), "What was stored."), **ingest_errors},
                permission="sdk",
                description="Idempotent on the event id. Sent by client.shadow.",
                parameters=[content_encoding],
                body=_ref("PredictionBatch"),
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
                "Readiness: the database answers and can be written",
                {
                    "200": _json(health, "Ready."),
                    "503": _json(
                        health,
                        "Not ready: the database does not answer, or cannot be written (a "
                        "write failed for lack of disk space and none has committed since).",
                    ),
                },
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
The rollwise flag server: flags, segments and the metric catalogue per environment, their
history and the audit log, staged rollouts, API tokens, and the SDK endpoints (the rules
document, its change stream, event ingestion).

* Authentication: `Authorization: Bearer rw_...` (only the Bearer scheme; anything else is
  401). Roles: sdk (one environment's rules and events), viewer (read), editor (change flags,
  segments, metrics and rollouts), approver (read, approve rollout stages), admin
  (everything). A token belongs to a person (its `owner`, the actor in the audit log); its
  role applies to the environments it lists (`envs`) or to all of them (403 elsewhere), and
  it may expire.
* Protected environments (production by default): killing, reverting or promoting a flag
  into one, and rolling back or aborting a rollout, need a `reason` (422 without one); an
  approver must be another person than the one who started the rollout or wrote its plan.
* An active rollout (running, paused or awaiting approval) owns its flag: edits that would
  change what it controls are 409, and killing the flag aborts it.
* Errors are `application/problem+json` (RFC 9457) with a machine-readable `code`; 422 lists
  every problem with its JSON path.
* Optimistic concurrency: a write names the version it edits (If-Match or `version` in the
  body); a stale one is 409 with `current_version`.
* Every GET also answers HEAD.
* Faults and limits: an address that fails authentication `auth_failures_per_minute` times in
  a minute gets 429 on every request that needs a token until the minute is over; a token may
  hold `max_streams_per_token` streams (429 above); a write that finds the disk full is 503
  `storage_full` and stores nothing. Both carry Retry-After.
"""


def _rollout_paths() -> Json:
    key = _path("key", _ref("key"), "The flag key.", "fraud-model")
    base = "/api/v1/envs/{env}/flags/{key}/rollout"
    rollout = _ref("Rollout")
    action = _path(
        "action",
        {"enum": list(ACTIONS)},
        "The transition.",
        "start",
    )
    return {
        base: {
            "parameters": [_ENV, key],
            "get": _operation(
                "getRollout", "rollouts", "The flag's rollout: plan, state and evidence",
                {"200": _json(rollout, "The rollout.", _ETAG), **_errors(401, 403, 404)},
                permission="read",
            ),
            "put": _operation(
                "putRollout", "rollouts", "Set the rollout plan (a draft)",
                {
                    "200": _json(rollout, "The rollout with its new plan, a draft.", _ETAG),
                    **_errors(
                        400, 401, 403, 404, 409, 413, 422,
                        e409="A stale version, the flag archived, or the rollout active "
                        "(running, paused or awaiting approval: its plan is frozen; `rollout` "
                        "says which and its status).",
                        e422="Every problem of the plan, by path (checked against the flag and "
                        "the environment's metric catalogue).",
                    ),
                },
                permission="write",
                description="The plan can change while the rollout is a draft or has ended "
                "(completed, rolled back or aborted), not while it is active.",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("RolloutPlan"),
            ),
        },
        f"{base}/{{action}}": {
            "parameters": [_ENV, key, action],
            "post": _operation(
                "rolloutAction", "rollouts",
                "Start, pause, resume, advance, approve, roll back or abort",
                {
                    "200": _json(rollout, "The rollout in its new state."),
                    **_errors(
                        400, 401, 403, 404, 409, 413, 422,
                        e403="The token's role may not do this (approve needs the approver "
                        "permission), or not in this environment; or the two-person rule.",
                        e404="No such environment, flag, rollout plan or action.",
                        e409="A stale version, a transition the rollout's status does not "
                        "allow, or the flag archived or changed meanwhile.",
                        e422="No reason for a rollback or an abort, in a protected environment "
                        "(problem path `reason`); a missing or wrong `winner` when approving "
                        "the last stage of a plan with several candidates, or a `winner` "
                        "elsewhere (problem path `winner`); or the stored plan is no longer "
                        "valid for the flag.",
                    ),
                },
                permission="write",
                description="start (at stage 1), pause, resume, advance, approve (the approver "
                "permission; in a protected environment, another person than the one who "
                "started the rollout and the one who wrote its plan; the last stage of a plan "
                "with several candidates is approved with the `winner`), rollback (serve the "
                "control to everyone; status rolled_back) or abort (the same; status aborted). "
                "In a protected environment rollback and abort need a reason (422, problem "
                "path `reason`).",
                parameters=[_IF_MATCH, _REASON],
                body=_ref("RolloutAction"),
                body_required=False,
            ),
        },
    }  # fmt: skip


def _monitor_paths() -> Json:
    key = _path("key", _ref("key"), "The flag key.", "fraud-model")
    name = _path("name", _ref("key"), "The monitor's name.", "fraud-health")
    base = "/api/v1/envs/{env}/flags/{key}/monitors"
    monitor = _ref("Monitor")
    return {
        base: {
            "parameters": [_ENV, key],
            "get": _operation(
                "listMonitors", "monitors", "The flag's monitors",
                {"200": _json(_ref("MonitorList"), "The monitors."), **_errors(401, 403, 404)},
                permission="read",
            ),
        },
        f"{base}/{{name}}": {
            "parameters": [_ENV, key, name],
            "get": _operation(
                "getMonitor", "monitors", "A monitor: spec, status, streams and alerts",
                {"200": _json(monitor, "The monitor.", _ETAG), **_errors(401, 403, 404)},
                permission="read",
            ),
            "put": _operation(
                "putMonitor", "monitors", "Create or replace a monitor",
                {
                    "200": _json(monitor, "The monitor as stored.", _ETAG),
                    **_errors(
                        400, 401, 403, 404, 409, 413, 422,
                        e422="Every problem of the spec, by path (checked against the flag, "
                        "the metric catalogue and the flag's rollout plan).",
                    ),
                },
                permission="write", parameters=[_IF_MATCH, _REASON],
                body=_ref("MonitorSpec"),
                description="Checked by the controller every interval (docs/monitors.md); a "
                "changed spec starts its detectors afresh.",
            ),
            "delete": _operation(
                "deleteMonitor", "monitors", "Delete a monitor",
                {"204": {"description": "Deleted (audited)."}, **_errors(401, 403, 404)},
                permission="write", parameters=[_REASON],
            ),
        },
        f"{base}/{{name}}/acknowledge": {
            "parameters": [_ENV, key, name],
            "post": _operation(
                "acknowledgeMonitor", "monitors", "Acknowledge a monitor's alert",
                {"200": _json(monitor, "The monitor, ok again."),
                 **_errors(400, 401, 403, 404, 413)},
                permission="write", body=_ref("VersionedWrite"), body_required=False,
                description="Its status is ok again; the alerts stay in its state and the audit "
                "log.",
            ),
        },
    }  # fmt: skip


def _ofrep_paths() -> Json:
    """OFREP (docs/ofrep.md): the protocol's own answers for 400 and 404 (not problems)."""
    key = _path("key", {"type": "string"}, "The flag key.", "fraud-model")
    failure = _ref("OfrepFailure")
    protocol = {
        "400": _json(failure, "The context is not an object (INVALID_CONTEXT)."),
        **_errors(401, 403, 413),
    }
    single = _operation(
        "ofrepEvaluateFlag", "ofrep", "Evaluate one flag (OFREP)",
        {
            "200": _json(_ref("OfrepSuccess"), "The variant served: its key and its typed "
                         "value."),
            "404": _json(failure, "No such flag (FLAG_NOT_FOUND)."), **protocol,
        },
        permission="sdk", body=_ref("OfrepRequest"),
        description="The SDK's evaluation for the posted context (targetingKey is user_id); a "
        "split assignment is an exposure, stored as an SDK's. Authorization: Bearer or "
        "X-API-Key with an SDK key.",
    )  # fmt: skip
    bulk = _operation(
        "ofrepEvaluateFlags", "ofrep", "Evaluate every flag (OFREP)",
        {
            "200": _json(_ref("OfrepBulk"), "Every flag of the environment.", _ETAG),
            "304": {"description": "Unchanged: no flag changed for this context."}, **protocol,
        },
        permission="sdk", body=_ref("OfrepRequest"),
        description="The ETag changes with any flag of the environment and with the context.",
        parameters=[_parameter("header", "If-None-Match", {"type": "string"},
                               "The ETag of an earlier answer: 304 when nothing changed.")],
    )  # fmt: skip
    return {
        "/ofrep/v1/evaluate/flags": {"post": bulk},
        "/ofrep/v1/evaluate/flags/{key}": {"parameters": [key], "post": single},
    }


def _review_paths() -> Json:
    key = _path("key", _ref("key"), "The flag key.", "fraud-model")
    run = _path("run", {"type": "integer", "minimum": 1}, "The run's id (GET …/rollouts).")
    base = "/api/v1/envs/{env}/flags/{key}/rollouts"
    form = _parameter(
        "query", "format", {"enum": ["markdown", "html", "json"]},
        "The document's form; without it, the Accept header (text/html, application/json) "
        "chooses, and Markdown is the default.",
    )  # fmt: skip
    return {
        base: {
            "parameters": [_ENV, key],
            "get": _operation(
                "listRolloutRuns",
                "rollouts",
                "The flag's rollout runs, newest first",
                {"200": _json(_ref("RolloutRuns"), "The runs."), **_errors(401, 403, 404)},
                permission="read",
                description="A rollout started again after it ended is a new run; a run's id "
                "is the audit id of its rollout.start.",
            ),
        },
        f"{base}/{{run}}/review": {
            "parameters": [_ENV, key, run],
            "get": _operation(
                "getRolloutReview",
                "rollouts",
                "A run's post-deployment review",
                {
                    "200": {
                        "description": "The review: timeline, decisions with their evidence, "
                        "approvals, post-rollback verification, monitors, lessons learned.",
                        "content": {
                            "text/markdown": {"schema": {"type": "string"}},
                            "text/html": {"schema": {"type": "string"}},
                            JSON: {"schema": {"type": "object"}},
                        },
                    },
                    **_errors(400, 401, 403, 404, e400="An unknown format."),
                },
                permission="read",
                parameters=[form],
                description="Built from the audit log: every step of the run with its actor, "
                "reason and evidence (the HTML form draws the intervals).",
            ),
        },
        f"{base}/{{run}}/lessons": {
            "parameters": [_ENV, key, run],
            "put": _operation(
                "putLessons",
                "rollouts",
                "Write a run's lessons learned",
                {
                    "200": _json(_ref("Lessons"), "The run's lessons as written."),
                    **_errors(400, 401, 403, 404, 413, 422),
                },
                permission="write",
                body=_ref("LessonsWrite"),
                description="Replaces the text; every edit is a rollout.lessons audit entry "
                "(who, when, the text), so none is lost.",
            ),
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of the server (a new dict on every call)."""
    paths: Json = {
        **_operations_paths(),
        **_admin_paths(),
        **_webhook_paths(),
        **_resource_paths("flag", "Flag", "fraud-model"),
        **_flag_action_paths(),
        **_review_paths(),
        **_monitor_paths(),
        **_ofrep_paths(),
        **_resource_paths("segment", "Segment", "eu"),
        **_resource_paths("metric", "Metric", "fraud_caught"),
        **_sdk_paths(),
        **_rollout_paths(),
        **copy.deepcopy(OPENAPI_PATHS),
    }
    for path, item in paths.items():
        if path.startswith("/api/v1/envs/{env}"):
            for name, operation in item.items():
                if name != "parameters" and "x-rollwise-permission" in operation:
                    operation["description"] = f"{operation['description']} {_IN_ENV}"
        for name, operation in item.items():
            if name != "parameters" and "x-rollwise-permission" in operation:
                _add_operational_errors(name, operation)
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
            {
                "name": "environments",
                "description": "staging, production (protected) and more.",
            },
            {"name": "flags", "description": "Flags: edit, kill, revert, promote, history."},
            {"name": "segments", "description": "Reusable sets of conditions."},
            {
                "name": "metrics",
                "description": "The metric catalogue: what each tracked metric is (kind, "
                "direction, default tolerance); guardrails and results read it.",
            },
            {"name": "tokens", "description": "API tokens and their roles (admin)."},
            {"name": "audit", "description": "Who changed what, when and why."},
            {"name": "webhooks", "description": "Webhook deliveries and their state (admin)."},
            {"name": "sdk", "description": "For SDKs: rules, change stream, events."},
            {"name": "rollouts", "description": "Staged rollouts with guardrails."},
            {"name": "monitors", "description": "Decay and drift monitors after a rollout."},
            {"name": "ofrep", "description": "OpenFeature Remote Evaluation Protocol."},
            {"name": "results", "description": "Per-cohort sufficient statistics for analysis."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token, rw_ followed by 43 URL-safe characters, "
                    "as `Authorization: Bearer rw_...`. Only the Bearer scheme is accepted: "
                    "any other scheme, an unknown, revoked or expired token is 401.",
                }
            },
            "schemas": {
                **rules_schemas(),
                **_api_schemas(),
                **components(MODELS),
            },
        },
    }

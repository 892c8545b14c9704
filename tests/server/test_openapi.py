"""The OpenAPI document: served, valid, complete (every route and nothing else) and true.

"True" is checked by schemathesis against a live server: requests generated from the document
(its examples, then random valid and invalid data) must get no 5xx, only documented statuses and
media types, and bodies that match the documented schemas. The admin token drives the admin API,
an sdk token the SDK endpoints; the endless SSE stream is read separately.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rollwise.spec import rules_schema
from rollwise_server.app import ROUTES
from rollwise_server.openapi import openapi_document, rules_schemas
from rollwise_server.testing import LiveServer, live_server
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
STREAM = "/api/v1/sdk/stream"

# Loaded once at import (a pure function of the code), pointed at the live server per call.
# Deterministic and small by default; ROLLWISE_FUZZ_EXAMPLES=500 digs deeper, and
# ROLLWISE_FUZZ_RANDOM=1 draws new examples on every run.
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
SCHEMA.config.generation.update(
    max_examples=int(os.environ.get("ROLLWISE_FUZZ_EXAMPLES", "30")),
    deterministic=os.environ.get("ROLLWISE_FUZZ_RANDOM") is None,
    database="none",
)
SCHEMA.config.phases.update(phases=["examples", "fuzzing"])
ADMIN_API = SCHEMA.exclude(path_regex="^/api/v1/sdk/")
SDK_API = SCHEMA.include(path_regex="^/api/v1/sdk/").exclude(path=STREAM)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component schema (its $refs resolve inside the document)."""
    document = openapi_document()
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, with a segment, a flag and the metric catalogue for the
    documented examples."""
    # The security checks fail authentication hundreds of times a minute from 127.0.0.1.
    with live_server(tmp_path_factory.mktemp("openapi"), auth_failures_per_minute=10**6) as server:
        admin = server.session()
        base = f"{server.url}/api/v1/envs/production"
        assert admin.post(f"{base}/segments", json=EU_SEGMENT, timeout=10).status_code == 201
        assert admin.post(f"{base}/flags", json=example_flag(), timeout=10).status_code == 201
        define_metrics(server)
        yield server


@pytest.fixture(scope="module")
def sdk_token(api: LiveServer) -> str:
    return api.token("sdk", env="production")


# --- the document itself --------------------------------------------------------------------


def test_the_served_document_is_the_document_and_valid_openapi_3_1(api: LiveServer) -> None:
    response = requests.get(f"{api.url}/api/v1/openapi.json", timeout=10)  # no token needed
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == openapi_document()
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)


def test_every_route_is_documented_and_nothing_else() -> None:
    # Starlette answers HEAD for every GET route; the document leaves the HEADs implicit.
    routes = {(route.path, method) for route in ROUTES for method in route.methods or ()}
    routes = {(path, method) for path, method in routes if method != "HEAD"}
    documented = {(path, method.upper()) for path, method, _ in _operations(openapi_document())}
    assert documented == routes


def test_operations_are_complete() -> None:
    document = openapi_document()
    operation_ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(operation_ids) == len(set(operation_ids))
    tags = {tag["name"] for tag in document["tags"]}
    for path, method, operation in _operations(document):
        label = f"{method.upper()} {path}"
        assert set(operation["tags"]) <= tags, label
        statuses = set(operation["responses"])
        parameters = document["paths"][path].get("parameters", []) + operation.get("parameters", [])
        names = {p["name"] for p in parameters if p["in"] == "path"}
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}, label
        if operation.get("security") != []:  # authenticated
            assert {"401", "403"} <= statuses, label
            assert operation["x-rollwise-permission"] in {"read", "write", "admin", "sdk"}
        if "requestBody" in operation:
            assert {"400", "413"} <= statuses, label
        for status, response in operation["responses"].items():
            if path.startswith("/ofrep/") and status in ("400", "404"):
                continue  # the protocol's own error answers (docs/ofrep.md), not problems
            if status.startswith(("4", "5")) and status != "503":
                assert list(response["content"]) == ["application/problem+json"], label


# A role that has each documented permission, and one that lacks it.
ROLES_FOR = {
    "read": ("viewer", "sdk"),
    "write": ("editor", "approver"),
    "admin": ("admin", "editor"),
    "sdk": ("sdk", "admin"),
}
# Path parameters that name nothing, so that an allowed call changes nothing (404 or 400).
NOTHING = {"env": "production", "key": "no-such-key", "token_id": "tok_000000000000"}
# Bodies for operations that check the documented permission only after reading the body
# (promote: read here, then write in the target environment).
BODIES = {"promoteFlag": {"to": "staging"}}


def _url(api: LiveServer, document: dict[str, Any], path: str, operation: dict[str, Any]) -> str:
    """The operation's URL with the ``NOTHING`` path parameters (or the documented examples)."""
    parameters = document["paths"][path].get("parameters", []) + operation.get("parameters", [])
    values = {
        p["name"]: NOTHING.get(p["name"], p.get("example")) for p in parameters if p["in"] == "path"
    }
    return api.url + path.format(**values)


def _status(
    method: str, url: str, authorization: str | None, body: dict[str, Any] | None = None
) -> int:
    headers = {"Authorization": authorization} if authorization else {}
    with requests.request(method, url, headers=headers, json=body, stream=True, timeout=10) as r:
        return r.status_code


def test_the_documented_security_is_what_the_server_enforces(api: LiveServer) -> None:
    secrets = {
        role: api.admin_token if role == "admin" else api.token(role, env="production")
        if role == "sdk" else api.token(role)
        for role in {role for pair in ROLES_FOR.values() for role in pair}
    }  # fmt: skip
    document = openapi_document()
    for path, method, operation in _operations(document):
        url = _url(api, document, path, operation)
        label = f"{method.upper()} {path}"
        body = BODIES.get(operation["operationId"])

        def status(
            token: str | None, url: str = url, method: str = method, body: Any = body
        ) -> int:
            return _status(method, url, f"Bearer {token}" if token else None, body)

        if operation.get("security") == []:
            assert status(None) == 200, label
            continue
        allowed, denied = ROLES_FOR[operation["x-rollwise-permission"]]
        assert status(None) == 401, label
        assert status("rw_not-a-token") == 401, label
        assert _status(method, url, f"Basic {secrets[allowed]}", body) == 401, label
        assert _status(method, url, secrets[allowed], body) == 401, label  # no scheme
        assert status(secrets[denied]) == 403, label
        assert status(secrets[allowed]) not in (401, 403), label


def test_a_token_for_some_environments_gets_403_elsewhere(api: LiveServer) -> None:
    """A role applies to the environments its token lists: routes of another environment, and
    the operations documented as needing a token for every environment, answer 403."""
    document = openapi_document()
    tokens: dict[tuple[str, str], str] = {}

    def token(role: str, env: str) -> str:
        if (role, env) not in tokens:
            tokens[role, env] = api.token(role, envs=[env])
        return tokens[role, env]

    checked = 0
    for path, method, operation in _operations(document):
        permission = operation.get("x-rollwise-permission")
        if permission in (None, "sdk"):  # public, or an sdk token's one environment
            continue
        url = _url(api, document, path, operation)  # env is production
        label = f"{method.upper()} {path}"
        role = ROLES_FOR[permission][0]
        here = _status(method, url, f"Bearer {token(role, 'production')}")
        elsewhere = _status(method, url, f"Bearer {token(role, 'staging')}")
        if operation.get("x-rollwise-all-environments"):
            assert (here, elsewhere) == (403, 403), label
            assert "every environment" in operation["description"], label
        elif "{env}" in path:
            assert here not in (401, 403), label
            assert elsewhere == 403, label
            assert "`envs` leave it out gets 403" in operation["description"], label
        else:
            assert here not in (401, 403), label
            assert elsewhere not in (401, 403), label
        checked += 1
    assert checked > 30


def test_flag_and_segment_schemas_are_those_of_the_rules_spec() -> None:
    """Every ``$defs`` entry of the SDK's packaged schema is a component under its own name,
    unchanged but for where its ``$ref``s point, and ``RulesDocument`` is its top level."""
    text = json.dumps(rules_schema()).replace('"#/$defs/', '"#/components/schemas/')
    spec = json.loads(text)
    components = openapi_document()["components"]["schemas"]
    assert set(rules_schemas()) == {*spec["$defs"], "RulesDocument"}
    for name, schema in spec["$defs"].items():
        assert components[name] == schema, name
    top = {k: spec[k] for k in ("type", "required", "properties")}
    assert {k: components["RulesDocument"][k] for k in top} == top


def test_the_examples_match_the_schemas() -> None:
    example = json.loads((ROOT / "docs" / "examples" / "fraud-model.json").read_text())
    _validator("RulesDocument").validate(example)
    _validator("FlagCreate").validate({**example_flag(), "reason": "ship it"})
    _validator("SegmentCreate").validate(EU_SEGMENT)
    document = openapi_document()
    examples = 0
    for path, _method, operation in _operations(document):
        media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in media:
            name = media["schema"]["$ref"].rsplit("/", 1)[1]
            _validator(name).validate(media["example"])
            examples += 1
        for parameter in document["paths"][path].get("parameters", []) + operation.get(
            "parameters", []
        ):
            if "example" in parameter:
                root = {**parameter["schema"], "components": document["components"]}
                jsonschema.Draft202012Validator(root).validate(parameter["example"])
    assert examples >= 10


# --- the SSE stream (endless, so not fuzzed) ------------------------------------------------


def _first_event(response: requests.Response) -> dict[str, str]:
    """The fields of the first event of a stream (heartbeat comments skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended before its first event")


def test_the_stream_sends_the_documented_first_event(api: LiveServer, sdk_token: str) -> None:
    operation = openapi_document()["paths"][STREAM]["get"]
    headers = {"Authorization": f"Bearer {sdk_token}"}
    with requests.get(f"{api.url}{STREAM}", headers=headers, stream=True, timeout=10) as response:
        assert response.status_code == 200
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type in operation["responses"]["200"]["content"]
        event = _first_event(response)
    assert event["event"] == "rules"
    data = json.loads(event["data"])
    assert event["id"] == str(data["revision"])
    _validator("RulesDocument").validate(data["document"])
    rules = requests.get(f"{api.url}/api/v1/sdk/rules", headers=headers, timeout=10)
    assert rules.json() == data["document"]
    assert "fraud-model" in data["document"]["flags"]


@pytest.mark.parametrize(
    ("token", "headers", "status"),
    [
        ("sdk", {"Last-Event-ID": "not-a-revision"}, 400),
        (None, {}, 401),
        ("admin", {}, 403),
    ],
)
def test_the_stream_errors_are_documented(
    api: LiveServer, sdk_token: str, token: str | None, headers: dict[str, str], status: int
) -> None:
    operation = openapi_document()["paths"][STREAM]["get"]
    secret = {"sdk": sdk_token, "admin": api.admin_token}.get(token or "")
    if secret:
        headers = {**headers, "Authorization": f"Bearer {secret}"}
    response = requests.get(f"{api.url}{STREAM}", headers=headers, stream=True, timeout=10)
    with response:
        assert response.status_code == status
        assert str(status) in operation["responses"]
        assert response.headers["content-type"] == "application/problem+json"
        _validator("Problem").validate(response.json())


# --- schemathesis against the live server ---------------------------------------------------


@ADMIN_API.parametrize()
def test_admin_api_conforms(case: schemathesis.Case, api: LiveServer) -> None:
    case.call_and_validate(
        base_url=api.url,
        headers={"Authorization": f"Bearer {api.admin_token}"},
        checks=CHECKS,
        timeout=10,
    )


@SDK_API.parametrize()
def test_sdk_api_conforms(case: schemathesis.Case, api: LiveServer, sdk_token: str) -> None:
    case.call_and_validate(
        base_url=api.url,
        headers={"Authorization": f"Bearer {sdk_token}"},
        checks=CHECKS,
        timeout=10,
    )


# --- inputs that random generation rarely reaches -------------------------------------------

BIG = 2**63  # one more than SQLite's largest integer
SURROGATE = "\ud800"  # a lone surrogate: valid in JSON text (as an escape), not in UTF-8


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    specific = {"flag": "fraud-model", "flag_version": 1, "variant": "v1"}
    if kind == "outcome":
        specific = {"metric": "chargeback", "value": 1}
    common = {"id": str(uuid.uuid4()), "ts": "2026-11-01T09:30:00Z", "unit_type": "user_id"}
    return {**common, "unit": "u-1", **specific, **fields}


FLAG = "/api/v1/envs/{env}/flags/{key}"
EDGES = [
    pytest.param("PUT", FLAG, {"headers": {"If-Match": "\u00b2"}}, id="if-match-superscript-two"),
    pytest.param("PUT", FLAG, {"headers": {"If-Match": "9" * 5000}}, id="if-match-5000-digits"),
    pytest.param("GET", "/api/v1/audit", {"params": {"before": str(2**70)}}, id="before-2**70"),
    pytest.param(
        "GET", "/api/v1/audit", {"params": {"since": "0001-01-01T00:00:00+05:00"}},
        id="audit-since-year-1-east-of-utc",
    ),
    pytest.param(
        "POST", "/api/v1/envs/{env}/flags",
        {"data": '{"key": "nan", "variants": {"a": {"payload": NaN}}, "off_variant": "a",'
                 ' "default_variant": "a"}'},
        id="flag-payload-nan",
    ),
    pytest.param("POST", "/api/v1/envs/{env}/segments",
                 {"json": {"key": "s", "description": SURROGATE}}, id="segment-lone-surrogate"),
    pytest.param("POST", "/api/v1/tokens", {"json": {"name": SURROGATE, "role": "viewer"}},
                 id="token-name-lone-surrogate"),
    pytest.param("POST", "/api/v1/tokens",
                 {"json": {"name": "n", "owner": "a\u0007b", "role": "viewer"}},
                 id="token-owner-control-character"),
    pytest.param("POST", "/api/v1/tokens",
                 {"json": {"name": "n", "owner": "o", "role": "viewer", "envs": ["nowhere"]}},
                 id="token-envs-unknown-environment"),
    pytest.param("POST", "/api/v1/tokens",
                 {"json": {"name": "n", "owner": "o", "role": "viewer",
                           "expires_at": "0001-01-01T00:00:00+05:00"}},
                 id="token-expires-year-1-east-of-utc"),
    pytest.param("GET", "/api/v1/envs", {"headers": {"Authorization": "Basic YWRtaW46YWRtaW4="}},
                 id="authorization-basic-scheme"),
    pytest.param("PATCH", "/api/v1/envs/{env}", {"json": {"protected": True, "reason": " \t"}},
                 id="env-protect-blank-reason"),
    pytest.param("POST", "/api/v1/envs/{env}/metrics",
                 {"json": {"key": "m", "kind": "ratio", "direction": "lower_is_better",
                           "default_tolerance": -1, "unit": "x" * 51}},
                 id="metric-ratio-without-denominator-wrong-sign-long-unit"),
    pytest.param("POST", "/api/v1/envs/{env}/metrics",
                 {"data": '{"key": "m", "kind": "mean", "direction": "lower_is_better",'
                          ' "default_tolerance": Infinity}'},
                 id="metric-tolerance-infinity"),
    pytest.param("POST", "/api/v1/sdk/exposures", {"json": [_event("exposure", flag_version=BIG)]},
                 id="exposure-flag-version-2**63"),
    pytest.param("POST", "/api/v1/sdk/events", {"json": [_event("outcome", value=10**20)]},
                 id="outcome-value-10**20"),
    pytest.param("POST", "/api/v1/sdk/events", {"json": [_event("outcome", unit=SURROGATE)]},
                 id="outcome-unit-lone-surrogate"),
    pytest.param("POST", "/api/v1/sdk/exposures", {"json": [_event("exposure", id=SURROGATE)]},
                 id="exposure-id-lone-surrogate"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "request_kwargs"), EDGES)
def test_edge_inputs_get_documented_answers(
    api: LiveServer, sdk_token: str, method: str, path: str, request_kwargs: dict[str, Any]
) -> None:
    """No 5xx, and a documented status, media type and body (schemathesis' own checks)."""
    parameters = {"env": "production", "key": "fraud-model"}
    case = SCHEMA[path][method].Case(
        path_parameters={k: v for k, v in parameters.items() if f"{{{k}}}" in path}
    )
    token = sdk_token if path.startswith("/api/v1/sdk/") else api.admin_token
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    headers.update(request_kwargs.pop("headers", {}))
    url = api.url + path.format(**parameters)
    response = requests.request(method, url, headers=headers, timeout=10, **request_kwargs)
    case.validate_response(response, checks=CHECKS)
    assert response.status_code < 500


# --- a rollout's life: answers that random generation rarely reaches -------------------------

ROLLOUT = "/api/v1/envs/{env}/flags/{key}/rollout"


def _conforms(
    api: LiveServer, method: str, path: str, key: str, status: int, **request_kwargs: Any
) -> dict[str, Any]:
    """Call ``path`` as the admin; the answer has ``status`` and is documented. Its body."""
    parameters = {"env": "production", "key": key, "action": ""}
    if path.endswith("{action}"):
        parameters["action"] = request_kwargs.pop("action")
    names = {k: v for k, v in parameters.items() if f"{{{k}}}" in path}
    case = SCHEMA[path][method].Case(path_parameters=names)
    headers = {"Authorization": f"Bearer {api.admin_token}", **request_kwargs.pop("headers", {})}
    url = api.url + path.format(**parameters)
    response = requests.request(method, url, headers=headers, timeout=10, **request_kwargs)
    case.validate_response(response, checks=CHECKS)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_rollout_through_its_life_gets_documented_answers(api: LiveServer) -> None:
    key = "rollout-life"
    protect = {"protected": True, "reason": "the fuzzing may have unprotected it"}
    environment = _conforms(api, "PATCH", "/api/v1/envs/{env}", key, 200, json=protect)
    assert environment["protected"] is True
    metrics = "/api/v1/envs/{env}/metrics"  # its own: the fuzzing may archive the others
    caught = {"key": "life_caught", "kind": "binary", "direction": "higher_is_better"}
    latency = {"key": "life_latency_ms", "kind": "mean", "direction": "lower_is_better"}
    for metric in (caught, latency):
        _conforms(api, "POST", metrics, key, 201, json=metric)
    _conforms(
        api, "POST", "/api/v1/envs/{env}/flags", key, 201, json={**example_flag(), "key": key}
    )
    plan = {
        "control": "v1", "candidate": "v2", "rule": "eu-small",
        "stages": [{"share": 0.1}, {"share": 0.5, "approval": True}, {"share": 1}],
        "guardrails": [{"metric": "life_caught", "cohorts": ["country"], "tolerance": -0.01},
                       {"metric": "life_latency_ms", "tolerance": 5}],
    }  # fmt: skip
    unknown = {**plan, "guardrails": [{"metric": "life_caught", "limit": 1}]}
    problem = _conforms(api, "PUT", ROLLOUT, key, 422, json=unknown)
    assert {"path": "guardrails[0].limit", "message": "unknown field"} in problem["problems"]
    draft = _conforms(api, "PUT", ROLLOUT, key, 200, json=plan)
    assert draft["state"]["status"] == "draft"
    assert draft["plan"]["guardrails"][0]["tolerance"] == -0.01  # signed, as written
    started = _conforms(api, "POST", f"{ROLLOUT}/{{action}}", key, 200, action="start")
    assert (started["state"]["status"], started["state"]["stage"]) == ("running", 1)

    # An active rollout freezes its plan and owns its flag and its guardrails' metrics.
    frozen = _conforms(api, "PUT", ROLLOUT, key, 409, json=plan)
    assert frozen["rollout"] == {"env": "production", "flag": key, "status": "running"}
    flag = _conforms(api, "GET", "/api/v1/envs/{env}/flags/{key}", key, 200)
    edit = {k: v for k, v in flag.items() if k not in ("key", "stale")}
    edit["rules"] = [r for r in edit["rules"] if r["id"] != "eu-small"]
    refused = _conforms(api, "PUT", "/api/v1/envs/{env}/flags/{key}", key, 409, json=edit)
    assert refused["rollout"] == {"env": "production", "flag": key}
    assert _conforms(api, "DELETE", "/api/v1/envs/{env}/flags/{key}", key, 409)["rollout"]
    used = _conforms(api, "DELETE", f"{metrics}/{{key}}", "life_caught", 409)
    assert used["flags"] == [key]

    advanced = _conforms(api, "POST", f"{ROLLOUT}/{{action}}", key, 200, action="advance")
    assert advanced["state"]["stage"] == 2
    _conforms(api, "POST", f"{ROLLOUT}/{{action}}", key, 409, action="advance")  # needs approval
    _conforms(api, "POST", f"{ROLLOUT}/{{action}}", key, 403, action="approve")  # two persons
    # In a protected environment, ending a rollout and killing a flag need a reason.
    for action in ("abort", "rollback"):
        problem = _conforms(api, "POST", f"{ROLLOUT}/{{action}}", key, 422, action=action)
        assert [p["path"] for p in problem["problems"]] == ["reason"]
    problem = _conforms(api, "POST", "/api/v1/envs/{env}/flags/{key}/kill", key, 422)
    assert [p["path"] for p in problem["problems"]] == ["reason"]
    aborted = _conforms(
        api, "POST", f"{ROLLOUT}/{{action}}", key, 200, action="abort", json={"reason": "stop"}
    )
    assert (aborted["state"]["status"], aborted["state"]["end_reason"]) == ("aborted", "stop")

    # Killing the flag ends its rollout too.
    _conforms(api, "POST", f"{ROLLOUT}/{{action}}", key, 200, action="start")
    killed = _conforms(
        api, "POST", "/api/v1/envs/{env}/flags/{key}/kill", key, 200, json={"reason": "harm"}
    )
    assert killed["enabled"] is False
    rollout = _conforms(api, "GET", ROLLOUT, key, 200)
    assert (rollout["state"]["status"], rollout["state"]["end_reason"]) == ("aborted", "killed")

    page = _conforms(api, "GET", "/api/v1/audit", key, 200, params={"flag": key})
    assert {e["resource_type"] for e in page["entries"]} == {"flag", "rollout"}
    mine = [e for e in page["entries"] if e["actor"] == "admin"]
    assert mine
    assert all(e["token_id"] and e["owner"] == "admin" for e in mine)


# --- huge numbers and far dates get a 422, never a 500 ------------------------------------------

HUGE = "1" + "0" * 400  # a JSON integer beyond any float: math.isfinite(int) raises
NINES = "9" * 400
BUGS = [
    pytest.param(
        "PUT", ROLLOUT,
        '{"control": "v1", "candidate": "v2", "rule": "eu-small", "stages": [{"share": 1}],'
        f' "outcome_delay": "{NINES}"}}',
        id="plan-outcome-delay-400-digits",
    ),
    pytest.param(
        "PUT", ROLLOUT,
        '{"control": "v1", "candidate": "v2", "rule": "eu-small",'
        f' "stages": [{{"share": 1, "min_duration": {HUGE}}}]}}',
        id="plan-min-duration-10**400",
    ),
    pytest.param(
        "PUT", ROLLOUT,
        '{"control": "v1", "candidate": "v2", "rule": "eu-small", "stages": [{"share": 1}],'
        f' "guardrails": [{{"metric": "latency_ms", "cohorts": ["amount"],'
        f' "bands": {{"amount": [0, {HUGE}]}}}}]}}',
        id="plan-band-10**400",
    ),
    pytest.param(
        "POST", "/api/v1/tokens",
        '{"name": "n", "owner": "o", "role": "viewer", "expires_at": "9999-12-31T23:59:59-05:00"}',
        id="token-expires-year-9999-west-of-utc",
    ),
    pytest.param(
        "POST", "/api/v1/envs/{env}/metrics",
        f'{{"key": "huge", "kind": "mean", "direction": "lower_is_better",'
        f' "default_tolerance": {HUGE}}}',
        id="metric-default-tolerance-10**400",
    ),
    pytest.param(
        "PUT", ROLLOUT,
        '{"control": "v1", "candidate": "v2", "rule": "eu-small",'
        f' "stages": [{{"share": {HUGE}}}]}}',
        id="plan-stage-share-10**400",
    ),
    pytest.param(
        "PUT", ROLLOUT,
        '{"control": "v1", "candidate": "v2", "rule": "eu-small", "stages": [{"share": 1}],'
        f' "guardrails": [{{"metric": "latency_ms", "tolerance": {HUGE}}}]}}',
        id="plan-guardrail-tolerance-10**400",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "data"), BUGS)
def test_huge_numbers_get_documented_answers(
    api: LiveServer, method: str, path: str, data: str
) -> None:
    key = "huge-numbers"
    flags = f"{api.url}/api/v1/envs/production/flags"
    created = api.session().post(flags, json={**example_flag(), "key": key}, timeout=10)
    assert created.status_code in (201, 409)
    headers = {"Content-Type": "application/json"}
    _conforms(api, method, path, key, 422, data=data, headers=headers)

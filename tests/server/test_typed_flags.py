"""Typed flags end to end: written through the admin API, validated by the server, served in a
``schema_version`` 2 document, read by the online SDK's typed accessors and by the OpenFeature
project's OFREP provider; a flag's type cannot change by any route."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

import rollwise
from rollwise_server.testing import LiveServer
from tests.server.conftest import seed
from tests.server.test_cli import api as admin_api
from tests.server.test_cli import ok, run

TYPED = Path(__file__).resolve().parents[2] / "docs" / "examples" / "typed-flags.json"
ORDER = {"user_id": "user-42", "country": "NL", "amount": 2500}


@pytest.fixture(autouse=True)
def _reset_openfeature() -> Iterator[None]:
    yield
    api.shutdown()


def _typed_flags() -> dict[str, dict[str, Any]]:
    flags: dict[str, dict[str, Any]] = json.loads(TYPED.read_text(encoding="utf-8"))["flags"]
    for body in flags.values():
        body.pop("version")
    return flags


def _create_typed(server: LiveServer, env: str = "production") -> None:
    admin = server.session()
    for key, body in _typed_flags().items():
        admin.post(
            f"{server.url}/api/v1/envs/{env}/flags", json={"key": key, **body}
        ).raise_for_status()


def _document(server: LiveServer, env: str = "production") -> dict[str, Any]:
    sdk = server.session(server.token("sdk", env=env))
    response = sdk.get(f"{server.url}/api/v1/sdk/rules", timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_string_flags_only_keep_schema_version_1(server: LiveServer) -> None:
    seed(server)
    document = _document(server)
    assert document["schema_version"] == 1
    assert "type" not in document["flags"]["fraud-model"]
    assert "value" not in json.dumps(document["flags"]["fraud-model"]["variants"])


def test_typed_flags_reach_the_online_client(server: LiveServer, tmp_path: Path) -> None:
    _create_typed(server)
    document = _document(server)
    assert document["schema_version"] == 2
    assert document["flags"]["fraud-threshold"]["type"] == "float"
    with rollwise.Client(
        server.url, server.token("sdk", env="production"), cache_dir=str(tmp_path)
    ) as client:
        assert client.wait_until_ready(10)
        assert client.bool_value("fraud-checks-enabled", {"country": "GB"}, True) is False
        assert client.int_value("review-queue-size", ORDER, 0) == 500
        assert client.float_value("fraud-threshold", ORDER, 9.0) in (0.35, 0.5)
        assert client.json_value("scoring-config", ORDER, None)["timeout_ms"] == 60
        assert client.string_value("model-name", ORDER, "") == "fraud-2025-11"
        assert client.int_value("fraud-threshold", ORDER, 7) == 7  # TYPE_MISMATCH: the default

        # an edit of a typed value reaches the client through the stream
        changed = threading.Event()
        client.on_change(lambda change: changed.set(), flags=["review-queue-size"])
        body = _typed_flags()["review-queue-size"]
        body["variants"]["large"]["value"] = 900
        server.session().put(
            f"{server.url}/api/v1/envs/production/flags/review-queue-size",
            json={**body, "version": 1},
        ).raise_for_status()
        assert changed.wait(10)
        assert client.int_value("review-queue-size", ORDER, 0) == 900


@pytest.mark.parametrize(
    ("body_change", "path", "message"),
    [
        (lambda b: b["variants"]["on"].update(value=1), "variants.on.value",
         "must be true or false (the flag's type is boolean), not 1"),
        (lambda b: b["variants"]["off"].pop("value"), "variants.off.value",
         "is required: the flag's type is boolean"),
        (lambda b: b.update(type="bool"), "type",
         "must be one of string, boolean, integer, float, json, not 'bool'"),
        (lambda b: b.update(type="float") or b["variants"]["on"].update(value=10**400),
         "variants.on.value",
         "must be a finite number (the flag's type is float), not an integer of about 401 "
         "digits"),
    ],
)  # fmt: skip
def test_a_bad_typed_flag_is_refused_naming_the_field(
    server: LiveServer, body_change: Any, path: str, message: str
) -> None:
    body = _typed_flags()["fraud-checks-enabled"]
    body_change(body)
    response = server.session().post(
        f"{server.url}/api/v1/envs/production/flags", json={"key": "kill-switch", **body}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {"path": path, "message": message} in response.json()["problems"]
    listed = server.session().get(f"{server.url}/api/v1/envs/production/flags").json()["flags"]
    assert listed == []  # nothing written


def _type_refused(response: requests.Response, before: str, after: str) -> None:
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["path"] == "type"
    assert problem["message"] == (
        f"cannot change from {before} to {after}: flag 'switch' is read as {before} by its "
        "callers; create a new flag, or archive this one and create it again"
    )


def test_a_flags_type_cannot_change_by_any_route(server: LiveServer) -> None:
    admin = server.session()
    for env in ("production", "staging"):
        admin.post(f"{server.url}/api/v1/envs/{env}/flags", json={"key": "placeholder",
                   "variants": {"a": {}}, "off_variant": "a", "default_variant": "a"})  # fmt: skip
    boolean = _typed_flags()["fraud-checks-enabled"]
    integer = _typed_flags()["review-queue-size"]
    url = f"{server.url}/api/v1/envs/production/flags/switch"
    admin.post(f"{server.url}/api/v1/envs/production/flags",
               json={"key": "switch", **boolean}).raise_for_status()  # fmt: skip

    # 1. replacing it (PUT) with a body of another type, or of the default type (string)
    _type_refused(admin.put(url, json={**integer, "version": 1}), "boolean", "integer")
    as_string = {k: v for k, v in boolean.items() if k != "type"}
    as_string["variants"] = {"on": {}, "off": {}}
    _type_refused(admin.put(url, json={**as_string, "version": 1}), "boolean", "string")

    # 2. promoting a flag of the same key and another type from another environment
    admin.post(f"{server.url}/api/v1/envs/staging/flags",
               json={"key": "switch", **integer}).raise_for_status()  # fmt: skip
    promoted = admin.post(f"{server.url}/api/v1/envs/staging/flags/switch/promote",
                          json={"to": "production", "reason": "copy"})  # fmt: skip
    _type_refused(promoted, "boolean", "integer")

    # 3. reverting to a version of another type: archive, create it again as an integer flag,
    # then revert to version 1 (boolean)
    admin.delete(url, params={"reason": "retype"}).raise_for_status()
    admin.post(f"{server.url}/api/v1/envs/production/flags",
               json={"key": "switch", **integer}).raise_for_status()  # fmt: skip
    reverted = admin.post(f"{url}/revert", json={"to_version": 1, "reason": "back"})
    _type_refused(reverted, "integer", "boolean")

    current = admin.get(url).json()
    assert (current["type"], current["version"]) == ("integer", 3)  # nothing written
    assert _document(server)["flags"]["switch"]["type"] == "integer"


def test_the_ofrep_provider_reads_every_type(server: LiveServer) -> None:
    _create_typed(server)
    token = server.token("sdk", env="production")
    api.set_provider_and_wait(
        OFREPProvider(server.url, headers_factory=lambda: {"Authorization": f"Bearer {token}"})
    )
    client = api.get_client()
    order = EvaluationContext("user-42", {"country": "NL", "amount": 2500})
    assert client.get_boolean_value("fraud-checks-enabled", False, order) is True
    gb = client.get_boolean_details(
        "fraud-checks-enabled", True, EvaluationContext("u", {"country": "GB"})
    )
    assert (gb.value, gb.variant, gb.reason) == (False, "off", Reason.TARGETING_MATCH)
    assert client.get_integer_value("review-queue-size", 1, order) == 500
    assert client.get_float_value("fraud-threshold", 0.9, order) in (0.35, 0.5)
    assert client.get_object_value("scoring-config", {}, order)["model"] == "fraud-2025-11"
    assert client.get_string_value("model-name", "x", order) == "fraud-2025-11"
    # the provider checks the value's type (a Python bool is an int, so a string is asked here)
    mismatch = client.get_string_details("fraud-checks-enabled", "x", order)
    assert (mismatch.value, mismatch.error_code) == ("x", ErrorCode.TYPE_MISMATCH)


def test_the_cli_creates_and_shows_a_typed_flag(server: LiveServer) -> None:
    made = ok(run(server, "flags", "create", "checks-enabled", "--type", "boolean",
                  "--variants", "on,off", "--value", "on=true", "--value", "off=false",
                  "--off", "off", "--env", "staging"))  # fmt: skip
    assert made.stdout == "created flag checks-enabled in staging: version 1, serves on\n"
    flag = admin_api(server, "GET", "envs/staging/flags/checks-enabled")
    assert (flag["type"], flag["variants"]) == (
        "boolean", {"on": {"value": True}, "off": {"value": False}},
    )  # fmt: skip
    text = ok(run(server, "flags", "get", "checks-enabled", "--env", "staging")).stdout
    assert "type         boolean\n" in text
    assert "variants     off = false\n             on = true\n" in text
    config = 'a={"timeout_ms": 40, "features": ["amount"]}'
    ok(run(server, "flags", "create", "config", "--type", "json", "--variants", "a",
           "--value", config, "--env", "staging"))  # fmt: skip
    assert admin_api(server, "GET", "envs/staging/flags/config")["variants"]["a"]["value"] == {
        "timeout_ms": 40, "features": ["amount"],
    }  # fmt: skip
    named = ok(run(server, "flags", "create", "model", "--variants", "v1,v2",
                   "--value", "v2=fraud-2025-11", "--env", "staging"))  # fmt: skip
    assert "serves v1" in named.stdout
    assert admin_api(server, "GET", "envs/staging/flags/model")["variants"] == {
        "v1": {}, "v2": {"value": "fraud-2025-11"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "boolean", "--variants", "on,off", "--value", "on=1", "--value", "off=false"],
         "variants.on.value: must be true or false (the flag's type is boolean), not 1"),
        (["--type", "integer", "--variants", "a", "--value", "a=fifty"],
         "the value of a integer flag is JSON"),
        (["--type", "integer", "--variants", "a", "--value", "b=5"],
         "write VARIANT=VALUE for one of the variants a"),
        (["--type", "integer", "--variants", "a"],
         "variants.a.value: is required: the flag's type is integer"),
        (["--type", "number", "--variants", "a"], "'number' is not one of"),
    ],
)  # fmt: skip
def test_the_cli_refuses_bad_typed_values_naming_them(
    server: LiveServer, args: list[str], message: str
) -> None:
    result = run(server, "flags", "create", "bad", *args, "--env", "staging")
    assert result.exit_code != 0
    assert message in result.output
    assert admin_api(server, "GET", "envs/staging/flags")["flags"] == []

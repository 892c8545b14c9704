"""The API's models: one declaration gives the decoding, its problems and the schema."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jsonschema
import msgspec
import pytest

from rollwise_server.auth import ROLES
from rollwise_server.catalogue import DIRECTIONS, KINDS, parse_metric
from rollwise_server.errors import Invalid
from rollwise_server.ingest import Window, validate_batch
from rollwise_server.models import (
    MODELS,
    EnvironmentCreate,
    MetricWrite,
    TokenCreate,
    components,
    decode,
)
from rollwise_server.models.events import Exposure
from rollwise_server.models.tokens import Role


def _problems(model: type[msgspec.Struct], body: Any) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        decode(model, body)
    return {p["path"]: p["message"] for p in caught.value.extra["problems"]}


def test_a_valid_body_decodes_to_its_model() -> None:
    token = decode(TokenCreate, {"name": "ci", "role": "viewer", "owner": "ana", "envs": ["qa"]})
    assert (token.name, token.role, token.owner, token.envs) == ("ci", "viewer", "ana", ["qa"])
    assert token.expires_at is None


def test_every_problem_of_a_body_is_named_by_its_path() -> None:
    """msgspec stops at the first error; the decoder reports them all, each in the words its
    field declares (or msgspec's own)."""
    problems = _problems(
        TokenCreate,
        {"name": "", "role": "root", "envs": [], "colour": "red", "expires_at": 7},
    )
    assert problems == {
        "colour": "unknown field",
        "name": "must be a string of 1-100 characters",
        "role": "must be one of admin, editor, approver, viewer, sdk",
        "envs": "must be a non-empty list of environments, or null (all)",
        "expires_at": "must be an RFC 3339 date-time or null (never)",
    }


def test_missing_fields_and_types_are_problems() -> None:
    assert _problems(TokenCreate, {}) == {
        "name": "must be a string of 1-100 characters",
        "role": "must be one of admin, editor, approver, viewer, sdk",
    }
    assert _problems(EnvironmentCreate, {"key": "bad key", "protected": "yes"}) == {
        "key": "must be 1-128 letters, digits, '_', '.' or '-'",
        "protected": "must be true or false",
    }
    assert _problems(EnvironmentCreate, [1, 2]) == {"": "must be an object"}


def test_types_are_strict() -> None:
    """No coercion: "1" is not an integer, 1 is not a boolean (cattrs would take both)."""
    assert "protected" in _problems(EnvironmentCreate, {"key": "qa", "protected": 1})
    assert "reason" in _problems(EnvironmentCreate, {"key": "qa", "reason": 5})
    assert "reason" in _problems(EnvironmentCreate, {"key": "qa", "reason": "x" * 2001})


def test_the_roles_of_the_model_are_the_roles_of_auth() -> None:
    assert set(typing.get_args(Role)) == set(ROLES)


def test_each_schema_accepts_what_its_model_accepts() -> None:
    """The generated JSON Schema and the decoder agree on a corpus of bodies."""
    schemas = components(MODELS)
    ref = {"$ref": "#/components/schemas/{name}"}
    bodies: list[Any] = [
        {"key": "qa"}, {"key": "qa", "protected": True, "reason": "why"}, {"key": "bad key"},
        {"key": "qa", "extra": 1}, {"key": "qa", "protected": "no"}, {"key": "qa\n"}, {},
        {"key": "x" * 129}, {"key": "qa", "reason": None}, {"key": "qa", "reason": "x" * 2001},
    ]  # fmt: skip
    document = {"components": {"schemas": schemas}}
    for model in (EnvironmentCreate,):
        schema = {**document, "$ref": ref["$ref"].format(name=model.__name__)}
        validator = jsonschema.Draft202012Validator(schema)
        for body in bodies:
            try:
                decode(model, body)
            except Invalid:
                accepted = False
            else:
                accepted = True
            assert validator.is_valid(body) == accepted, body


def test_rules_across_fields_are_reported_with_the_fields_problems() -> None:
    """A body with a bad field and a broken rule across two good ones gets both problems."""
    metric, problems = parse_metric(
        "latency", {"kind": "median", "direction": "lower_is_better", "default_tolerance": -1}
    )
    assert metric is None
    assert {p.path for p in problems} == {"kind", "default_tolerance"}
    metric, problems = parse_metric("conv", {"kind": "ratio", "direction": "higher_is_better"})
    assert [(p.path, p.message) for p in problems] == [
        ("denominator", "a ratio metric needs its denominator metric")
    ]
    metric, problems = parse_metric(
        "conv", {"kind": "ratio", "direction": "higher_is_better", "denominator": "visits"}
    )
    assert metric is not None
    assert (metric.kind, metric.denominator, metric.unit) == ("ratio", "visits", "")


def test_the_metric_kinds_and_directions_are_the_catalogues() -> None:
    assert KINDS == ("binary", "mean", "count", "ratio")
    assert DIRECTIONS == ("higher_is_better", "lower_is_better")
    schema = components([MetricWrite])["MetricWrite"]
    assert sorted(schema["properties"]["kind"]["enum"]) == sorted(KINDS)
    assert schema["additionalProperties"] is False
    assert "allOf" in schema  # the rules across fields, stated beside the model


def _events() -> Iterator[dict[str, Any]]:
    """Exposures: a valid one, and each field in turn made odd or wrong."""
    valid = {
        "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "ts": "2026-11-01T09:30:00.123Z",
        "flag": "fraud-model", "flag_version": 3, "variant": "v2", "rule": "eu",
        "unit_type": "user_id", "unit": "u-17", "attrs": {"country": "DE", "amount": 12.5},
    }  # fmt: skip
    yield valid
    changes: list[tuple[str, Any]] = [
        ("id", "0190A1B2C3D47E5F8A9B0C1D2E3F4A5B"), ("id", "not-a-uuid"), ("id", 7),
        ("ts", "2026-11-01 09:30:00+02:00"), ("ts", "2026-11-01"), ("ts", None),
        ("flag", "bad key"), ("flag_version", 0), ("flag_version", 2**53 + 1),
        ("flag_version", True), ("flag_version", 2.0), ("variant", ""), ("rule", None),
        ("rule", 5), ("unit_type", "u" * 257), ("unit", ""), ("unit", "u" * 257),
        ("attrs", None), ("attrs", {}), ("attrs", {"a": [1]}), ("attrs", {"": 1}),
        ("attrs", {'a"b': 1}), ("attrs", {f"k{i}": i for i in range(33)}),
        ("attrs", {"a": "x" * 257}), ("attrs", {"a": None, "b": True}), ("attrs", "DE"),
    ]  # fmt: skip
    for name, value in changes:
        yield {**valid, name: value}
    for name in valid:
        yield {k: v for k, v in valid.items() if k != name}


def test_what_ingestion_accepts_the_event_models_accept() -> None:
    """Ingestion checks events with its own code (the hot path); the models state the wire
    shape. Whatever ingestion stores, the model accepts; ingestion refuses more (the time
    window, the forms of ids and times, attribute names the analysis can query)."""
    window = Window.around(datetime.now(UTC), 100 * 365 * 86400.0, 100 * 365 * 86400.0)
    verdicts = {(True, True): 0, (False, True): 0, (False, False): 0}
    for event in _events():
        rows, _ = validate_batch("exposures", [event], "qa", "2026-11-01T09:30:00Z", 10, window)
        try:
            msgspec.convert(event, Exposure, strict=True)
        except msgspec.ValidationError:
            modelled = False
        else:
            modelled = True
        assert modelled or not rows, event
        verdicts[bool(rows), modelled] += 1
    assert verdicts[True, True] >= 5, verdicts
    assert verdicts[False, False] >= 15, verdicts

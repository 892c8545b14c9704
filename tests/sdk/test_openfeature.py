"""``RollwiseProvider`` through the real openfeature-sdk API (``api.set_provider``, its client)."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.exception import ProviderFatalError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

import rollwise
from rollwise.openfeature import RollwiseProvider
from rollwise.testing import capture_exposures
from rollwise_server.testing import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
QA = EvaluationContext("u1", {"country": "US"})
NOBODY = EvaluationContext("user-42", {"country": "US", "amount": 120})


@pytest.fixture(autouse=True)
def _reset_openfeature() -> Iterator[None]:
    """The openfeature API is global state: every test leaves it as it found it."""
    yield
    api.shutdown()


def use(provider: RollwiseProvider) -> OpenFeatureClient:
    api.set_provider_and_wait(provider)
    return api.get_client()


def example_client(**options: Any) -> rollwise.Client:
    return rollwise.Client.offline(EXAMPLE, **options)


class FixedClient(rollwise.Client):
    """Serves one fixed ``Assignment`` and records what the provider asked and tracked."""

    assignment: rollwise.Assignment
    asked: list[tuple[str, dict[str, Any]]]
    tracked: list[tuple[Any, ...]]

    @classmethod
    def serving(cls, assignment: rollwise.Assignment) -> FixedClient:
        client = cls.offline(EXAMPLE)
        client.assignment = assignment
        client.asked = []
        client.tracked = []
        return client

    def evaluate(
        self, flag_key: str, context: Mapping[str, Any], /, *, default: str | None = None
    ) -> rollwise.Assignment:
        self.asked.append((flag_key, dict(context)))
        return self.assignment

    def evaluate_value(
        self, flag_key: str, context: Mapping[str, Any], default: Any, flag_type: Any, /
    ) -> rollwise.Assignment:
        return self.evaluate(flag_key, context)

    def track(
        self,
        metric: str,
        unit: str | int,
        value: float | int | bool,
        *,
        unit_type: str = "user_id",
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self.tracked.append((metric, unit, value, unit_type, attrs))


class BrokenClient(rollwise.Client):
    def evaluate(
        self, flag_key: str, context: Mapping[str, Any], /, *, default: str | None = None
    ) -> rollwise.Assignment:
        raise RuntimeError("boom")

    def track(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    def close(self) -> None:
        raise RuntimeError("boom")


def flag(variants: dict[str, Any], **extra: Any) -> dict[str, Any]:
    first = next(iter(variants))
    return {
        "version": 7,
        "variants": variants,
        "off_variant": first,
        "default_variant": first,
        **extra,
    }


PAYLOADS = {
    "schema_version": 1,
    "environment": "test",
    "revision": 1,
    "segments": {},
    "flags": {
        "thresholds": flag(
            {"on": {"payload": {"cutoffs": [0.2, 0.8], "model": {"name": "m", "tags": ["a"]}}}}
        ),
        "ensemble": flag({"on": {"payload": ["fraud-a", "fraud-b"]}}),
        "named": flag({"on": {"payload": "fraud-2025-11"}}),
        "bare": flag({"on": {}}),
        "by-account": flag(
            {"small": {}, "big": {}},
            rules=[
                {
                    "id": "vip",
                    "conditions": [
                        {"attribute": "account_id", "operator": "in", "values": ["acct-1"]}
                    ],
                    "serve": {"variant": "big"},
                }
            ],
        ),
    },
}


# --- string resolution and the reason table ---


def test_string_resolution_is_the_variant_key_with_reason_and_metadata() -> None:
    client = use(RollwiseProvider(example_client()))
    details = client.get_string_details("fraud-model", "v1", QA)
    assert details == FlagEvaluationDetails(
        flag_key="fraud-model",
        value="v2",
        variant="v2",
        reason=OFReason.TARGETING_MATCH,
        flag_metadata={"flag_version": 3, "rule": "qa-team"},
    )
    assert client.get_string_value("fraud-model", "v1", NOBODY) == "v1"


def before_the_schedule() -> float:
    return datetime(2026, 10, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("context", "clock", "variant", "reason", "metadata"),
    [
        (QA, None, "v2", OFReason.TARGETING_MATCH, {"flag_version": 3, "rule": "qa-team"}),
        (NOBODY, None, "v1", OFReason.DEFAULT, {"flag_version": 3}),
        (QA, before_the_schedule, "v1", OFReason.DISABLED, {"flag_version": 3}),
    ],
    ids=["targeting-match", "default", "disabled"],
)
def test_reasons_from_real_evaluations(
    context: EvaluationContext,
    clock: Any,
    variant: str,
    reason: OFReason,
    metadata: dict[str, Any],
) -> None:
    rollwise_client = example_client(clock=clock) if clock else example_client()
    details = use(RollwiseProvider(rollwise_client)).get_string_details(
        "fraud-model", "fallback", context
    )
    assert (details.value, details.variant, details.reason) == (variant, variant, reason)
    assert details.flag_metadata == metadata
    assert details.error_code is None
    assert details.error_message is None


def test_split_reason_and_the_targeting_key_is_the_bucketing_unit() -> None:
    rollwise_client = example_client()
    client = use(RollwiseProvider(rollwise_client))
    served = {}
    for i in range(2000):
        attributes: dict[str, str | int] = {"country": "DE", "amount": 100}
        details = client.get_string_details(
            "fraud-model", "fallback", EvaluationContext(f"user-{i}", attributes)
        )
        assert details.reason == OFReason.SPLIT
        assert details.flag_metadata == {"flag_version": 3, "rule": "eu-small"}
        expected = rollwise_client.variant("fraud-model", {"user_id": f"user-{i}", **attributes})
        assert details.value == details.variant == expected
        served[f"user-{i}"] = details.value
    assert 5 <= sum(v == "v2" for v in served.values()) <= 45  # a 1% arm of 2000 units


def test_split_assignments_are_exposures_of_the_targeting_key() -> None:
    rollwise_client = example_client()
    client = use(RollwiseProvider(rollwise_client))
    with capture_exposures(rollwise_client) as exposures:
        client.get_string_value("fraud-model", "v1", EvaluationContext("user-7", {"country": "FR"}))
        client.get_string_value(
            "fraud-model", "v1", EvaluationContext("user-8", {"country": "FR", "amount": 50})
        )
    assert [(e.unit_type, e.unit, e.rule) for e in exposures] == [("user_id", "user-8", "eu-small")]


def test_stale_reason() -> None:
    assignment = rollwise.Assignment(
        flag="fraud-model", variant="v2", reason=rollwise.Reason.STALE, flag_version=3, rule="r"
    )
    details = use(RollwiseProvider(FixedClient.serving(assignment))).get_string_details(
        "fraud-model", "v1", QA
    )
    assert (details.value, details.variant, details.reason) == ("v2", "v2", OFReason.STALE)
    assert details.flag_metadata == {"flag_version": 3, "rule": "r"}


def test_every_rollwise_reason_is_mapped() -> None:
    """The table above covers every ``Reason``: a new one must be added to the provider too."""
    covered = {"TARGETING_MATCH", "DEFAULT", "DISABLED", "SPLIT", "STALE", "ERROR"}
    assert {r.value for r in rollwise.Reason} == covered


# --- errors ---


@pytest.mark.parametrize(
    ("code", "expected", "message"),
    [
        (rollwise.ErrorCode.FLAG_NOT_FOUND, OFErrorCode.FLAG_NOT_FOUND, "no flag 'fraud-model'"),
        (
            rollwise.ErrorCode.INVALID_CONTEXT,
            OFErrorCode.INVALID_CONTEXT,
            "could not use the evaluation context",
        ),
        (
            rollwise.ErrorCode.PROVIDER_NOT_READY,
            OFErrorCode.PROVIDER_NOT_READY,
            "has no rules yet",
        ),
        (rollwise.ErrorCode.PARSE_ERROR, OFErrorCode.PARSE_ERROR, "could not parse the rules"),
        (rollwise.ErrorCode.GENERAL, OFErrorCode.GENERAL, "see the 'rollwise' log"),
    ],
    ids=str,
)
def test_error_codes_serve_the_callers_default(
    code: rollwise.ErrorCode, expected: OFErrorCode, message: str
) -> None:
    assignment = rollwise.Assignment(
        flag="fraud-model",
        variant="v1",  # rollwise's safe off_variant; OpenFeature's rule is the caller's default
        reason=rollwise.Reason.ERROR,
        flag_version=3,
        error_code=code,
    )
    client = use(RollwiseProvider(FixedClient.serving(assignment)))
    details = client.get_string_details("fraud-model", "my-default", QA)
    assert (details.value, details.variant) == ("my-default", None)
    assert (details.reason, details.error_code) == (OFReason.ERROR, expected)
    assert message in (details.error_message or "")
    assert details.flag_metadata == {"flag_version": 3}
    objects = client.get_object_details("fraud-model", {"model": "mine"}, QA)
    assert (objects.value, objects.error_code) == ({"model": "mine"}, expected)


def test_every_rollwise_error_code_is_mapped() -> None:
    assert {c.value for c in rollwise.ErrorCode} == {
        "FLAG_NOT_FOUND",
        "INVALID_CONTEXT",
        "PROVIDER_NOT_READY",
        "PARSE_ERROR",
        "TYPE_MISMATCH",
        "GENERAL",
    }


def test_an_unknown_flag_is_flag_not_found() -> None:
    client = use(RollwiseProvider(example_client()))
    details = client.get_string_details("no-such-flag", "fallback", QA)
    assert (details.value, details.variant, details.reason) == ("fallback", None, OFReason.ERROR)
    assert details.error_code == OFErrorCode.FLAG_NOT_FOUND
    assert details.error_message == "rollwise has no flag 'no-such-flag'"
    assert details.flag_metadata == {}


def test_an_online_client_without_rules_is_provider_not_ready() -> None:
    """``set_provider_and_wait`` waits (``ready_timeout``), then says the provider is not ready
    rather than pretend: OpenFeature's status is ERROR and evaluations serve the defaults."""
    with rollwise.Client(
        "http://127.0.0.1:9", "rw_nothing", cache_dir=None, connect_timeout=0.2
    ) as offline_server:
        with pytest.raises(ProviderNotReadyError, match=r"no rules after 0\.5 s"):
            api.set_provider_and_wait(RollwiseProvider(offline_server, ready_timeout=0.5))
        client = api.get_client()
        assert client.get_provider_status() == ProviderStatus.ERROR
        details = client.get_string_details("fraud-model", "v1", QA)
    assert (details.value, details.reason) == ("v1", OFReason.ERROR)
    assert details.error_code == OFErrorCode.PROVIDER_NOT_READY


def test_the_provider_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    provider = RollwiseProvider(BrokenClient.offline(EXAMPLE), close_client_on_shutdown=True)
    client = use(provider)
    with caplog.at_level(logging.ERROR, logger="rollwise"):
        details = client.get_string_details("fraud-model", "safe", QA)
        objects = client.get_object_details("fraud-model", ["safe"], QA)
        client.track("fraud_caught", QA)
        provider.shutdown()
    assert (details.value, details.reason, details.error_code) == (
        "safe",
        OFReason.ERROR,
        OFErrorCode.GENERAL,
    )
    assert (objects.value, objects.error_code) == (["safe"], OFErrorCode.GENERAL)
    assert details.error_message == "evaluating flag 'fraud-model' failed; see the 'rollwise' log"
    assert caplog.text.count("RuntimeError: boom") == 4


# --- object resolution ---


def test_object_resolution_is_the_payload_as_plain_dicts_and_lists() -> None:
    client = use(RollwiseProvider(example_client()))
    details = client.get_object_details("fraud-model", {"model": "fallback"}, QA)
    assert details == FlagEvaluationDetails(
        flag_key="fraud-model",
        value={"model": "fraud-2025-11"},
        variant="v2",
        reason=OFReason.TARGETING_MATCH,
        flag_metadata={"flag_version": 3, "rule": "qa-team"},
    )
    assert type(details.value) is dict


def test_object_payloads_are_thawed_and_fresh_for_every_call() -> None:
    client = use(RollwiseProvider(rollwise.Client.offline(PAYLOADS)))
    value = client.get_object_value("thresholds", {})
    assert value == {"cutoffs": [0.2, 0.8], "model": {"name": "m", "tags": ["a"]}}
    assert isinstance(value, dict)
    assert type(value["cutoffs"]) is list
    assert type(value["model"]) is dict
    value["cutoffs"].append(1.0)  # the caller's copy: the next evaluation is unchanged
    assert client.get_object_value("thresholds", {}) == {
        "cutoffs": [0.2, 0.8],
        "model": {"name": "m", "tags": ["a"]},
    }
    ensemble = client.get_object_details("ensemble", [])
    assert (ensemble.value, ensemble.variant, ensemble.reason) == (
        ["fraud-a", "fraud-b"],
        "on",
        OFReason.DEFAULT,
    )
    assert ensemble.flag_metadata == {"flag_version": 7}


@pytest.mark.parametrize(
    ("flag_key", "found"), [("named", "a str payload"), ("bare", "no payload")]
)
def test_a_payload_that_is_not_an_object_is_a_type_mismatch(flag_key: str, found: str) -> None:
    client = use(RollwiseProvider(rollwise.Client.offline(PAYLOADS)))
    details = client.get_object_details(flag_key, {"model": "mine"})
    assert (details.value, details.reason) == ({"model": "mine"}, OFReason.ERROR)
    assert details.error_code == OFErrorCode.TYPE_MISMATCH
    assert details.error_message == (
        f"variant 'on' of flag {flag_key!r} has {found}, not a JSON object or array"
    )
    assert client.get_string_value(flag_key, "x") == "on"  # the variant key is still there


# --- typed flags: every type through OpenFeature ---

TYPED = Path(__file__).resolve().parents[2] / "docs" / "examples" / "typed-flags.json"
ORDER = EvaluationContext("user-42", {"country": "NL", "amount": 2500})


@pytest.mark.parametrize(
    ("method", "flag_key", "default", "value", "variant", "reason"),
    [("get_boolean_details", "fraud-checks-enabled", False, True, "on", OFReason.DEFAULT),
     ("get_integer_details", "review-queue-size", 1, 500, "large", OFReason.TARGETING_MATCH),
     ("get_float_details", "fraud-threshold", 0.9, None, None, OFReason.SPLIT),
     ("get_string_details", "model-name", "x", "fraud-2025-11", "v2", OFReason.DEFAULT),
     ("get_object_details", "scoring-config", {}, None, "v2", OFReason.TARGETING_MATCH)],
)  # fmt: skip
def test_each_type_resolves_to_its_value(
    method: str, flag_key: str, default: Any, value: Any, variant: str | None, reason: str
) -> None:
    rollwise_client = rollwise.Client.offline(TYPED)
    details = getattr(use(RollwiseProvider(rollwise_client)), method)(flag_key, default, ORDER)
    assert details.error_code is None
    assert details.reason == reason
    flag = rollwise_client.rules.flags[flag_key]  # type: ignore[union-attr]
    expected = rollwise_client.evaluate(flag_key, {"user_id": "user-42", **ORDER.attributes})
    assert details.variant == (variant or expected.variant)
    assert details.value == (value if value is not None else rollwise.thaw(expected.value))
    assert type(details.value) is type(rollwise.thaw(flag.variants[details.variant].value))
    assert details.flag_metadata["flag_version"] == flag.version
    if reason != OFReason.DEFAULT:
        assert details.flag_metadata["rule"] == expected.rule


def test_a_json_value_is_a_fresh_copy_the_caller_may_change() -> None:
    client = use(RollwiseProvider(rollwise.Client.offline(TYPED)))
    first = client.get_object_value("scoring-config", {}, ORDER)
    assert first == {
        "model": "fraud-2025-11", "features": ["amount", "country", "device"], "timeout_ms": 60,
    }  # fmt: skip
    first["features"].append("changed")  # type: ignore[index,union-attr]
    assert client.get_object_value("scoring-config", {}, ORDER)["features"][-1] == "device"  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "flag_key", "default", "kind", "asked"),
    [("get_boolean_details", "review-queue-size", True, "integer", "boolean"),
     ("get_integer_details", "fraud-threshold", 5, "float", "integer"),
     ("get_float_details", "review-queue-size", 0.5, "integer", "float"),
     ("get_string_details", "fraud-checks-enabled", "on", "boolean", "string"),
     ("get_object_details", "fraud-threshold", {"a": 1}, "float", "json"),
     ("get_boolean_details", "fraud-model", False, "string", "boolean")],
)  # fmt: skip
def test_another_type_is_a_type_mismatch_and_evaluates_nothing(
    method: str, flag_key: str, default: Any, kind: str, asked: str
) -> None:
    rules = json.loads(TYPED.read_text(encoding="utf-8"))
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    rules["flags"]["fraud-model"] = example["flags"]["fraud-model"]
    rules["segments"] = example["segments"]
    rollwise_client = rollwise.Client.offline(rules)
    client = use(RollwiseProvider(rollwise_client))
    with capture_exposures(rollwise_client) as exposures:
        details = getattr(client, method)(flag_key, default, ORDER)
    assert details.value == default
    assert (details.reason, details.error_code) == (OFReason.ERROR, OFErrorCode.TYPE_MISMATCH)
    assert details.error_message == (
        f"rollwise flag {flag_key!r} is of type {kind}, not {asked}: read it with the "
        "accessor of its type (docs/spec/rules.md, Flag types)"
    )
    assert details.variant is None
    assert exposures == []  # not evaluated: no exposure for an answer the caller never uses


def test_hooks_see_typed_values() -> None:
    seen: list[tuple[str, Any]] = []

    class Recorder(Hook):
        def after(
            self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
        ) -> None:
            seen.append((hook_context.flag_type.value, details.value))

    client = use(RollwiseProvider(rollwise.Client.offline(TYPED)))
    client.add_hooks([Recorder()])
    client.get_boolean_value(
        "fraud-checks-enabled", False, EvaluationContext("u", {"country": "GB"})
    )
    client.get_integer_value("review-queue-size", 1, ORDER)
    assert seen == [("BOOLEAN", False), ("INTEGER", 500)]


# --- the context ---


def test_context_mapping_targeting_key_and_attributes() -> None:
    assignment = rollwise.Assignment(flag="f", variant="a", reason=rollwise.Reason.DEFAULT)
    fixed = FixedClient.serving(assignment)
    api.set_evaluation_context(EvaluationContext(attributes={"region": "eu"}))
    client = use(RollwiseProvider(fixed))
    client.get_string_value("f", "x", EvaluationContext("u9", {"country": "DE", "user_id": "x"}))
    client.get_string_value("f", "x", EvaluationContext(attributes={"user_id": "u10"}))
    client.get_string_value("f", "x")
    assert fixed.asked == [
        ("f", {"region": "eu", "country": "DE", "user_id": "u9"}),  # the targeting key wins
        ("f", {"region": "eu", "user_id": "u10"}),
        ("f", {"region": "eu"}),
    ]


def test_unit_attribute_names_what_the_targeting_key_becomes() -> None:
    rollwise_client = rollwise.Client.offline(PAYLOADS)
    client = use(RollwiseProvider(rollwise_client, unit_attribute="account_id"))
    details = client.get_string_details("by-account", "small", EvaluationContext("acct-1"))
    assert (details.value, details.reason) == ("big", OFReason.TARGETING_MATCH)
    assert details.flag_metadata == {"flag_version": 7, "rule": "vip"}
    assert client.get_string_value("by-account", "small", EvaluationContext("acct-2")) == "small"


# --- provider plumbing ---


class RecordingHook(Hook):
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, Any]] = []

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.seen.append((details.variant, details.reason))


def test_metadata_status_and_hooks() -> None:
    hook = RecordingHook()
    api.add_hooks([hook])
    client = use(RollwiseProvider(example_client()))
    assert api.get_provider_metadata().name == "rollwise"
    assert client.get_provider_status() == ProviderStatus.READY
    client.get_string_value("fraud-model", "v1", QA)
    assert hook.seen == [("v2", OFReason.TARGETING_MATCH)]


@pytest.mark.parametrize("owned", [False, True])
def test_shutdown_closes_the_client_only_when_asked(owned: bool) -> None:
    rollwise_client = example_client()
    use(RollwiseProvider(rollwise_client, close_client_on_shutdown=owned))
    api.shutdown()
    assert rollwise_client.status().connection == ("closed" if owned else "offline")


# --- track ---


def test_track_maps_to_outcomes() -> None:
    assignment = rollwise.Assignment(flag="f", variant="a", reason=rollwise.Reason.DEFAULT)
    fixed = FixedClient.serving(assignment)
    client = use(RollwiseProvider(fixed))
    client.track(
        "fraud_caught",
        EvaluationContext("user-7", {"country": "DE"}),
        TrackingEventDetails(value=0.0, attributes={"model": "v2"}),
    )
    client.track("checkout", EvaluationContext("user-8"))
    client.track(
        "latency_ms", EvaluationContext(attributes={"user_id": 42}), TrackingEventDetails(12.5)
    )
    client.track("orphan", EvaluationContext(attributes={"country": "DE"}))
    assert fixed.tracked == [
        ("fraud_caught", "user-7", 0.0, "user_id", {"model": "v2"}),  # 0.0 is kept
        ("checkout", "user-8", 1.0, "user_id", None),  # no details: one occurrence
        ("latency_ms", 42, 12.5, "user_id", None),
        ("orphan", "", 1.0, "user_id", None),  # no unit: the client ignores it with a warning
    ]


def test_track_uses_the_unit_attribute_as_unit_type() -> None:
    assignment = rollwise.Assignment(flag="f", variant="a", reason=rollwise.Reason.DEFAULT)
    fixed = FixedClient.serving(assignment)
    client = use(RollwiseProvider(fixed, unit_attribute="account_id"))
    client.track("revenue", EvaluationContext("acct-1"), TrackingEventDetails(99.5))
    assert fixed.tracked == [("revenue", "acct-1", 99.5, "account_id", None)]


def test_end_to_end_with_a_real_server(server: LiveServer, tmp_path: Path) -> None:
    key = server.token("sdk", env="production")
    rollwise_client = rollwise.Client(
        server.url, key, cache_dir=tmp_path / "cache", flush_interval=0.05
    )
    assert rollwise_client.wait_until_ready(10)
    client = use(RollwiseProvider(rollwise_client, close_client_on_shutdown=True))
    details = client.get_string_details("fraud-model", "v1", QA)
    assert (details.value, details.reason) == ("v2", OFReason.TARGETING_MATCH)
    assert details.flag_metadata == {"flag_version": 1, "rule": "qa-team"}
    assert client.get_object_value("fraud-model", {}, QA) == {"model": "fraud-2025-11"}
    client.track(
        "fraud_caught",
        EvaluationContext("user-7", {"country": "DE"}),
        TrackingEventDetails(value=1.0, attributes={"model": "v2"}),
    )
    client.track("checkout", EvaluationContext("user-8"))
    client.track("latency_ms", EvaluationContext("user-9"), TrackingEventDetails(value=12.5))
    assert rollwise_client.flush(20)
    api.shutdown()  # the provider owns the client: closed, threads stopped
    assert rollwise_client.status().connection == "closed"
    db = sqlite3.connect(server.db)
    rows = db.execute(
        "SELECT metric, unit_type, unit, value, attrs FROM outcomes ORDER BY unit"
    ).fetchall()
    db.close()
    assert [(m, t, u, v, json.loads(a)) for m, t, u, v, a in rows] == [
        ("fraud_caught", "user_id", "user-7", 1.0, {"model": "v2"}),
        ("checkout", "user_id", "user-8", 1.0, {}),
        ("latency_ms", "user_id", "user-9", 12.5, {}),
    ]


# --- import hygiene ---


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )


def test_import_rollwise_does_not_import_openfeature() -> None:
    result = run_python("import sys, rollwise; print('openfeature' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr
    result = run_python("import sys, rollwise.openfeature; print('openfeature' in sys.modules)")
    assert result.stdout.strip() == "True", result.stderr


def test_without_openfeature_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['openfeature'] = None\n"
        "try:\n    import rollwise.openfeature\n"
        "except ImportError as e:\n    print(e)\n"
    )
    result = run_python(code)
    assert result.stdout.strip() == (
        "rollwise.openfeature needs the openfeature-sdk package: "
        "pip install 'rollwise[openfeature]'"
    ), result.stderr


# --- the provider's lifecycle with a real server ---


def test_set_provider_and_wait_waits_for_the_rules(server: LiveServer, tmp_path: Path) -> None:
    """Before: the first evaluation right after ``set_provider_and_wait`` was PROVIDER_NOT_READY
    (initialize returned at once). Now it waits for the client's first answer."""
    rollwise_client = rollwise.Client(server.url, server.token("sdk", env="production"),
                                      cache_dir=tmp_path / "cache")  # fmt: skip
    try:
        api.set_provider_and_wait(RollwiseProvider(rollwise_client))  # no wait_until_ready
        details = api.get_client().get_string_details("fraud-model", "v1", QA)
        assert (details.value, details.reason) == ("v2", OFReason.TARGETING_MATCH)
        assert api.get_client().get_provider_status() == ProviderStatus.READY
    finally:
        api.shutdown()
        rollwise_client.close()


def test_provider_events_follow_the_client(tmp_path: Path) -> None:
    """READY, then CONFIGURATION_CHANGED naming the flag an admin changed, STALE when the server
    dies (the rules in use stay), READY when it answers again: a server process, killed and
    started again on its port and database."""
    import threading

    from rollwise_server.testing import ServerProcess
    from tests.server.conftest import EU_SEGMENT, example_flag

    events: list[tuple[ProviderEvent, list[str] | None]] = []
    seen = threading.Condition()

    def record(kind: ProviderEvent) -> Any:
        def handler(details: EventDetails) -> None:
            with seen:
                events.append((kind, details.flags_changed))
                seen.notify_all()

        return handler

    def wait_for(kind: ProviderEvent) -> list[str] | None:
        with seen:
            assert seen.wait_for(lambda: any(k == kind for k, _ in events), timeout=30), events
            found = next(flags for k, flags in events if k == kind)
            events.clear()
            return found

    handlers = {kind: record(kind) for kind in (
        ProviderEvent.PROVIDER_READY, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
        ProviderEvent.PROVIDER_STALE,
    )}  # fmt: skip
    for kind, handler in handlers.items():
        api.add_handler(kind, handler)
    server = ServerProcess(tmp_path)
    server.start()
    try:
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {server.admin_token}"
        base = f"{server.url}/api/v1/envs/production"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
        token = admin.post(f"{server.url}/api/v1/tokens",
                           json={"role": "sdk", "name": "app", "env": "production"})  # fmt: skip
        rollwise_client = rollwise.Client(
            server.url, token.json()["token"], cache_dir=tmp_path / "cache", connect_timeout=0.5
        )
        provider = RollwiseProvider(rollwise_client, close_client_on_shutdown=True)
        api.set_provider_and_wait(provider)
        wait_for(ProviderEvent.PROVIDER_READY)
        flag = admin.get(f"{base}/flags/fraud-model").json()
        edit = {**{k: flag[k] for k in example_flag() if k != "key"},
                "description": "recalibrated", "version": flag["version"]}  # fmt: skip
        admin.put(f"{base}/flags/fraud-model", json=edit).raise_for_status()
        assert wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED) == ["fraud-model"]
        server.kill()
        wait_for(ProviderEvent.PROVIDER_STALE)
        details = api.get_client().get_string_details("fraud-model", "v1", QA)
        assert details.value == "v2"  # the rules in use stay
        server.start()
        wait_for(ProviderEvent.PROVIDER_READY)
    finally:
        for kind, handler in handlers.items():
            api.remove_handler(kind, handler)
        api.shutdown()
        server.stop()


# --- the OpenFeature specification's provider requirements (docs/sdk.md lists them) ---


def test_requirements_2_2_6_and_2_3_2_no_error_on_success() -> None:
    details = use(RollwiseProvider(example_client())).get_string_details("fraud-model", "v1", QA)
    assert details.error_code is None
    assert details.error_message is None
    assert details.variant == "v2"  # 2.2.4
    assert details.reason == OFReason.TARGETING_MATCH  # 2.2.5
    assert all(isinstance(v, str | int | float | bool) for v in details.flag_metadata.values())


def test_requirements_2_5_2_and_2_5_3_shutdown_is_idempotent_and_can_start_again() -> None:
    rollwise_client = example_client()
    provider = RollwiseProvider(rollwise_client)
    api.set_provider_and_wait(provider)
    provider.shutdown()
    provider.shutdown()  # idempotent: nothing raises, nothing twice
    assert rollwise_client.status().connection == "offline"  # not owned: left open
    api.set_provider_and_wait(provider)  # initialized again after its shutdown
    assert api.get_client().get_string_value("fraud-model", "v1", QA) == "v2"


def test_requirement_2_4_2_1_initialize_fails_when_not_ready() -> None:
    """No rules within the timeout: initialize terminates abnormally."""
    with rollwise.Client("http://127.0.0.1:9", "rw_x", cache_dir=None,
                         connect_timeout=0.2) as unreachable:  # fmt: skip
        provider = RollwiseProvider(unreachable, ready_timeout=0.2)
        with pytest.raises(ProviderNotReadyError):
            provider.initialize(EvaluationContext())
        provider.shutdown()


def test_a_refused_key_is_a_fatal_provider_error(server: LiveServer) -> None:
    with rollwise.Client(server.url, "rw_not_a_key", cache_dir=None) as refused:
        provider = RollwiseProvider(refused, ready_timeout=5)
        with pytest.raises(ProviderFatalError, match="refused the SDK key"):
            provider.initialize(EvaluationContext())
        provider.shutdown()

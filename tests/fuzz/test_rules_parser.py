"""Fuzzing the rules parser: hostile documents raise ``RulesError`` in bounded time, or load.

The public ways in are ``RulesDocument.from_json`` / ``from_text`` (strict, as the server
parses, or not, as an SDK does), ``Flag.from_json``, ``Segment.from_json`` and
``Client.offline`` (a mapping, JSON text or bytes). docs/sdk.md: an invalid document raises
``RulesParseError`` (``UnsupportedSchemaError`` for a newer schema), every exception is a
``RollwiseError``; ``Client.offline`` also raises ``ConfigurationError`` for a source of the
wrong type. A document that loads must also survive its own round trip and evaluate.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rollwise
from rollwise import Flag, RulesDocument, RulesError, Segment, limits
from rollwise.snapshot import load_snapshot, save_snapshot
from tests.fuzz.documents import KITCHEN_SINK, base_documents, matches_document
from tests.fuzz.edits import Case, cases, corrupt
from tests.fuzz.hostile import PATTERNS, bounded, fuzz_settings, nest_dicts, nest_lists

BASES = dict(zip(["kitchen-sink", "example"], base_documents(), strict=True))
ALLOWED = (RulesError, rollwise.ConfigurationError)
"""What the public entry points may raise on a bad document (``ConfigurationError``: a rules
source of a type ``Client.offline`` does not take, such as a list)."""

CONTEXTS: list[dict[str, Any]] = [
    {},
    {"a": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "b": 1, "user_id": "u1"},
    {"a": 2**64, "b": "x" * 4096, "country": "DE", "amount": 5, "user_id": 7},
]


def _object_entries(value: Any) -> list[tuple[str, Callable[[], Any]]]:
    entries: list[tuple[str, Callable[[], Any]]] = [
        ("RulesDocument.from_json", lambda: RulesDocument.from_json(value)),
        ("RulesDocument.from_json(strict)", lambda: RulesDocument.from_json(value, strict=True)),
    ]
    if not isinstance(value, str):  # a str is a file path (or JSON text) to Client.offline
        entries.append(("Client.offline", lambda: rollwise.Client.offline(value)))
    flags = value.get("flags") if isinstance(value, dict) else None
    for key, flag in flags.items() if isinstance(flags, dict) else []:
        entries.append(("Flag.from_json", lambda k=key, f=flag: Flag.from_json(f, key=k)))
        entries.append(("Flag.from_json(strict)", lambda f=flag: Flag.from_json(f, strict=True)))
    segments = value.get("segments") if isinstance(value, dict) else None
    for key, segment in segments.items() if isinstance(segments, dict) else []:
        entries.append(("Segment.from_json", lambda k=key, s=segment: Segment.from_json(s, key=k)))
    return entries


def _check_loaded(document: RulesDocument) -> None:
    """What loads also writes itself back, reads back the same, and evaluates every flag."""
    text = document.to_text()
    assert RulesDocument.from_text(text).to_text() == text
    client = rollwise.Client.offline(document)
    for key, flag in document.flags.items():
        for context in CONTEXTS:
            with bounded(f"variant({key!r})"):
                variant = client.variant(key, context)
            assert variant in flag.variants


def _load(name: str, call: Callable[[], Any]) -> None:
    with bounded(name):
        try:
            result = call()
        except ALLOWED:
            return
    if isinstance(result, RulesDocument):
        _check_loaded(result)


@fuzz_settings(max_examples=250)
@given(cases(BASES))
def test_hostile_documents_as_objects(case: Case) -> None:
    value = case.as_python()
    for name, call in _object_entries(value):
        _load(name, call)


@fuzz_settings(max_examples=250)
@given(st.data(), cases(BASES), st.booleans(), st.booleans())
def test_hostile_documents_as_json_text(
    data: st.DataObject, case: Case, ensure_ascii: bool, as_str: bool
) -> None:
    raw = data.draw(corrupt(case.as_json(ensure_ascii=ensure_ascii)))
    # a str holds what bytes do, invalid UTF-8 as lone surrogates (surrogateescape)
    text: str | bytes = raw.decode("utf-8", "surrogateescape") if as_str else raw
    _load("RulesDocument.from_text", lambda: RulesDocument.from_text(text))
    _load("RulesDocument.from_text(strict)", lambda: RulesDocument.from_text(text, strict=True))
    if isinstance(text, bytes) or text.lstrip().startswith("{"):  # else it names a file
        _load("Client.offline", lambda: rollwise.Client.offline(text))


@fuzz_settings(max_examples=100)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes(raw: bytes, as_str: bool) -> None:
    text: str | bytes = raw.decode("utf-8", "surrogateescape") if as_str else raw
    _load("RulesDocument.from_text", lambda: RulesDocument.from_text(text))
    if isinstance(text, bytes):
        _load("Client.offline", lambda: rollwise.Client.offline(text))


URL, KEY = "http://flags.test", "sdk-fuzz-key"


def _snapshot_base(directory: Path) -> dict[str, Any]:
    """A real snapshot file's JSON (as ``save_snapshot`` writes it), to edit."""
    path = directory / "base.json"
    save_snapshot(path, RulesDocument.from_json(KITCHEN_SINK), url=URL, sdk_key=KEY)
    return {"snapshot": json.loads(path.read_bytes())}


@fuzz_settings(max_examples=100)
@given(st.data())
def test_hostile_snapshot_files(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    """A client's disk cache: ``load_snapshot`` never raises, whatever the file holds."""
    directory = tmp_path_factory.getbasetemp() / "snapshots"
    directory.mkdir(exist_ok=True)
    case = data.draw(cases(_snapshot_base(directory)))
    path = directory / "rules.json"
    path.write_bytes(data.draw(corrupt(case.as_json(ensure_ascii=data.draw(st.booleans())))))
    with bounded("load_snapshot"):
        loaded = load_snapshot(path, url=URL, sdk_key=KEY)
    assert loaded is None or isinstance(loaded[0], RulesDocument)


# -- the headline cases, spelled out ----------------------------------------------------------

DEEP = 100_000


def _document_around(inner: str) -> str:
    return (
        '{"schema_version": 1, "environment": "t", "revision": 1, "flags": {"f": {"version": 1,'
        ' "variants": {"a": {"payload": ' + inner + '}}, "off_variant": "a",'
        ' "default_variant": "a"}}}'
    )


@pytest.mark.parametrize(
    "text",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        _document_around("[" * DEEP + "]" * DEEP),
        _document_around('{"a":' * DEEP + "1" + "}" * DEEP),
        _document_around("1" + "0" * 5000),
    ],
    ids=["lists", "objects", "payload-lists", "payload-objects", "5000-digits"],
)
@pytest.mark.parametrize("form", ["str", "bytes"])
def test_deep_or_huge_json_text_is_a_parse_error(text: str, form: str) -> None:
    source: str | bytes = text if form == "str" else text.encode()
    with bounded("from_text"), pytest.raises(RulesError):
        RulesDocument.from_text(source)
    if form == "bytes" or text.startswith("{"):
        with bounded("Client.offline"), pytest.raises(RulesError):
            rollwise.Client.offline(source)


@pytest.mark.parametrize("depth", [33, 1_000, DEEP])
@pytest.mark.parametrize("build", [nest_lists, nest_dicts], ids=["lists", "objects"])
@pytest.mark.parametrize("where", ["payload", "operand", "unknown-operator-operand"])
def test_deep_python_objects_are_a_parse_error(
    depth: int, build: Callable[[int], Any], where: str
) -> None:
    deep = build(depth)
    flag: dict[str, Any] = {
        "version": 1, "variants": {"a": {}, "b": {}}, "off_variant": "a", "default_variant": "a",
    }  # fmt: skip
    if where == "payload":
        flag["variants"]["b"]["payload"] = deep
    else:
        operator, field = ("in", "values") if where == "operand" else ("future_op", "value")
        condition = {"attribute": "x", "operator": operator, field: deep}
        flag["rules"] = [{"id": "r", "conditions": [condition], "serve": {"variant": "b"}}]
    document = {"schema_version": 1, "environment": "t", "revision": 1, "flags": {"f": flag}}
    with bounded("Client.offline"), pytest.raises(rollwise.RulesParseError):
        rollwise.Client.offline(document)


@pytest.mark.parametrize("pattern", PATTERNS, ids=[ascii(p)[:30] for p in PATTERNS])
def test_pathological_patterns_are_refused_or_evaluate_in_bounded_time(pattern: str) -> None:
    with bounded("Client.offline"):
        try:
            client = rollwise.Client.offline(matches_document(pattern))
        except rollwise.RulesParseError as error:
            refused = [problem.path for problem in error.problems]
        else:
            refused = []
    if refused:
        assert refused == ["flags.f.rules[0].conditions[0].value"]
        return
    for attribute in ["a" * 4096, "a" * 4095 + "!", "x" * 4095 + "y", "é" * 4096, "\ud800" * 9]:
        with bounded(f"matches {pattern!r}"):
            assert client.variant("f", {"a": attribute}) in {"hit", "miss"}


def _call_with_headroom(frames: int, call: Callable[[], Any]) -> Any:
    """``call()`` made with only about ``frames`` Python frames left before the recursion
    limit, as from deep inside an application's own recursion."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]

    def descend(level: int) -> Any:
        if level > 0:
            return descend(level - 1)
        return call()

    return descend(sys.getrecursionlimit() - depth - frames)


def test_a_document_at_the_depth_limits_loads_from_deep_in_the_stack() -> None:
    """Issue 12: a payload 450 deep made ``Client.offline`` raise RecursionError from 200 frames
    deep. At the documented depth limits nothing recurses that far; beyond them, a parse error."""
    document: dict[str, Any] = {**KITCHEN_SINK, "flags": dict(KITCHEN_SINK["flags"])}
    flag = dict(document["flags"]["sink"])
    flag["variants"] = {**flag["variants"], "v2": {"payload": nest_lists(limits.MAX_PAYLOAD_DEPTH)}}
    document["flags"]["sink"] = flag
    client = _call_with_headroom(150, lambda: rollwise.Client.offline(document))
    assert client.rules is not None
    assert limits.json_depth(client.rules.to_json()) > limits.MAX_PAYLOAD_DEPTH
    flag["variants"]["v2"] = {"payload": nest_lists(limits.MAX_PAYLOAD_DEPTH + 1)}
    with pytest.raises(rollwise.RulesParseError, match="max_payload_depth"):
        _call_with_headroom(150, lambda: rollwise.Client.offline(document))


# -- bugs found by this fuzzing, kept as examples (fixed) --


def _deep_tuple(depth: int) -> tuple[Any, ...]:
    value: tuple[Any, ...] = ()
    for _ in range(depth):
        value = (value,)
    return value


@pytest.mark.parametrize(
    "where", ["flag-key", "variant-key", "unknown-key", "serve.variant", "split.variant"]
)
def test_a_deeply_nested_key_or_variant_name_is_a_parse_error(where: str) -> None:
    key, name = _deep_tuple(DEEP), nest_lists(DEEP)
    arms = [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 1}]
    rule: dict[str, Any] = {"id": "r", "conditions": [], "serve": {"split": arms}}
    flag: dict[Any, Any] = {"version": 1, "variants": {"a": {}, "b": {}}, "off_variant": "a",
                            "default_variant": "a", "rules": [rule]}  # fmt: skip
    document: dict[Any, Any] = {"schema_version": 1, "environment": "t", "revision": 1,
                                "flags": {"f": flag}}  # fmt: skip
    if where == "flag-key":
        document["flags"] = {key: {}}
    elif where == "variant-key":
        flag["variants"][key] = {}
    elif where == "unknown-key":
        document[key] = 1
    elif where == "serve.variant":
        rule["serve"] = {"variant": name}
    else:
        arms[0]["variant"] = name
    with bounded("from_json"), pytest.raises(rollwise.RulesParseError):
        RulesDocument.from_json(document, strict=True)


@pytest.mark.parametrize("where", ["payload", "operand"])
def test_a_self_referencing_value_is_a_parse_error(where: str) -> None:
    loop: list[Any] = []
    loop.append(loop)
    flag: dict[str, Any] = {
        "version": 1, "variants": {"a": {}}, "off_variant": "a", "default_variant": "a",
    }  # fmt: skip
    if where == "payload":
        flag["variants"]["a"]["payload"] = loop
    else:
        condition = {"attribute": "x", "operator": "in", "values": loop}
        flag["rules"] = [{"id": "r", "conditions": [condition], "serve": {"variant": "a"}}]
    document = {"schema_version": 1, "environment": "t", "revision": 1, "flags": {"f": flag}}
    with bounded("Client.offline", seconds=0.1), pytest.raises(rollwise.RulesParseError):
        rollwise.Client.offline(document)


@pytest.mark.parametrize(
    "text",
    ["[" * DEEP + "]" * DEEP, "[]", "\ufeff{}", "\x00"],
    ids=["deep-array", "array", "bom-object", "nul"],
)
def test_json_text_that_is_not_an_object_is_a_rollwise_error(text: str) -> None:
    with pytest.raises(rollwise.RollwiseError):
        rollwise.Client.offline(text)


@pytest.mark.parametrize("where", ["schema_version", "serve.variant", "split.variant", "weight"])
def test_an_int_too_long_to_print_is_a_parse_error(where: str) -> None:
    huge = 10**5000
    arms = [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 1}]
    rule: dict[str, Any] = {"id": "r", "conditions": [], "serve": {"split": arms}}
    if where == "serve.variant":
        rule["serve"] = {"variant": huge}
    elif where == "split.variant":
        arms[0]["variant"] = huge
    elif where == "weight":
        arms[0]["weight"] = huge
    flag = {"version": 1, "variants": {"a": {}, "b": {}}, "off_variant": "a",
            "default_variant": "a", "rules": [rule]}  # fmt: skip
    document: dict[str, Any] = {
        "schema_version": huge if where == "schema_version" else 1,
        "environment": "t", "revision": 1, "flags": {"f": flag},
    }  # fmt: skip
    with pytest.raises(RulesError):
        RulesDocument.from_json(document)

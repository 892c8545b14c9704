"""Fuzzing the event decoder: hostile bodies raise only ``ApiError`` (400/413), in bounded time.

``ingest.decode_body`` (gzip, JSON) and ``ingest.validate_batch`` (each event on its own) are
what the ingestion worker runs on every ``/api/v1/sdk/exposures`` and ``/events`` body; an
``ApiError`` becomes a problem+json answer, anything else a 500. A batch that decodes must
account for every event: stored, or reported with its index and the path of each problem.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from rollwise_server.errors import ApiError
from rollwise_server.ingest import EventKind, Window, decode_body, validate_batch
from rollwise_server.settings import Settings
from rollwise_server.storage.sql import now_iso
from tests.fuzz.edits import Case, cases, corrupt, scattered
from tests.fuzz.hostile import bounded, fuzz_settings, hostile_values, json_values, keys

SETTINGS = Settings()
NOW = now_iso()
TS = NOW[:23] + "Z"  # the SDK's form: milliseconds, UTC


def exposure(**overrides: Any) -> dict[str, Any]:
    event = {
        "id": str(uuid.UUID(int=len(overrides) + 1)), "ts": TS, "flag": "fraud-model",
        "flag_version": 3, "variant": "v2", "rule": "eu-small", "unit_type": "user_id",
        "unit": "user-1", "attrs": {"country": "DE", "amount": 120.5},
    }  # fmt: skip
    return {**event, **overrides}


def outcome(**overrides: Any) -> dict[str, Any]:
    event = {
        "id": str(uuid.UUID(int=len(overrides) + 100)), "ts": TS, "metric": "converted",
        "value": 1.0, "unit_type": "user_id", "unit": "user-1", "attrs": {"country": "FR"},
    }  # fmt: skip
    return {**event, **overrides}


BATCHES: dict[str, Any] = {
    "exposures": {"events": [exposure(), exposure(unit="user-2", rule=None, attrs=None)]},
    "outcomes": {"events": [outcome(), outcome(value=-2, unit="u-3")]},
    "exposures-array": [exposure(unit="user-3")],
}


def decode_and_validate(kind: EventKind, raw: bytes, encoding: str | None) -> Any:
    """What the ingestion worker does with one request body (``IngestWorker._prepare``)."""
    body = decode_body(raw, encoding, SETTINGS.max_body_bytes)
    window = Window.around(datetime.now(UTC), SETTINGS.event_max_age, SETTINGS.event_max_future)
    rows_errors = validate_batch(
        kind, body, "production", now_iso(), SETTINGS.max_batch_events, window
    )
    return body, rows_errors


def _check(kind: EventKind, raw: bytes, encoding: str | None) -> None:
    with bounded(f"decode and validate {len(raw)} bytes ({encoding})"):
        try:
            body, (rows, errors) = decode_and_validate(kind, raw, encoding)
        except ApiError as error:
            status = error.status
        else:
            status = 200
    assert status in (200, 400, 413), status
    if status != 200:
        return
    events = body.get("events") if isinstance(body, dict) else body
    assert len(rows) + len(errors) == len(events)
    assert sorted(e["index"] for e in errors) == [e["index"] for e in errors]
    for error in errors:
        assert error["problems"]
        for problem in error["problems"]:
            assert isinstance(problem["path"], str)
            assert isinstance(problem["message"], str)
    # the answer lists the errors as JSON text in UTF-8 (Starlette's JSONResponse)
    json.dumps(errors, ensure_ascii=False, allow_nan=False).encode()
    for row in rows:  # what is stored is text SQLite and every client can read back
        for field in row:
            if isinstance(field, str):
                field.encode("utf-8")
        assert isinstance(json.loads(row[-2]), dict)  # attrs


@st.composite
def gzipped(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` in one to four gzip members, cut where Hypothesis likes."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    bounds = [0, *cuts, len(data)]
    return b"".join(gzip.compress(data[a:b], mtime=0) for a, b in itertools.pairwise(bounds))


def _kind(case: Case) -> EventKind:
    return "outcomes" if case.name == "outcomes" else "exposures"


@fuzz_settings(max_examples=300)
@given(
    st.data(),
    st.one_of(cases(BATCHES), scattered(BATCHES, one_in=4)),
    st.booleans(),
    st.sampled_from([None, "identity", "gzip"]),
)
def test_hostile_batches(
    data: st.DataObject, case: Case, ensure_ascii: bool, encoding: str | None
) -> None:
    raw = case.as_json(ensure_ascii=ensure_ascii)
    if encoding == "gzip":
        raw = data.draw(gzipped(raw))
    _check(_kind(case), data.draw(corrupt(raw)), encoding)


@fuzz_settings(max_examples=150)
@given(
    st.dictionaries(
        keys(), st.one_of(json_values, hostile_values().map(lambda r: r.make())), max_size=5
    ),
    st.booleans(),
)
def test_hostile_attributes(attrs: dict[str, Any], ensure_ascii: bool) -> None:
    """The issue's "attribute names and values bounded": any names, any values, in JSON."""
    try:
        raw = json.dumps(
            {"events": [exposure(attrs=attrs)]}, ensure_ascii=ensure_ascii, default=str
        )
    except (ValueError, RecursionError):  # more digits or more depth than json can write
        reject()
    _check("exposures", raw.encode("utf-8", "surrogatepass"), None)


@fuzz_settings(max_examples=150)
@given(st.binary(max_size=400), st.sampled_from(["exposures", "outcomes"]),
       st.sampled_from([None, "gzip", "GZIP ", "deflate", "br", "\ud800", ""]))  # fmt: skip
def test_arbitrary_bytes(raw: bytes, kind: EventKind, encoding: str | None) -> None:
    _check(kind, raw, encoding)


def _body(**fields: Any) -> bytes:
    return json.dumps({"events": [exposure(**fields)]}).encode()


MEMBER = gzip.compress(b"[]", mtime=0)


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (b"[" * 100_000 + b"]" * 100_000, None),
        (gzip.compress(b"[" * 100_000 + b"]" * 100_000), "gzip"),
        (b'{"events": [' + b"[" * 995 + b"]" * 995 + b"]}", None),
        (_body(attrs={"a": "@"}).replace(b'"@"', b"[" * 990 + b"]" * 990), None),
        (
            _body().replace(b'"unit": "user-1"', b'"unit": ' + b'{"a":' * 995 + b"1" + b"}" * 995),
            None,
        ),
        (gzip.compress(b" " * 50_000_000), "gzip"),  # a bomb: 50 MB of spaces in 50 kB
        (gzip.compress(_body())[:-5], "gzip"),  # truncated
        (gzip.compress(_body()) + b"junk", "gzip"),
        (gzip.compress(_body())[:-8] + b"\0" * 8, "gzip"),  # a bad CRC
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "gzip"),  # a header, nothing else
        (gzip.compress(gzip.compress(_body())), "gzip"),
        (zlib.compress(_body()), "gzip"),
        (_body().replace(b'"user-1"', b'"\xff\xfe"'), None),
        (_body().replace(b'"user-1"', b'"\xed\xa0\x80"'), None),  # a surrogate in UTF-8
        (_body(unit="\ud800"), None),
        (_body(attrs={"\ud800": "x"}), None),
        (_body(ts="\ud800" * 30), None),
        (_body(flag_version=10**400), None),
        (_body().replace(b'"flag_version": 3', b'"flag_version": 1' + b"0" * 5000), None),
        (_body().replace(b'"flag_version": 3', b'"flag_version": NaN'), None),
        (_body().replace(b'"amount": 120.5', b'"amount": 1e400'), None),
        (json.dumps(list(range(SETTINGS.max_batch_events + 1))).encode(), None),
        (json.dumps({"events": [exposure()] * 2}).encode("utf-16"), None),
        (MEMBER * 1_000, "gzip"),
    ],
    ids=[
        "deep",
        "deep-gzip",
        "deep-event",
        "deep-attrs",
        "deep-unit",
        "gzip-bomb",
        "gzip-truncated",
        "gzip-junk",
        "gzip-crc",
        "gzip-header",
        "gzip-twice",
        "zlib",
        "invalid-utf8",
        "utf8-surrogate",
        "surrogate-unit",
        "surrogate-attr-name",
        "surrogate-ts",
        "int-400-digits",
        "int-5000-digits",
        "nan",
        "1e400",
        "too-many",
        "utf16",
        "1000-members",
    ],
)
def test_hostile_bodies(raw: bytes, encoding: str | None) -> None:
    _check("exposures", raw, encoding)


_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.mark.parametrize(
    "ts",
    [
        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
        "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T10:00:00+99:99",
        "2026-11-25T10:00:00.000000000Z", "2026-11-25 10:00:00", "20261125T100000Z",
        "2026-11-25", "0000-01-01T00:00:00Z", "+2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000Z ",
        "1e308", "", "x" * 10_000, "0999-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00",
        "2026-11-25T10:00:00.000Z\x00",
    ],
)  # fmt: skip
def test_a_timestamp_is_refused_per_event_or_stored_canonical(ts: str) -> None:
    with bounded("validate"):
        _, (rows, errors) = decode_and_validate("exposures", _body(ts=ts), None)
    if rows:
        assert _CANONICAL.fullmatch(rows[0][2]), rows[0][2]
    else:
        assert [p["path"] for p in errors[0]["problems"]] == ["ts"]


# -- bugs found by this fuzzing, kept as examples (fixed) --


@pytest.mark.parametrize("digits", [310, 400, 4300])
def test_an_outcome_value_too_large_for_a_float_is_refused_per_event(digits: int) -> None:
    raw = json.dumps({"events": [outcome()]}).replace(
        '"value": 1.0', '"value": 1' + "0" * (digits - 1)
    )
    _, (rows, errors) = decode_and_validate("outcomes", raw.encode(), None)
    assert (rows, [p["path"] for p in errors[0]["problems"]]) == ([], ["value"])


def test_many_gzip_members_decode_in_linear_time() -> None:
    raw = gzip.compress(b" ", mtime=0) * 60_000 + MEMBER  # 1.3 MB: under the body limit
    with bounded("decode 60,001 gzip members"):
        assert decode_body(raw, "gzip", SETTINGS.max_body_bytes) == []


@pytest.mark.parametrize("attrs", [{"\ud800": {"x": 1}}, {"a\udfff": "\ud800"}])
def test_a_rejected_attribute_named_with_a_lone_surrogate_is_answered(attrs: Any) -> None:
    _, (_, errors) = decode_and_validate("exposures", _body(attrs=attrs), None)
    assert errors
    json.dumps(errors, ensure_ascii=False, allow_nan=False).encode()

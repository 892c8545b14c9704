"""Ingestion of exposure, outcome and prediction batches: decode, validate each event, store
idempotently.

The wire shape of an event is declared by ``models.events`` (its bounds are read from there);
this module checks events one by one on the hot path, and refuses more than the models say
(decision 0015).

A batch is ``{"events": [...]}`` (a bare JSON array is accepted too), optionally gzip'd
(``Content-Encoding: gzip``, every member read), of at most ``max_batch_events`` events.
Each event is validated on its own: valid ones are stored, invalid ones are counted and
reported with their index and the path of each problem, so one bad event does not cost the
batch. Storage is idempotent on the
event ``id`` (``INSERT OR IGNORE``): a redelivered batch adds nothing.
"""

from __future__ import annotations

import json
import math
import re
import uuid
import zlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs

from rollwise import limits
from rollwise._parse import KEY_PATTERN
from rollwise.durations import format_duration
from rollwise_server.errors import BadRequest, PayloadTooLarge
from rollwise_server.models.events import MAX_ATTRS, MAX_INTEGER, MAX_UNIT_LENGTH, MAX_VALUE
from rollwise_server.storage.base import EventRow
from rollwise_server.times import utc_moment

__all__ = ["EventKind", "Window", "decode_body", "validate_batch"]

EventKind = Literal["exposures", "outcomes", "predictions"]
ROLES = ("live", "shadow")
STATUSES = ("ok", "error", "timeout")
MAX_LATENCY_MS = 86_400_000.0
MAX_ATTRIBUTE_LENGTH = limits.MAX_ATTRIBUTE_LENGTH
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_key = KEY_PATTERN.fullmatch
_encode_attrs = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
# The forms the SDK sends, accepted without re-parsing: a lowercase hyphenated UUID, and a UTC
# time with milliseconds on a day that exists in every month (29-31 take the full parse).
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch
_CANONICAL_TS = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:"
    r"[0-5][0-9]\.[0-9]{3}Z"
).fullmatch


GZIP_CHUNK = 64 * 1024


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, one after the other: all are
    read), never more than ``max_bytes`` in all. The body is fed in chunks, so the data left
    after each member is at most a chunk: many members cost linear time, not quadratic."""
    parts: list[bytes] = []
    size = 0
    view = memoryview(raw)
    offset = 0
    while True:
        inflater = zlib.decompressobj(wbits=31)
        while not inflater.eof:
            if offset >= len(view):
                raise BadRequest("the body is not valid gzip: it ends inside a member")
            chunk = view[offset : offset + GZIP_CHUNK]
            offset += len(chunk)
            try:
                part = inflater.decompress(chunk, max_bytes + 1 - size)
            except zlib.error as exc:
                raise BadRequest(f"the body is not valid gzip: {exc}") from None
            size += len(part)
            if size > max_bytes or inflater.unconsumed_tail:
                raise PayloadTooLarge(f"the decompressed body exceeds {max_bytes} bytes")
            parts.append(part)
        offset -= len(inflater.unused_data)  # what the chunk held beyond this member
        rest = view[offset:]
        if not rest or (rest[0] == 0 and not bytes(rest).strip(b"\x00")):  # zero padding
            return b"".join(parts)


def decode_body(raw: bytes, encoding: str | None, max_bytes: int) -> Any:
    """The JSON of a request body, gunzipped if needed, never larger than ``max_bytes``."""
    if encoding and encoding.strip().lower() == "gzip":
        raw = _gunzip(raw, max_bytes)
    elif encoding and encoding.strip().lower() not in ("identity", ""):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # nested beyond the parser's stack: refused, never a 500
        raise BadRequest("the body nests too deeply to be a batch of events") from None


def _text(value: Any, longest: int) -> bool:
    """A string of 1..longest characters that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str) or not 0 < len(value) <= longest:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _ts(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    if _CANONICAL_TS(value) is not None:
        return value
    if len(value) < 19 or value[10] not in "Tt ":  # a date alone, or a compact ISO 8601 form
        return None
    try:
        moment = utc_moment(value)
    except OverflowError:
        return None
    if moment is None:
        return None
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _shown(name: Any) -> str:
    """A name as a problem's path shows it: at most 40 characters, and always encodable (a
    lone surrogate is escaped), so the answer that reports it can be sent."""
    text = name if isinstance(name, str) else repr(name)
    text = text[:40] + "…" if len(text) > 40 else text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _attribute_name(name: Any) -> bool:
    """1..``MAX_ATTRIBUTE_LENGTH`` characters, none of them a control character, a quote or a
    backslash (names are queried by the analysis as JSON paths)."""
    return _text(name, MAX_ATTRIBUTE_LENGTH) and limits.plain_name(name)


def _attrs(value: Any, problems: list[dict[str, str]]) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, Mapping) or len(value) > MAX_ATTRS:
        problems.append(
            {"path": "attrs", "message": f"must be an object of at most {MAX_ATTRS} members"}
        )
        return "{}"
    for name, item in value.items():
        if not _attribute_name(name):
            problems.append(
                {
                    "path": f"attrs.{_shown(name)}",
                    "message": f"an attribute name is 1-{MAX_ATTRIBUTE_LENGTH} characters "
                    "without control characters, quotes or backslashes",
                }
            )
        elif item is not None and not isinstance(item, str | int | float | bool):
            problems.append(
                {
                    "path": f"attrs.{_shown(name)}",
                    "message": "must be a string, number, boolean or null",
                }
            )
        elif isinstance(item, float) and not math.isfinite(item):
            problems.append({"path": f"attrs.{_shown(name)}", "message": "must be a finite number"})
        elif isinstance(item, str) and not _text(item, MAX_UNIT_LENGTH) and item:
            problems.append(
                {
                    "path": f"attrs.{_shown(name)}",
                    "message": f"must be at most {MAX_UNIT_LENGTH} characters",
                }
            )
    return _encode_attrs(value)


@attrs.frozen
class Window:
    """The event times a batch may carry, as canonical UTC strings (they compare as times)."""

    earliest: str
    latest: str
    max_age: float
    max_future: float

    @classmethod
    def around(cls, now: datetime, max_age: float, max_future: float) -> Window:
        def text(moment: datetime) -> str:
            return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.%f")[:-3] + "Z"

        earliest = now - timedelta(seconds=min(max_age, 3e9))
        latest = now + timedelta(seconds=min(max_future, 3e9))
        return cls(text(earliest), text(latest), max_age, max_future)

    def problem(self, ts: str) -> str | None:
        """Why ``ts`` is refused, or ``None``."""
        if ts < self.earliest:
            return (
                f"is older than {format_duration(self.max_age)} (event_max_age): "
                "events so late are refused"
            )
        if ts > self.latest:
            return (
                f"is more than {format_duration(self.max_future)} ahead of the server's clock "
                "(event_max_future)"
            )
        return None


def _common(
    event: Mapping[str, Any], window: Window, problems: list[dict[str, str]]
) -> tuple[str, str, str, str]:
    raw_id = event.get("id")
    event_id = ""
    if isinstance(raw_id, str) and _CANONICAL_UUID(raw_id) is not None:
        event_id = raw_id
    elif not isinstance(raw_id, str) or _UUID.fullmatch(raw_id) is None:
        problems.append({"path": "id", "message": "must be a UUID string"})
    else:
        event_id = str(uuid.UUID(raw_id))
    ts = _ts(event.get("ts"))
    if ts is None:
        problems.append({"path": "ts", "message": "must be an RFC 3339 date-time"})
    elif (late := window.problem(ts)) is not None:
        problems.append({"path": "ts", "message": late})
    unit_type, unit = event.get("unit_type"), event.get("unit")
    if not _text(unit_type, MAX_ATTRIBUTE_LENGTH):  # a flag's bucket_by
        problems.append(
            {
                "path": "unit_type",
                "message": f"must be a string of 1-{MAX_ATTRIBUTE_LENGTH} characters",
            }
        )
    if not _text(unit, MAX_UNIT_LENGTH):
        problems.append(
            {"path": "unit", "message": f"must be a string of 1-{MAX_UNIT_LENGTH} characters"}
        )
    return event_id, ts or "", str(unit_type), str(unit)


def _exposure(
    event: Mapping[str, Any], env: str, now: str, window: Window, problems: list[dict[str, str]]
) -> EventRow:
    event_id, ts, unit_type, unit = _common(event, window, problems)
    flag, variant, rule = event.get("flag"), event.get("variant"), event.get("rule")
    version = event.get("flag_version")
    if not isinstance(flag, str) or _key(flag) is None:
        problems.append({"path": "flag", "message": "must be a flag key"})
    if type(version) is not int or not 1 <= version <= MAX_INTEGER:
        problems.append({"path": "flag_version", "message": "must be an integer >= 1"})
    if not isinstance(variant, str) or _key(variant) is None:
        problems.append({"path": "variant", "message": "must be a variant key"})
    if rule is not None and (not isinstance(rule, str) or _key(rule) is None):
        problems.append({"path": "rule", "message": "must be a rule id or null"})
    attrs = _attrs(event.get("attrs"), problems)
    return (event_id, env, ts, flag, version, variant, rule, unit_type, unit, attrs, now)


def _outcome(
    event: Mapping[str, Any], env: str, now: str, window: Window, problems: list[dict[str, str]]
) -> EventRow:
    event_id, ts, unit_type, unit = _common(event, window, problems)
    metric, value = event.get("metric"), event.get("value")
    if not isinstance(metric, str) or _key(metric) is None:
        problems.append({"path": "metric", "message": "must be a metric key"})
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, int) and not -(10**300) <= value <= 10**300)  # no float overflow
        or not math.isfinite(value)
        or abs(value) > MAX_VALUE
    ):
        problems.append({"path": "value", "message": "must be a finite number"})
    else:
        value = float(value)
    attrs = _attrs(event.get("attrs"), problems)
    return (event_id, env, ts, metric, unit_type, unit, value, attrs, now)


def _number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and (not isinstance(value, int) or -(10**300) <= value <= 10**300)
        and math.isfinite(value)
        and abs(value) <= MAX_VALUE
    )


def _prediction(
    event: Mapping[str, Any], env: str, now: str, window: Window, problems: list[dict[str, str]]
) -> EventRow:
    event_id, ts, unit_type, unit = _common(event, window, problems)
    flag, variant, version = event.get("flag"), event.get("variant"), event.get("flag_version")
    role, run, status = event.get("role"), event.get("run"), event.get("status")
    label, score = event.get("label"), event.get("score")
    latency: Any = event.get("latency_ms")
    if not isinstance(flag, str) or _key(flag) is None:
        problems.append({"path": "flag", "message": "must be a flag key"})
    if type(version) is not int or not 1 <= version <= MAX_INTEGER:
        problems.append({"path": "flag_version", "message": "must be an integer >= 1"})
    if not isinstance(variant, str) or _key(variant) is None:
        problems.append({"path": "variant", "message": "must be a variant key"})
    if role not in ROLES:
        problems.append({"path": "role", "message": "must be 'live' or 'shadow'"})
    if not isinstance(run, str) or _UUID.fullmatch(run) is None:
        problems.append({"path": "run", "message": "must be a UUID string (the run's id)"})
    else:
        run = str(uuid.UUID(run))
    if status not in STATUSES:
        problems.append({"path": "status", "message": "must be 'ok', 'error' or 'timeout'"})
    if label is not None and not _text(label, MAX_UNIT_LENGTH):
        problems.append(
            {"path": "label", "message": f"must be null or a string of 1-{MAX_UNIT_LENGTH} "
                                         "characters"}
        )  # fmt: skip
    if score is not None and not _number(score):
        problems.append({"path": "score", "message": "must be null or a finite number"})
    if status in ("error", "timeout") and (label is not None or score is not None):
        problems.append({"path": "status", "message": f"a prediction with status {status!r} "
                                                      "has no label or score"})  # fmt: skip
    if not _number(latency) or latency < 0 or latency > MAX_LATENCY_MS:
        problems.append(
            {"path": "latency_ms", "message": "must be a number of milliseconds, 0 to 86400000"}
        )
    attrs = _attrs(event.get("attrs"), problems)
    return (
        event_id, env, ts, flag, version, variant, role, run, unit_type, unit, label,
        None if score is None else float(score), float(latency) if _number(latency) else 0.0,
        status, attrs, now,
    )  # fmt: skip


def validate_batch(
    kind: EventKind, body: Any, env: str, now: str, max_events: int, window: Window
) -> tuple[list[EventRow], list[dict[str, Any]]]:
    """The valid events as rows, and an error entry for each invalid one (an event outside
    ``window`` too)."""
    events = body.get("events") if isinstance(body, Mapping) else body
    if not isinstance(events, list):
        raise BadRequest('the body must be {"events": [...]} or a JSON array of events')
    if len(events) > max_events:
        raise PayloadTooLarge(f"a batch holds at most {max_events} events, not {len(events)}")
    check = {"exposures": _exposure, "outcomes": _outcome, "predictions": _prediction}[kind]
    rows: list[EventRow] = []
    errors: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        problems: list[dict[str, str]] = []
        if not isinstance(event, Mapping):
            errors.append(
                {
                    "index": index,
                    "id": None,
                    "problems": [{"path": "", "message": "must be an object"}],
                }
            )
            continue
        row = check(event, env, now, window, problems)
        if problems:
            raw_id = event.get("id")
            event_id = raw_id if _text(raw_id, 64) else None
            errors.append({"index": index, "id": event_id, "problems": problems})
        else:
            rows.append(row)
    return rows, errors

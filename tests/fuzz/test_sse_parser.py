"""Fuzzing the SSE parser: any bytes, cut anywhere, parse without raising in bounded time, and
events written by the spec's grammar come back as they were written.

``iter_lines`` (bytes to lines) and ``SSEParser`` / ``iter_events`` (lines to events) are what
the SDK runs on the server's ``text/event-stream``; sse.py documents no error, so none may
escape. The stream here is hostile: invalid UTF-8, lone CRs, CRLFs cut between chunks, NULs,
byte order marks, lines of megabytes with no line break, and ``retry:`` values that are not
numbers or are numbers of thousands of digits.
"""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollwise.sse import SSEEvent, SSEParser, iter_events, iter_lines
from tests.fuzz.hostile import bounded, fuzz_settings


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at up to 30 places (empty chunks too)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=30)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


_PIECES = st.sampled_from(
    [
        b"data", b"data:", b"data: ", b"event:", b"id:", b"id: \x00", b"retry:", b"retry: 1",
        b":", b": ping", b"\n", b"\r", b"\r\n", b"\n\r", b"\xef\xbb\xbf", b"\xff", b"\xed\xa0\x80",
        b"\xe2\x82", b"\xac", b"\x00", b" ", b"x", b"\xf0\x9f\x9a\x80",
    ]
)  # fmt: skip
hostile_streams = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(_PIECES, st.binary(max_size=8)), max_size=80).map(b"".join),
)
"""Random bytes, and the stream's own tokens (field names, line breaks, a BOM, pieces of UTF-8
sequences, an encoded lone surrogate) in any order."""


@fuzz_settings(max_examples=300)
@given(st.data(), hostile_streams)
def test_any_bytes_cut_anywhere_parse_the_same_without_raising(
    data: st.DataObject, stream: bytes
) -> None:
    with bounded("iter_lines"):
        whole = list(iter_lines([stream]))
    chunks = data.draw(chunkings(stream))
    with bounded("iter_lines, chunked"):
        assert list(iter_lines(chunks)) == whole
    for line in whole:
        assert "\r" not in line
        assert "\n" not in line
    parser = SSEParser()
    with bounded("SSEParser"):
        events = [event for line in whole if (event := parser.feed_line(line)) is not None]
    assert events == list(iter_events(whole))
    assert parser.retry is None or parser.retry >= 0
    for event in events:
        assert event.data is not None
        assert event.event
        assert event.id is None or "\x00" not in event.id


_NOT_A_NUMBER = [
    "", " ", "1 ", " 1", "-1", "+1", "1e3", "1.5", "0x10", "\u0661\u0662", "\uff11\uff12",
    "\u00b2", "1\x00", "NaN", "9" * 4301, "9" * 10_000,
]  # fmt: skip


@fuzz_settings(max_examples=200)
@given(
    st.one_of(
        st.sampled_from(_NOT_A_NUMBER),
        st.text(max_size=12),
        st.from_regex(r"[0-9]{1,30}", fullmatch=True),
        st.integers(0, 4300).map(lambda n: "7" * n),
    )
)
def test_retry_is_set_by_ascii_digits_only(value: str) -> None:
    """The spec: a ``retry`` value of ASCII digits only sets the reconnection time; any other
    value is ignored (and so is one of more digits than ``int()`` takes)."""
    parser = SSEParser()
    with bounded("retry"):
        parser.feed_line("retry: 250")
        parser.feed_line(f"retry: {value}")
        parser.feed_line("data: x")
        event = parser.feed_line("")
    number = value.isascii() and value.isdigit() and len(value) <= 4300
    expected = int(value) if number else 250
    assert parser.retry == expected
    assert event is not None
    assert event.retry == (expected if number else 250)


GIANT: dict[str, tuple[list[bytes], int]] = {
    "8-MB-line": ([b"data: " + b"x" * 8_000_000 + b"\n\n"], 1),
    "8-MB-no-line-break": ([b"x" * 8_000_000], 0),
    "64-kB-line-byte-by-byte": ([b"data: "] + [b"y"] * 65_536 + [b"\n", b"\n"], 1),
    "1000-chunks-of-8-kB": ([b"data: "] + [b"z" * 8192] * 1000 + [b"\r\n\r\n"], 1),
    "100k-data-lines": ([b"data: x\n" * 100_000 + b"\n"], 1),
    "200k-CRs": ([b"\r" * 200_000], 0),
    "50k-CRLFs-cut-in-half": ([b"\r", b"\n"] * 50_000, 0),
    "100k-comments": ([b": ping\n" * 100_000], 0),
    "30k-retry-lines": ([b"retry: " + b"9" * 40 + b"\n"] * 30_000, 0),
    "1-MB-invalid-UTF-8": ([b"data: " + b"\xff\xfe" * 500_000 + b"\n\n"], 1),
}
"""Streams of megabytes: one line with no end, many short lines, a chunk per byte."""


@pytest.mark.parametrize("name", list(GIANT))
def test_giant_streams_in_bounded_time(name: str) -> None:
    chunks, events = GIANT[name]
    with bounded(name, seconds=1.0):  # linear: ~0.3 s; 0.5 s was missed by 5 ms under CI load
        parsed = list(iter_events(iter_lines(chunks)))
    assert len(parsed) == events


# -- round trip: what the spec's grammar writes comes back ------------------------------------

_LINE_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\r\n")
"""A character of a field value: anything UTF-8 can carry except the line breaks."""


@attrs.frozen
class Block:
    """One event as a server writes it: what comes back, and the lines that say it."""

    event: str
    data: str
    id: str | None  # None: no id line; "": an empty id line (resets the last event id)
    retry: int | None
    comments: tuple[str, ...]
    unknown: tuple[str, ...]

    def lines(self) -> list[str]:
        out = [f":{c}" for c in self.comments]
        out += [f"{name}: ignored" for name in self.unknown]
        if self.event != "message" or self.comments:
            out.append(f"event: {self.event}")
        if self.id is not None:
            out.append(f"id: {self.id}" if self.id else "id")
        if self.retry is not None:
            out.append(f"retry: {self.retry}")
        out += [f"data: {line}" for line in self.data.split("\n")]
        return [*out, ""]


blocks = st.builds(
    Block,
    event=st.one_of(st.just("message"), st.text(_LINE_TEXT, min_size=1, max_size=10)),
    data=st.text(st.one_of(_LINE_TEXT, st.just("\n")), max_size=30),
    id=st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",),
                                                  exclude_characters="\r\n\x00"), max_size=8)),
    retry=st.one_of(st.none(), st.integers(0, 10**30)),
    comments=st.lists(st.text(_LINE_TEXT, max_size=10), max_size=2).map(tuple),
    unknown=st.lists(st.sampled_from(["foo", "Data", "DATA", "ID", "retry ", " data"]),
                     max_size=2).map(tuple),
)  # fmt: skip


def _encode(lines: list[str], breaks: list[str]) -> bytes:
    out = []
    previous = ""
    for line, brk in zip(lines, breaks, strict=True):
        if previous == "\r" and not line and brk == "\n":
            brk = "\r"  # CR, LF would be read as one CRLF, and the blank line would vanish
        out.append(line + brk)
        previous = brk
    return "".join(out).encode()


def _expected(items: list[Block]) -> list[SSEEvent]:
    last: str | None = None
    out = []
    for block in items:
        if block.id is not None:
            last = block.id or None
        out.append(SSEEvent(event=block.event, data=block.data, id=last, retry=block.retry))
    return out


@fuzz_settings(max_examples=300)
@given(st.data(), st.lists(blocks, max_size=6), st.booleans(), st.booleans())
def test_events_written_by_the_grammar_come_back(
    data: st.DataObject, items: list[Block], bom: bool, unfinished: bool
) -> None:
    lines = [line for block in items for line in block.lines()]
    if unfinished:  # a block cut off by a dropped connection is never dispatched
        lines += ["data: cut off", "id: never"]
    breaks = data.draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines),
                                max_size=len(lines)))  # fmt: skip
    stream = (b"\xef\xbb\xbf" if bom else b"") + _encode(lines, breaks)
    chunks = data.draw(chunkings(stream))
    with bounded("iter_events"):
        events = list(iter_events(iter_lines(chunks)))
    assert events == _expected(items)

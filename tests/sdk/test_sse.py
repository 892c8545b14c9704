"""The server-sent-events parser against the WHATWG spec (HTML section 9.2), chunking aside."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollwise.sse import SSEEvent, SSEParser, iter_events, iter_lines


def parse(text: str) -> list[SSEEvent]:
    return list(iter_events(iter_lines([text.encode()])))


# -- the spec's examples (HTML "9.2.6 Interpreting an event stream" and "9.2.7 Examples") ------


def test_spec_example_stock_ticker_joins_data_lines() -> None:
    assert parse("data: YHOO\ndata: +2\ndata: 10\n\n") == [SSEEvent(data="YHOO\n+2\n10")]


def test_spec_example_comment_ids_and_an_unfinished_last_block() -> None:
    text = ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
    text += "data:  third event\n"
    parser = SSEParser()
    events = [e for line in iter_lines([text.encode()]) if (e := parser.feed_line(line))]
    assert events == [
        SSEEvent(data="first event", id="1"),
        SSEEvent(data="second event", id=None),  # "id" with no value resets the last event id
    ]
    assert parser.comments == 1
    assert parser.last_event_id is None


def test_spec_example_empty_data_fields() -> None:
    # "The first block fires events with the data set to the empty string, as would the last
    # block if it was followed by a blank line. The middle block fires an event with the data
    # set to a single newline character."
    assert parse("data\n\ndata\ndata\n\ndata:") == [SSEEvent(data=""), SSEEvent(data="\n")]
    assert parse("data\n\ndata\ndata\n\ndata:\n\n")[-1] == SSEEvent(data="")


def test_spec_example_only_one_leading_space_is_stripped() -> None:
    assert parse("data:test\n\ndata: test\n\n") == [SSEEvent(data="test"), SSEEvent(data="test")]
    assert parse("data:  two spaces \n\n") == [SSEEvent(data=" two spaces ")]


# -- fields -----------------------------------------------------------------------------------


def test_event_names_and_the_message_default() -> None:
    text = 'event: revision\ndata: {"revision": 7}\n\ndata: plain\n\nevent:\ndata: x\n\n'
    assert parse(text) == [
        SSEEvent(event="revision", data='{"revision": 7}'),
        SSEEvent(data="plain"),  # the event name does not carry over to the next block
        SSEEvent(event="message", data="x"),  # an empty name is "message"
    ]


def test_a_block_without_data_dispatches_nothing() -> None:
    parser = SSEParser()
    assert parser.feed_line("event: revision") is None
    assert parser.feed_line("") is None
    assert parser.feed_line("data: after") is None
    assert parser.feed_line("") == SSEEvent(data="after")  # not "revision": that block ended


def test_field_without_colon_and_unknown_fields() -> None:
    assert parse("data\n\n") == [SSEEvent(data="")]
    assert parse("foo: bar\ndata: x\nbaz\n\n") == [SSEEvent(data="x")]
    assert parse("DATA: x\n\n") == []  # field names are case-sensitive
    assert parse("data: a: b:c\n\n") == [SSEEvent(data="a: b:c")]  # only the first colon splits


def test_comments_are_counted_as_heartbeats() -> None:
    parser = SSEParser()
    for line in [": ping", ":", ":: x", "data: y"]:
        assert parser.feed_line(line) is None
    assert parser.comments == 3
    assert parser.feed_line("") == SSEEvent(data="y")


def test_the_last_event_id_persists_across_events() -> None:
    text = "id: 41\ndata: a\n\ndata: b\n\nid: 42\ndata: c\n\ndata: d\n\n"
    pairs = [(e.data, e.id) for e in parse(text)]
    assert pairs == [("a", "41"), ("b", "41"), ("c", "42"), ("d", "42")]


def test_an_id_is_committed_by_the_blank_line_even_without_data() -> None:
    parser = SSEParser()
    parser.feed_line("id: 5")
    assert parser.last_event_id is None  # a block cut off here must not advance it
    assert parser.feed_line("") is None
    assert parser.last_event_id == "5"
    parser.feed_line("data: x")
    assert parser.feed_line("") == SSEEvent(data="x", id="5")


def test_an_id_with_a_nul_is_ignored() -> None:
    parser = SSEParser(last_event_id="7")
    assert [parser.feed_line(line) for line in ["id: 8\0", "data: x", ""]][-1] == SSEEvent(
        data="x", id="7"
    )
    assert parser.last_event_id == "7"


def test_a_reconnecting_parser_starts_from_the_previous_id() -> None:
    parser = SSEParser(last_event_id="99")
    assert parser.last_event_id == "99"
    parser.feed_line("data: x")
    assert parser.feed_line("") == SSEEvent(data="x", id="99")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3000", 3000), ("0", 0), ("007", 7), ("", None), (" 10", 10), ("  10", None), ("1.5", None),
     ("-5", None), ("10ms", None), ("١٢", None), ("²", None), ("9" * 5000, None)],
)  # fmt: skip
def test_retry_accepts_ascii_digits_only(value: str, expected: int | None) -> None:
    parser = SSEParser()
    parser.feed_line(f"retry:{value}")
    assert parser.retry == expected
    parser.feed_line("data: x")
    assert parser.feed_line("") == SSEEvent(data="x", retry=expected)


def test_retry_without_data_still_sets_the_reconnection_time() -> None:
    parser = SSEParser()
    assert [parser.feed_line(line) for line in ["retry: 10000", ""]] == [None, None]
    assert parser.retry == 10000
    parser.feed_line("data: x")
    event = parser.feed_line("")
    assert event == SSEEvent(data="x")  # the retry belonged to the earlier block
    assert parser.retry == 10000


def test_feed_line_ignores_one_trailing_line_break() -> None:
    parser = SSEParser()
    assert parser.feed_line("data: a\r\n") is None
    assert parser.feed_line("data: b\n") is None
    assert parser.feed_line("\r") == SSEEvent(data="a\nb")


def test_events_are_frozen_values() -> None:
    event = SSEEvent(data="x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]
    assert event == SSEEvent(event="message", data="x", id=None, retry=None)


# -- lines from bytes -------------------------------------------------------------------------


def test_all_three_line_breaks() -> None:
    assert list(iter_lines([b"a\r\nb\nc\rd\n"])) == ["a", "b", "c", "d"]
    assert list(iter_lines([b"\r\n\n\r\r"])) == ["", "", "", ""]
    assert list(iter_lines([b"a\n\rb\n"])) == ["a", "", "b"]  # \n\r is two line breaks


def test_crlf_split_across_chunks_is_one_line_break() -> None:
    assert list(iter_lines([b"data: x\r", b"\n", b"\r", b"\n"])) == ["data: x", ""]
    assert list(iter_lines([b"data: x\r", b"\ndata: y\r", b"\n\r\n"])) == ["data: x", "data: y", ""]
    assert list(iter_lines([b"a\r", b"", b"\nb\n"])) == ["a", "b"]  # an empty chunk between


def test_a_line_is_yielded_as_soon_as_its_cr_arrives() -> None:
    # sse-starlette ends lines with \r\n: the blank line's \r must dispatch the event without
    # waiting for the next chunk (which may be the next heartbeat, seconds later).
    def stream() -> Iterator[bytes]:
        yield b"data: 7\r\n\r"
        raise AssertionError("read past the chunk that completes the event")

    events = iter_events(iter_lines(stream()))
    assert next(events) == SSEEvent(data="7")


def test_an_unterminated_last_line_is_discarded() -> None:
    assert list(iter_lines([b"data: a\n", b"retry: 1"])) == ["data: a"]
    parser = SSEParser()
    for line in iter_lines([b"retry: 10000\n\nretry: 1"]):  # "retry: 1" was cut off
        parser.feed_line(line)
    assert parser.retry == 10000


def test_utf8_split_across_chunks_and_invalid_bytes() -> None:
    data = "data: café ✓ 🚀\n\n".encode()
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert list(iter_events(iter_lines(chunks))) == [SSEEvent(data="café ✓ 🚀")]
    assert list(iter_lines([b"data: \xff\xfe ok\n"])) == ["data: \ufffd\ufffd ok"]


def test_one_leading_byte_order_mark_is_dropped() -> None:
    bom = "\ufeff".encode()
    assert list(iter_lines([bom[:1], bom[1:] + b"data: x\n"])) == ["data: x"]
    assert list(iter_lines([bom + bom + b"x\n"])) == ["\ufeffx"]  # only one
    assert list(iter_lines([b"x\n" + bom + b"y\n"])) == ["x", "\ufeffy"]  # only at the start


# -- any chunking gives the same events -------------------------------------------------------

_LINES = st.sampled_from(
    [
        "data: x",
        "data:é✓🚀",
        "data",
        "event: revision",
        "id: 3",
        "id",
        "retry: 250",
        ": ping",
        "",
        "",
        "foo: bar",
    ]
)
_BREAKS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(_LINES, _BREAKS), max_size=40))
    return "".join(line + brk for line, brk in lines).encode()


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=max(1, len(data)))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), stream=streams())
def test_any_chunking_gives_the_same_lines_and_events(data: st.DataObject, stream: bytes) -> None:
    whole = list(iter_lines([stream]))
    chunks = data.draw(chunkings(stream))
    assert b"".join(chunks) == stream
    assert list(iter_lines(chunks)) == whole
    byte_at_a_time = [stream[i : i + 1] for i in range(len(stream))]
    assert list(iter_lines(byte_at_a_time)) == whole
    assert list(iter_events(iter_lines(chunks))) == list(iter_events(whole))


@settings(max_examples=200, deadline=None)
@given(stream=streams())
def test_line_splitting_agrees_with_the_spec_grammar(stream: bytes) -> None:
    # The spec's end-of-line is CRLF, LF or CR; str.splitlines() knows more (\x0b, \u2028, ...),
    # none of which our generated streams contain, so the two must agree on complete lines.
    text = stream.decode()
    assert list(iter_lines([stream])) == text.splitlines()

"""An incremental server-sent-events parser (WHATWG HTML, "Server-sent events", section 9.2.6).

The rules stream is ``text/event-stream``. Parsing is kept apart from the network so that it is
pure and testable byte by byte: ``iter_lines`` turns the chunks of a streaming response into
lines, and ``SSEParser`` (or ``iter_events``) turns lines into events as the spec's
"interpret an event stream" algorithm does. ``requests``' own ``iter_lines`` is not used because
it splits each chunk on its own, so a ``\\r\\n`` cut between two chunks becomes two line breaks.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterable, Iterator

import attrs

__all__ = ["LineSplitter", "SSEEvent", "SSEParser", "iter_events", "iter_lines"]

_EOL = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@attrs.frozen
class SSEEvent:
    """One dispatched event.

    ``id`` is the stream's last event id when the event was dispatched (it persists across events,
    as the spec's ``lastEventId`` does); ``retry`` is a ``retry`` field (milliseconds) that came in
    the same block as the event, if any.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed it lines (without their line break); it returns an event at each blank line.

    Attributes that outlive single events:

    ``last_event_id``
        The id to send back as ``Last-Event-ID`` when reconnecting; ``None`` until the server
        sends one, and again after an empty ``id:`` field (the spec's reset). Like the spec's
        "last event ID string", it is only updated at the blank line ending a block, so a block
        cut off by a dropped connection does not advance it.
    ``retry``
        The reconnection time in milliseconds the server last asked for, or ``None``; set even by
        blocks that carry no data (and so dispatch no event).
    ``comments``
        How many comment lines (``:...``) were seen: servers send them as heartbeats.
    """

    def __init__(self, *, last_event_id: str | None = None) -> None:
        self.last_event_id: str | None = last_event_id
        self.retry: int | None = None
        self.comments = 0
        self._event = ""
        self._data: list[str] = []
        self._id = last_event_id
        self._retry: int | None = None

    def feed_line(self, line: str) -> SSEEvent | None:
        """Process one line; returns the event a blank line dispatches, else ``None``.

        A single trailing line break (``\\r\\n``, ``\\n`` or ``\\r``) is ignored, so the lines of a
        text file can be fed as they are.
        """
        if line.endswith("\n"):
            line = line[:-2] if line.endswith("\r\n") else line[:-1]
        elif line.endswith("\r"):
            line = line[:-1]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(name, value)
        return None

    def _field(self, name: str, value: str) -> None:
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value or None
        elif name == "retry" and value.isascii() and value.isdigit():
            # More digits than int() accepts (ValueError) is no usable delay either: ignored.
            with contextlib.suppress(ValueError):
                self._retry = self.retry = int(value)
        # any other field name is ignored, as the spec says

    def _dispatch(self) -> SSEEvent | None:
        self.last_event_id = self._id
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return SSEEvent(
            event=event or "message", data="\n".join(data), id=self.last_event_id, retry=retry
        )


def iter_events(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """The events in a stream of lines; a block left unfinished at the end is not dispatched."""
    parser = SSEParser()
    for line in lines:
        event = parser.feed_line(line)
        if event is not None:
            yield event


def iter_lines(chunks: Iterable[bytes], *, max_line: int | None = None) -> Iterator[str]:
    """Split a UTF-8 byte stream into lines on ``\\r\\n``, ``\\n`` or ``\\r``, chunking aside.

    A line is yielded as soon as its line break arrives: a chunk ending in ``\\r`` yields its line
    at once (the blank line that dispatches an event is not held back until the next chunk), and
    a ``\\n`` opening the next chunk is then skipped. Invalid UTF-8 becomes U+FFFD, one leading
    byte order mark is dropped, and an unterminated last line is discarded, as the spec discards
    an incomplete block (a truncated ``retry: 10000`` must not become ``retry: 1``). A line
    longer than ``max_line`` characters raises ``ValueError`` (a reader's bound on what a
    server can make it hold).
    """
    splitter = LineSplitter(max_line=max_line)
    for chunk in chunks:
        yield from splitter.feed(chunk)


class LineSplitter:
    """``iter_lines`` one chunk at a time, for a reader that is handed chunks (an asyncio one):
    ``feed(chunk)`` returns the lines that chunk completes."""

    def __init__(self, *, max_line: int | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []
        self._skip_lf = False
        self._at_start = True
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[str]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        lines: list[str] = []
        partial = self._partial
        start = 0
        for match in _EOL.finditer(text):
            partial.append(text[start : match.start()])
            lines.append("".join(partial))
            partial.clear()
            start = match.end()
            self._skip_lf = start == len(text) and match.group() == "\r"
        if start < len(text):
            partial.append(text[start:])
            if self._max_line is not None and sum(map(len, partial)) > self._max_line:
                raise ValueError(
                    f"a line of the event stream is longer than {self._max_line} characters"
                )
        return lines

"""What the ``rollwise`` command prints: tables, fields and text a terminal cannot be driven by.

Shared by the command modules (``cli.py``, ``cli_rollouts.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click

__all__ = ["cell", "echo", "echo_json", "fields", "note", "table", "ts", "visible"]

MAX_CELL = 40
"""The widest a table cell is (but the last column's), shortened with ``...``."""

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible(text: str) -> str:
    """``text`` with every control character (and bidirectional override) escaped, so that
    text someone stored (a reason, a description) can never drive the admin's terminal: an
    ESC sequence prints as ``\\x1b[2J``, not as a cleared screen. Line breaks stay."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n" or (ch.isprintable() and ch not in _BIDI) or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def echo(message: Any = None, *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of text made visible (see ``visible``)."""
    text = None if message is None else visible(str(message))
    click.echo(text, err=err, nl=nl)


def echo_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, ensure_ascii=False))


def note(message: str) -> None:
    echo(message, err=True)


def cell(value: Any, limit: int = MAX_CELL) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Fixed-width columns, each as wide as its widest cell; long cells are shortened, except
    in the last column, which is not padded either."""
    last = len(headers) - 1
    cells = [[cell(v, 200 if i == last else MAX_CELL) for i, v in enumerate(row)] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """``name  value`` lines; a list value continues on the following lines."""
    pairs = list(pairs)
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        values = value if isinstance(value, list) else [value]
        for i, item in enumerate(values or ["-"]):
            label = name if i == 0 else ""
            echo(f"{label.ljust(width)}  {cell(item, 100)}".rstrip())


def ts(value: Any) -> str | None:
    """``2026-11-25T18:44:56.657289Z`` shortened to ``2026-11-25T18:44:56Z``."""
    if not isinstance(value, str):
        return None
    head, dot, rest = value.partition(".")
    return f"{head}Z" if dot and rest.endswith("Z") else value

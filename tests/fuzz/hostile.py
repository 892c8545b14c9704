"""What the fuzz tests share: fixed Hypothesis settings, a time bound per call, hostile values.

Hostile values are *recipes*: a name Hypothesis can print and shrink, turned into the value
only inside the test, so a failure report shows ``deep-list-100000`` rather than trying to
print (or pickle) 100,000 nested lists. A recipe has a Python form (for ``from_json`` and
``Client.offline`` with a mapping) and a JSON text form (for ``from_text``, request bodies),
where it may be something no Python value becomes: ``NaN``, a 5,000-digit integer, invalid
UTF-8 or nesting too deep for any decoder.

The time bound is not a speed figure (those live in ``benchmarks/``): it is a generous ceiling,
hundreds of times what a call takes, that a hang or an exponential blow-up would cross. It is
checked on the thread's CPU time, which other processes on a shared machine cannot stretch, and
on elapsed time with ten times the room.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from types import FrameType, MappingProxyType
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "CALL_SECONDS",
    "HOSTILE",
    "HOSTILE_KEYS",
    "PATTERNS",
    "WALL_FACTOR",
    "Recipe",
    "bounded",
    "fuzz_settings",
    "hostile_like",
    "hostile_values",
    "json_values",
    "keys",
    "nest_dicts",
    "nest_lists",
    "texts",
]

CALL_SECONDS = 0.5
"""The ceiling of one call's own work (CPU time of the calling thread) on hostile input; the
calls take micro- to milliseconds, 0.2 s at most for a 100,000-deep Python value."""
WALL_FACTOR = 10
"""The ceiling of the same call in elapsed time (``time.perf_counter``), as a multiple: other
processes on a shared machine stretch elapsed time, never the thread's own CPU time."""


def fuzz_settings(max_examples: int) -> settings:
    """The same examples on every run (``derandomize``), no example database, no deadline
    (the time bound is ``bounded``'s, which is generous where Hypothesis's is not)."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class _Hung(BaseException):
    """Raised by the watchdog; a ``BaseException`` so that no ``except Exception`` in the code
    under test can swallow it."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hung


@contextlib.contextmanager
def bounded(what: str, seconds: float = CALL_SECONDS) -> Iterator[None]:
    """Fail unless the block's own work takes less than ``seconds`` of CPU time
    (``time.thread_time``) and less than ``WALL_FACTOR`` times that elapsed
    (``time.perf_counter``), which also catches a block that waits instead of working.

    A watchdog (``SIGALRM`` at the elapsed bound; main thread, POSIX) turns a hang into this
    test's failure instead of a suite that never ends.
    """
    wall = WALL_FACTOR * seconds
    watchdog = (
        hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    previous: Any = None
    if watchdog:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, wall)
    start, start_cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    except _Hung:
        raise AssertionError(f"{what} was still running after {wall} s") from None
    finally:
        if watchdog:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    cpu, elapsed = time.thread_time() - start_cpu, time.perf_counter() - start
    assert cpu < seconds, f"{what} took {cpu:.3f} s of CPU time, more than {seconds} s"
    assert elapsed < wall, f"{what} took {elapsed:.3f} s, more than {wall} s"


# --- building blocks -----------------------------------------------------------------------


def nest_lists(depth: int, inner: Any = None) -> Any:
    """``[[[...inner...]]]``, ``depth`` lists deep, built without recursion."""
    value: Any = [] if inner is None else inner
    for _ in range(depth if inner is not None else depth - 1):
        value = [value]
    return value


def nest_dicts(depth: int) -> Any:
    """``{"a": {"a": ... 1}}``, ``depth`` objects deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


PATTERNS = [
    "^(a+)+$",
    "(x+x+)+y",
    "((a*)*)*b",
    "(a|aa)*c",
    "(?:a|a)*$",
    "^(\\w+\\s?)*$",
    "(.*a){12}",
    "a{1000}",
    "a{1000}{1000}",
    "(a{100}){100}",
    "x{2147483647}",
    "(?i)[[:alpha:]]+",
    "[[:digit:]]{3}",
    "\\1",
    "(a)\\1",
    "(?=a)",
    "(?<!a)b",
    "\\C+",
    "\\pL+",
    "(",
    "[",
    "*",
    "a**",
    "\\",
    "\ud800",
    "\x00",
    "a" * 300,
    "(" * 200 + ")" * 200,
]
"""Catastrophic backtracking for a backtracking engine, huge repetition counts, syntax RE2
refuses (backreferences, lookaround), broken syntax, a lone surrogate, a NUL, over-long."""

_TEXT_ALPHABET = st.characters(exclude_categories=())  # every code point, lone surrogates too


def texts(max_size: int = 12) -> st.SearchStrategy[str]:
    """Any text, including lone surrogates, NUL and other control characters."""
    return st.text(_TEXT_ALPHABET, max_size=max_size)


HOSTILE_KEYS = ["\ud800", "a\udfff", "\x00", "", "k" * 257, "k" * 5000, "\u202eevil", "a.b"]
"""Object keys: lone surrogates, NUL, empty, over-long, and ones that look like JSON paths."""


def keys() -> st.SearchStrategy[str]:
    """An object key: one of ``HOSTILE_KEYS`` or any short text."""
    return st.one_of(st.sampled_from(HOSTILE_KEYS), texts(6))


_HUGE_INTS = [10**400, -(10**400), 2**63, 2**64 + 1, 2**53 + 1, -(2**63) - 1]
_ODD_FLOATS = [1e308, -1e308, 5e-324, -0.0, float("nan"), float("inf"), float("-inf")]

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(_HUGE_INTS),
    st.floats(),
    st.sampled_from(_ODD_FLOATS),
    texts(),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys(), children, max_size=3),
    max_leaves=8,
)
"""Small JSON-like values with surrogates, huge integers, NaN and infinities."""


# --- recipes -------------------------------------------------------------------------------


@attrs.frozen
class Recipe:
    """A named hostile value: ``make()`` builds the Python form, ``text`` is its JSON text
    (``None``: the JSON of the Python form) and ``raw`` its bytes if no ``str`` can hold them."""

    name: str
    make: Callable[[], Any]
    text: str | None = None
    raw: bytes | None = None

    def __repr__(self) -> str:
        return f"<{self.name}>"


class _TaggedStr(str):
    """A ``str`` subclass: ``isinstance`` says str, ``type() is str`` does not."""

    __slots__ = ()


class _TaggedInt(int):
    __slots__ = ()


def _deep_list(depth: int) -> Recipe:
    return Recipe(f"deep-list-{depth}", lambda: nest_lists(depth), "[" * depth + "]" * depth)


def _deep_dict(depth: int) -> Recipe:
    text = '{"a":' * depth + "1" + "}" * depth
    return Recipe(f"deep-dict-{depth}", lambda: nest_dicts(depth), text)


def _value(name: str, value: Any, text: str | None = None, raw: bytes | None = None) -> Recipe:
    return Recipe(name, lambda: value, text, raw)


DEEP: list[Recipe] = [
    *(_deep_list(d) for d in (9, 33, 65, 990, 1_001, 100_000)),
    *(_deep_dict(d) for d in (33, 1_001, 100_000)),
    Recipe(
        "deep-mixed-5000",
        lambda: nest_lists(2_500, nest_dicts(2_500)),
        "[" * 2_500 + '{"a":' * 2_500 + "1" + "}" * 2_500 + "]" * 2_500,
    ),
]
NUMBERS: list[Recipe] = [
    _value("int-10**400", 10**400),
    _value("int--10**400", -(10**400)),
    Recipe("int-5000-digits", lambda: 10**5000, "1" + "0" * 5000),
    _value("int-2**64", 2**64),
    _value("int--2**63-1", -(2**63) - 1),
    _value("float-1e308", 1e308),
    _value("float-5e-324", 5e-324),
    _value("float--0.0", -0.0),
    Recipe("float-1e400", lambda: float("inf"), "1e400"),
    Recipe("nan", lambda: float("nan"), "NaN"),
    Recipe("infinity", lambda: float("inf"), "Infinity"),
    Recipe("-infinity", lambda: float("-inf"), "-Infinity"),
    _value("bool", True),
]
STRINGS: list[Recipe] = [
    _value("lone-high-surrogate", "\ud800"),
    _value("lone-low-surrogate", "a\udfffb"),
    _value("surrogate-pair-escaped", "\ud83d\ude80"),
    _value("nul", "\x00"),
    _value("bom", "\ufeff{"),
    _value("control-chars", "\x1b[2J\r\n\t\x7f"),
    _value("combining", "e\u0301" * 300),
    _value("long-257", "k" * 257),
    _value("long-1025", "v" * 1025),
    _value("long-4097", "w" * 4097),
    _value("long-100000", "z" * 100_000),
    _value("empty-string", ""),
    Recipe("invalid-utf8", lambda: b"\xff\xfe\xc0\x80", raw=b'"\xff\xfe\xc0\x80"'),
    Recipe("utf8-encoded-surrogate", lambda: "\ud800", raw=b'"\xed\xa0\x80"'),
    *(_value(f"pattern-{p[:24]!r}", p) for p in PATTERNS),
]
SHAPES: list[Recipe] = [
    Recipe("huge-list-100001", lambda: ["x"] * 100_001, "[" + ",".join(['"x"'] * 100_001) + "]"),
    Recipe(
        "huge-dict-20000",
        lambda: {f"k{i}": {} for i in range(20_000)},
        "{" + ",".join(f'"k{i}":{{}}' for i in range(20_000)) + "}",
    ),
    _value("empty-list", []),
    _value("empty-dict", {}),
]
PYTHON_ONLY: list[Recipe] = [
    _value("bytes", b"x", '"x"'),
    _value("bytearray", bytearray(b"x"), '"x"'),
    _value("set", {1, 2}, "[1, 2]"),
    _value("frozenset", frozenset({"a"}), '["a"]'),
    _value("tuple", ("a", 1), '["a", 1]'),
    _value("object", object(), "{}"),
    _value("mappingproxy", MappingProxyType({"a": 1}), '{"a": 1}'),
    _value("str-subclass", _TaggedStr("v1"), '"v1"'),
    _value("int-subclass", _TaggedInt(3), "3"),
    _value("decimal", Decimal("1e400"), "1e400"),
    _value("fraction", Fraction(1, 3), "0.3333"),
    _value("complex", complex(1, 1), '"1+1j"'),
    _value("datetime", dt.datetime(9999, 12, 31, 23, 59, 59), '"9999-12-31T23:59:59"'),
    _value("date", dt.date(1, 1, 1), '"0001-01-01"'),
]
"""Python values that JSON cannot produce (``from_json`` and ``Client.offline`` take mappings);
their ``text`` is what a JSON body would carry in their place."""

HOSTILE: list[Recipe] = DEEP + NUMBERS + STRINGS + SHAPES + PYTHON_ONLY
"""Deep nesting (list, object, mixed), huge and non-finite numbers, lone surrogates, NUL,
invalid UTF-8, over-long strings, pathological patterns, huge arrays, non-JSON Python types."""


def _generated() -> st.SearchStrategy[Recipe]:
    return json_values.map(lambda v: Recipe(f"value {_short(v)}", lambda: v))


def hostile_values() -> st.SearchStrategy[Recipe]:
    """A recipe of any kind, each kind as likely, or a small generated JSON-like value."""
    kinds = [DEEP, NUMBERS, STRINGS, SHAPES, PYTHON_ONLY]
    return st.one_of(*(st.sampled_from(kind) for kind in kinds), _generated())


def hostile_like(original: Any) -> st.SearchStrategy[Recipe]:
    """A hostile value to put where ``original`` was: half the time one of its own kind (a
    number for a number, a string for a string), where the code reading it looks hardest."""
    if isinstance(original, int | float) and not isinstance(original, bool):
        return st.one_of(st.sampled_from(NUMBERS), hostile_values())
    if isinstance(original, str):
        return st.one_of(st.sampled_from(STRINGS), hostile_values())
    return hostile_values()


def _short(value: Any) -> str:
    text = ascii(value)
    return text if len(text) < 80 else text[:77] + "..."

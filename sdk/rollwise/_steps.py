"""Logic written once, as generators of I/O steps, and run by a thread or by an asyncio task.

The rules sync and the event sender decide what to do (fetch, follow the stream, wait, send,
back off, spool) in generators that ``yield`` each I/O step and receive its result, or have its
exception raised at the ``yield``, exactly where a blocking call would have raised it. ``drive``
performs the steps with blocking calls (the threads of ``rollwise.Client``); ``adrive`` awaits
them (``rollwise.aio.AsyncClient``). The decisions, the log lines and the counters are the same
code for both; only ``perform`` differs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ["Plan", "adrive", "drive"]

S = TypeVar("S")
R = TypeVar("R")

Plan = Generator[S, Any, R]
"""A generator that yields steps of type ``S``, receives their results, and returns ``R``."""


def drive(plan: Plan[S, R], perform: Callable[[S], Any]) -> R:
    """Run ``plan`` to its end, performing each step with the blocking ``perform``."""
    reply: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                step = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                reply, error = perform(step), None
            except Exception as exc:  # noqa: BLE001 - raised inside the plan, at its ``yield``
                reply, error = None, exc
    finally:
        plan.close()


async def adrive(plan: Plan[S, R], perform: Callable[[S], Awaitable[Any]]) -> R:
    """Run ``plan`` to its end, awaiting each step's ``perform``; a cancellation (not an
    ``Exception``) is not raised inside the plan: the plan is closed (its ``finally`` blocks
    run) and the cancellation goes on."""
    reply: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                step = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                reply, error = await perform(step), None
            except Exception as exc:  # noqa: BLE001 - raised inside the plan, at its ``yield``
                reply, error = None, exc
    finally:
        plan.close()

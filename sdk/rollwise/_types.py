"""Type aliases shared by the compiler, the code generator and the exposure log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rollwise.assignment import Assignment

__all__ = ["Clock", "Evaluator", "Recorder"]

Clock = Callable[[], float]
"""Seconds since the epoch, like ``time.time``."""

Evaluator = Callable[[Mapping[str, Any]], Assignment]
"""A compiled flag: context in, pre-built ``Assignment`` out."""

Recorder = Callable[[Assignment, str, str, Mapping[str, Any]], None]
"""Called on every split assignment with (assignment, unit_type, unit, context)."""

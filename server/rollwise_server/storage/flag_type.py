"""A flag's type is fixed for its life: the one check every route that writes a flag meets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollwise.errors import Problem
from rollwise_server.errors import Invalid

__all__ = ["check_flag_type"]


def check_flag_type(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """A flag's type never changes while it lives: every caller reads it with the accessor of
    its type, and would silently get its default (``TYPE_MISMATCH``) from then on. Every
    route that writes a flag (the API, the console, the CLI, a revert, a promotion) comes here."""
    before, after = old.get("type", "string"), new.get("type", "string")
    if before != after:
        raise Invalid.from_problems([Problem(
            "type",
            f"cannot change from {before} to {after}: flag {key!r} is read as {before} by its "
            "callers; create a new flag, or archive this one and create it again",
        )])  # fmt: skip

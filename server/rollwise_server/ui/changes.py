"""Readable differences between two versions of a configuration: each changed place with its
old and new value (the history, the change preview, a conflict and a promotion all show
these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import jsonpatch

__all__ = ["Change", "changes", "without_meta"]

META = ("key", "version", "archived", "updated_at", "updated_by", "stale", "reason")


@attrs.frozen
class Change:
    """``where`` changed from ``old`` to ``new``; a side is ``None`` when absent
    (``added``/``removed``)."""

    where: str
    old: Any
    new: Any
    added: bool = False
    removed: bool = False


def without_meta(body: Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration alone: what the server adds when it answers (version, times) taken
    away, so that two environments or two versions compare by what they serve."""
    return {k: v for k, v in (body or {}).items() if k not in META}


def _at(body: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(body, Mapping):
            body = body.get(token)
        elif isinstance(body, list) and token.isdigit() and int(token) < len(body):
            body = body[int(token)]
        else:
            return None
    return body


def _where(pointer: str) -> str:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return " \u203a ".join(parts) or "(whole)"


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[Change]:
    """What turns ``before`` into ``after``, place by place (JSON Patch, RFC 6902, made
    readable: a replace shows both values, an add the new one, a remove the old one)."""
    old, new = without_meta(before), without_meta(after)
    out: list[Change] = []
    for op in jsonpatch.make_patch(old, new).patch:
        path = str(op.get("path", ""))
        kind = op.get("op")
        if kind == "replace":
            out.append(Change(_where(path), _at(old, path), op.get("value")))
        elif kind == "add":
            out.append(Change(_where(path), None, op.get("value"), added=True))
        elif kind == "remove":
            out.append(Change(_where(path), _at(old, path), None, removed=True))
        elif kind in ("move", "copy"):
            source = str(op.get("from", ""))
            out.append(Change(_where(path), None, _at(old, source), added=True))
    return out

"""Hostile edits of a valid JSON value, and its JSON text with the hostile parts written in.

A fuzz case is a valid base value (a rules document, a batch of events) with one to three
``Edit``s: a field set to a hostile ``Recipe``, a hostile key added, a field dropped. Structure
around the edit stays valid, so the hostile value reaches the code that reads that very field
rather than being refused at the top. ``as_python`` builds the value for the object APIs and
``as_json`` the UTF-8 text for the text APIs, where a recipe may be JSON no Python value
encodes to (``NaN``, 5,000 digits, 100,000 brackets, invalid UTF-8).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
from hypothesis import strategies as st

from tests.fuzz.hostile import Recipe, hostile_like, hostile_values, keys

__all__ = ["Case", "Edit", "cases", "corrupt", "scattered"]

Path = tuple[str | int, ...]


@attrs.frozen
class Edit:
    """``set`` the value at ``path`` to ``recipe``, ``add`` ``key`` (or an item) with ``recipe``
    under ``path``, ``rename`` the member at ``path`` to ``key``, or ``drop`` it."""

    action: str
    path: Path
    recipe: Recipe | None = None
    key: str = ""

    def apply(self, root: Any) -> Any:
        """The edited ``root`` (changed in place where possible)."""
        if self.action == "set" and not self.path:
            return self.recipe
        *parents, last = self.path or ("",)
        node = root
        for step in parents if self.path else ():
            node = node[step]
        target = node[last] if self.path else root
        if self.action == "set":
            node[last] = self.recipe
        elif self.action == "drop" and self.path:
            del node[last]
        elif self.action == "rename" and self.path and isinstance(node, dict):
            node[self.key] = node.pop(last)
        elif self.action == "add" and isinstance(target, dict):
            target[self.key] = self.recipe
        elif self.action == "add" and isinstance(target, list):
            target.append(self.recipe)
        return root


@attrs.frozen(repr=False)
class Case:
    """A base value and its edits; the report of a failure names the base and the edits."""

    name: str
    base: Any
    edits: tuple[Edit, ...]

    def __repr__(self) -> str:
        return f"Case({self.name!r}, edits={list(self.edits)!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's reports
        printer.text(repr(self))

    def edited(self) -> Any:
        value = copy.deepcopy(self.base)
        for edit in self.edits:
            value = edit.apply(value)
        return value

    def as_python(self) -> Any:
        return _materialize(self.edited())

    def as_json(self, *, ensure_ascii: bool = True) -> bytes:
        return _serialize(self.edited(), ensure_ascii=ensure_ascii)


def _paths(value: Any) -> list[Path]:
    """Every path in ``value`` (its containers and leaves), in a stable order."""
    out: list[Path] = []
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        out.append(path)
        if isinstance(item, dict):
            stack.extend(((*path, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
    return out


def _materialize(value: Any) -> Any:
    if isinstance(value, Recipe):
        return value.make()
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_materialize(v) for v in value]
    return value


def _serialize(value: Any, *, ensure_ascii: bool) -> bytes:
    recipes: list[Recipe] = []

    def placeholder(item: Any) -> str:
        if not isinstance(item, Recipe):
            raise TypeError(type(item).__name__)
        recipes.append(item)
        return f"\x00recipe{len(recipes) - 1}\x00"

    text = json.dumps(value, default=placeholder, ensure_ascii=ensure_ascii)
    data = text.encode("utf-8", "surrogatepass")  # a raw lone surrogate: invalid UTF-8 bytes
    for i, recipe in enumerate(recipes):
        mark = json.dumps(f"\x00recipe{i}\x00").encode()
        if recipe.raw is not None:
            written = recipe.raw
        else:
            body = recipe.text if recipe.text is not None else _dumps(recipe.make(), ensure_ascii)
            written = body.encode("utf-8", "surrogatepass")
        data = data.replace(mark, written, 1)
    return data


def _dumps(value: Any, ensure_ascii: bool) -> str:
    try:
        return json.dumps(value, ensure_ascii=ensure_ascii, default=str)
    except (ValueError, RecursionError):  # too many digits or too deep: some other JSON
        return "0"


FIELD_NAMES = [
    "schema_version", "environment", "revision", "segments", "flags", "key", "version", "enabled",
    "salt", "variants", "off_variant", "default_variant", "cohort_attributes", "schedule",
    "rules", "description", "id", "conditions", "serve", "variant", "split", "bucket_by",
    "weight", "attribute", "operator", "value", "values", "negate", "case_insensitive",
    "segment", "payload", "start", "end", "events", "ts", "unit", "unit_type", "flag",
    "flag_version", "rule", "attrs", "metric",
]  # fmt: skip
"""Field names of rules documents and event batches: an added field is one the code reads."""


@st.composite
def _edit(draw: st.DrawFn, value: Any) -> Edit:
    action = draw(st.sampled_from(["set", "set", "set", "add", "rename", "drop"]))
    path = draw(st.sampled_from(_paths(value)))
    key = draw(st.one_of(st.sampled_from(FIELD_NAMES), keys())) if action == "add" else ""
    if action == "rename":
        key = draw(keys())
    if action in ("drop", "rename"):
        recipe = None
    elif action == "set":
        recipe = draw(hostile_like(_at(value, path)))
    else:
        recipe = draw(hostile_values())
    return Edit(action, path, recipe, key)


@st.composite
def cases(draw: st.DrawFn, bases: dict[str, Any], max_edits: int = 3) -> Case:
    """A base (by name) with 1..``max_edits`` hostile edits, each valid on the edited value."""
    name = draw(st.sampled_from(sorted(bases)))
    value = copy.deepcopy(bases[name])
    edits: list[Edit] = []
    for _ in range(draw(st.integers(1, max_edits))):
        if isinstance(value, Recipe):
            break
        edit = draw(_edit(value))  # a recipe is a leaf: no path leads inside one
        value = edit.apply(value)
        edits.append(edit)
    return Case(name, bases[name], tuple(edits))


@st.composite
def scattered(draw: st.DrawFn, bases: dict[str, Any], one_in: int) -> Case:
    """A base with about one leaf in ``one_in`` set to a hostile value and one member name in
    ``one_in`` renamed to a hostile key: many fields of one record hostile at once, where
    ``cases`` makes one to three edits anywhere."""
    name = draw(st.sampled_from(sorted(bases)))
    edits, renames = [], []
    for path in _paths(bases[name]):
        original = _at(bases[name], path)
        if not isinstance(original, dict | list) and draw(st.integers(0, one_in - 1)) == 0:
            edits.append(Edit("set", path, draw(hostile_like(original))))
        parent = _at(bases[name], path[:-1]) if path else None
        if isinstance(parent, dict) and draw(st.integers(0, one_in - 1)) == 0:
            renames.append(Edit("rename", path, key=draw(keys())))
    # renames last and deepest first, so that every path still leads where it did
    renames.sort(key=lambda edit: len(edit.path), reverse=True)
    return Case(name, bases[name], tuple(edits + renames))


def _at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def corrupt(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as it is, cut short, or with a few bytes inserted or overwritten."""
    how = draw(st.sampled_from(["none", "none", "cut", "insert", "overwrite"]))
    if how == "none" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    junk = draw(st.binary(min_size=1, max_size=3))
    if how == "cut":
        return data[:at]
    if how == "insert":
        return data[:at] + junk + data[at:]
    return data[:at] + junk + data[at + len(junk) :]

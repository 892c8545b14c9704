"""Decoding a request body into its model, with every problem named by its JSON path.

msgspec validates a whole body in microseconds but stops at its first error; an admin who sent
three wrong fields should hear about three. So a body is converted in one call, and only when
that fails is it walked field by field (the slow path is for invalid bodies alone) to collect
every problem: unknown fields, missing ones, and each field whose value does not convert. A
field may name its problem in words (``Meta(extra={"problem": ...})``); otherwise msgspec's
own message is used.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from typing import Any, TypeVar, Union

import msgspec

from rollwise.errors import Problem
from rollwise_server import errors  # a module: errors imports the models' problem document

__all__ = ["decode", "in_field_order", "problem_of", "problems_of", "valid_fields"]

S = TypeVar("S", bound=msgspec.Struct)
_AT = re.compile(r" - at `\$(.*)`$")


def decode(model: type[S], data: Any, *, status: int = 422) -> S:
    """``data`` (decoded JSON) as ``model``; else ``Invalid`` (422) with every problem, or
    with ``status=400`` a ``BadRequest`` naming the first (the answer of the endpoints whose
    few fields were always checked one at a time)."""
    value, problems = problems_of(model, data)
    if value is not None:
        return value
    if status == 400:
        raise errors.BadRequest(str(problems[0]))
    raise errors.Invalid.from_problems(problems)


def problems_of(model: type[S], data: Any) -> tuple[S | None, list[Problem]]:
    """``data`` as ``model`` and no problem, or ``None`` and every problem (never none)."""
    try:
        return msgspec.convert(data, model, strict=True), []
    except msgspec.ValidationError:
        pass
    return None, _struct_problems(model, data, "") or [Problem("", "is not valid")]


@functools.cache
def _fields(model: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """A model's fields, read once (reading them evaluates every annotation)."""
    return msgspec.structs.fields(model)


def valid_fields(model: type[msgspec.Struct], data: Any) -> dict[str, Any]:
    """The fields of ``data`` that are valid on their own, converted, and the defaults of the
    optional ones it leaves out: what the checks across fields can still use when the body
    as a whole failed, so that their problems are reported with the others."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for field in _fields(model):
        if field.encode_name in data:
            try:
                out[field.name] = msgspec.convert(data[field.encode_name], field.type, strict=True)
            except msgspec.ValidationError:
                continue
        elif not field.required:
            default = field.default
            out[field.name] = field.default_factory() if default is msgspec.NODEFAULT else default
    return out


def in_field_order(model: type[msgspec.Struct], problems: list[Problem]) -> list[Problem]:
    """``problems`` in the order of the fields they are about (unknown fields first), as a
    reader goes through the body; the order among one field's problems is kept."""
    order = {f.encode_name: i for i, f in enumerate(_fields(model))}

    def field(problem: Problem) -> int:
        name = re.split(r"[.\[]", problem.path, maxsplit=1)[0]
        return order.get(name, -1)

    return sorted(problems, key=field)


def problem_of(annotation: Any) -> str | None:
    """The words a field's ``Meta(extra={"problem": ...})`` gives for a bad value."""
    for meta in _metas(annotation):
        if meta.extra and "problem" in meta.extra:
            return str(meta.extra["problem"])
    return None


def _metas(annotation: Any) -> list[msgspec.Meta]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        return [m for m in extras if isinstance(m, msgspec.Meta)] + _metas(base)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _metas(arg)]
    return []


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _struct_problems(model: type[msgspec.Struct], data: Any, prefix: str) -> list[Problem]:
    if not isinstance(data, dict):
        return [Problem(prefix, "must be an object")]
    fields = _fields(model)
    out: list[Problem] = []
    if model.__struct_config__.forbid_unknown_fields:
        known = {f.encode_name for f in fields}
        out += [Problem(_join(prefix, str(k)), "unknown field") for k in data if k not in known]
    for field in fields:
        path = _join(prefix, field.encode_name)
        if field.encode_name not in data:
            if field.required:
                out.append(Problem(path, problem_of(field.type) or "is required"))
            continue
        out += _value_problems(field.type, data[field.encode_name], path)
    return out


def _struct_in(annotation: Any) -> type[msgspec.Struct] | None:
    """The one Struct type ``annotation`` is (through ``Annotated`` and ``| None``)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _struct_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        structs = [s for a in typing.get_args(annotation) if (s := _struct_in(a)) is not None]
        return structs[0] if len(structs) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    return None


def _value_problems(annotation: Any, value: Any, path: str) -> list[Problem]:
    """The problems of one value. A Struct is walked field by field; a list or dict is walked
    element by element when its elements have words of their own (or the container has
    none), so that the most specific declared message is the one reported."""
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as exc:
        struct = _struct_in(annotation)
        if struct is not None and isinstance(value, dict):
            return _struct_problems(struct, value, path)
        own = problem_of(annotation)
        kind, element = _container(annotation)
        speaks = _struct_in(element) is not None or problem_of(element) is not None
        if kind is not None and (own is None or speaks):
            nested: list[Problem] = []
            if kind is list and isinstance(value, list):
                for i, each in enumerate(value):
                    nested += _value_problems(element, each, f"{path}[{i}]")
            elif kind is dict and isinstance(value, dict):
                for key, each in value.items():
                    nested += _value_problems(element, each, _join(path, str(key)))
            if nested:
                return nested
        message = str(exc)
        found = _AT.search(message)
        where = path
        if found:
            message = message[: found.start()]
            rest = found.group(1)
            where = f"{path}{rest}" if rest.startswith("[") else _join(path, rest.lstrip("."))
        return [Problem(where if own is None else path, own or message)]
    return []


def _container(annotation: Any) -> tuple[type | None, Any]:
    """``(list, item type)`` or ``(dict, value type)`` for such an annotation (through
    ``Annotated`` and ``| None``), else ``(None, None)``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _container(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        found = [c for a in typing.get_args(annotation) if (c := _container(a))[0] is not None]
        return found[0] if len(found) == 1 else (None, None)
    if origin is list:
        return list, typing.get_args(annotation)[0]
    if origin is dict:
        return dict, typing.get_args(annotation)[1]
    return None, None

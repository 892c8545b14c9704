"""The rules document: flags, variants, rules, conditions and segments as frozen values.

The exact schema is ``docs/spec/rules.md`` (with ``docs/spec/rules.schema.json``). Values are
built with the named constructors ``from_json`` (which validate and report every problem with its
JSON path) and turned back into JSON with ``to_json``.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import attrs

from rollwise._freeze import freeze, thaw

__all__ = [
    "SCHEMA_VERSION",
    "Condition",
    "Flag",
    "FlagType",
    "Rule",
    "RulesDocument",
    "Schedule",
    "Segment",
    "SegmentRef",
    "Serve",
    "Shadow",
    "SplitArm",
    "Variant",
    "schema_version_of",
]

SCHEMA_VERSION = 2
"""The newest ``schema_version`` this SDK understands (1: string flags only; 2: typed flags)."""


class FlagType(enum.StrEnum):
    """What a flag's variants' ``value`` is: the type a typed accessor asks for."""

    STRING = "string"
    """The variant's value is a string: its key unless the variant says otherwise."""
    BOOLEAN = "boolean"
    INTEGER = "integer"
    """A JSON integer within ±(2**53 - 1), which every language reads exactly."""
    FLOAT = "float"
    """A finite JSON number (an integer such as ``1`` reads as ``1.0``)."""
    JSON = "json"
    """A JSON object or array, given to the application as a read-only view."""


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _rules(items: Iterable[Rule]) -> tuple[Rule, ...]:
    return tuple(items)


def _conditions(items: Iterable[Condition | SegmentRef]) -> tuple[Condition | SegmentRef, ...]:
    return tuple(items)


def _plain_conditions(items: Iterable[Condition]) -> tuple[Condition, ...]:
    return tuple(items)


def _arms(items: Iterable[SplitArm] | None) -> tuple[SplitArm, ...] | None:
    return None if items is None else tuple(items)


def _operands(items: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if items is None else tuple(freeze(list(items)))


def _mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@attrs.frozen
class Condition:
    """``attribute operator value`` with the operand kept as written in JSON."""

    attribute: str
    operator: str
    value: Any = attrs.field(default=None, converter=freeze)
    values: tuple[Any, ...] | None = attrs.field(default=None, converter=_operands)
    negate: bool = False
    case_insensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute, "operator": self.operator}
        if self.values is not None:
            out["values"] = thaw(self.values)
        if self.value is not None:
            out["value"] = thaw(self.value)
        if self.negate:
            out["negate"] = True
        if self.case_insensitive:
            out["case_insensitive"] = True
        return out


@attrs.frozen
class SegmentRef:
    """A condition that holds when every condition of the named segment holds."""

    segment: str
    negate: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"segment": self.segment}
        if self.negate:
            out["negate"] = True
        return out


@attrs.frozen
class SplitArm:
    """One variant of a weighted split and its integer weight."""

    variant: str
    weight: int


@attrs.frozen
class Serve:
    """What a matching rule serves: one ``variant``, or a ``split`` bucketed by ``bucket_by``."""

    variant: str | None = None
    split: tuple[SplitArm, ...] | None = attrs.field(default=None, converter=_arms)
    bucket_by: str = "user_id"

    def to_json(self) -> dict[str, Any]:
        if self.split is None:
            return {"variant": self.variant}
        return {
            "split": [{"variant": a.variant, "weight": a.weight} for a in self.split],
            "bucket_by": self.bucket_by,
        }


@attrs.frozen
class Rule:
    """Conditions (all must hold) and what to serve; rules are tried in order."""

    id: str
    conditions: tuple[Condition | SegmentRef, ...] = attrs.field(converter=_conditions)
    serve: Serve

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conditions": [c.to_json() for c in self.conditions],
            "serve": self.serve.to_json(),
        }


@attrs.frozen
class Variant:
    """A model version that a flag can serve: its typed ``value`` (of the flag's ``type``; a
    string flag's is the key unless given) and an optional read-only JSON payload."""

    key: str
    payload: Any = attrs.field(default=None, converter=freeze)
    value: Any = attrs.field(converter=freeze)

    @value.default
    def _key_as_value(self) -> Any:
        return self.key

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.payload is None else {"payload": thaw(self.payload)}
        if not (isinstance(self.value, str) and self.value == self.key):  # the default: unsaid
            out["value"] = thaw(self.value)
        return out


@attrs.frozen
class Schedule:
    """The flag is active when ``start <= now < end``; either end may be open (``None``)."""

    start: datetime | None = None
    end: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end)}


@attrs.frozen
class Shadow:
    """A candidate computed beside the served variant for a share of units, never served.

    The units are chosen by their own hash (``docs/spec/bucketing.md``, salt ``{salt}.shadow``),
    so the same units are shadowed on every request and their outcomes pair up.
    """

    variant: str
    share: float
    bucket_by: str = "user_id"

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "share": self.share, "bucket_by": self.bucket_by}


@attrs.frozen
class Segment:
    """A named, reusable set of conditions (all must hold)."""

    key: str
    conditions: tuple[Condition, ...] = attrs.field(converter=_plain_conditions)
    description: str = ""

    @classmethod
    def from_json(cls, data: Any, *, key: str | None = None, strict: bool = False) -> Segment:
        """Validate and build a segment; ``key`` defaults to ``data["key"]``."""
        from rollwise import _parse

        return _parse.parse_segment(data, key=key, strict=strict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"conditions": [c.to_json() for c in self.conditions]}
        if self.description:
            out["description"] = self.description
        return out


@attrs.frozen
class Flag:
    """A flag: the variants (model versions) it serves and the rules that choose one."""

    key: str
    version: int
    variants: Mapping[str, Variant] = attrs.field(converter=_mapping)
    off_variant: str
    default_variant: str
    enabled: bool = True
    salt: str = ""
    rules: tuple[Rule, ...] = attrs.field(default=(), converter=_rules)
    cohort_attributes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    schedule: Schedule | None = None
    description: str = ""
    shadow: Shadow | None = None
    type: FlagType = FlagType.STRING

    @classmethod
    def from_json(
        cls,
        data: Any,
        *,
        key: str | None = None,
        segments: Collection[str] | None = None,
        strict: bool = False,
    ) -> Flag:
        """Validate and build a flag; segment references are checked against ``segments``."""
        from rollwise import _parse

        return _parse.parse_flag(data, key=key, segments=segments, strict=strict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "enabled": self.enabled,
            "salt": self.salt,
            "variants": {k: v.to_json() for k, v in self.variants.items()},
            "off_variant": self.off_variant,
            "default_variant": self.default_variant,
            "cohort_attributes": list(self.cohort_attributes),
            "schedule": None if self.schedule is None else self.schedule.to_json(),
            "rules": [r.to_json() for r in self.rules],
        }
        if self.description:
            out["description"] = self.description
        if self.shadow is not None:  # absent when unset: documents without it keep their text
            out["shadow"] = self.shadow.to_json()
        if self.type is not FlagType.STRING:  # likewise: string flags keep their text
            out["type"] = self.type.value
        return out


def schema_version_of(flags: Iterable[Flag | Mapping[str, Any]]) -> int:
    """The ``schema_version`` a document of these flags (values, or their JSON) needs: 2 once
    a flag is typed or a variant has a value other than its key (which a version-1 reader
    would ignore, and so answer differently), else 1."""
    for flag in flags:
        if isinstance(flag, Flag):
            if flag.type is not FlagType.STRING or any(
                v.value != k for k, v in flag.variants.items()
            ):
                return 2
            continue
        variants = flag.get("variants")
        if flag.get("type", "string") != FlagType.STRING or (
            isinstance(variants, Mapping)
            and any(isinstance(v, Mapping) and "value" in v for v in variants.values())
        ):
            return 2
    return 1


@attrs.frozen
class RulesDocument:
    """Everything an SDK needs for one environment at one ``revision``."""

    environment: str
    revision: int
    flags: Mapping[str, Flag] = attrs.field(factory=dict, converter=_mapping)
    segments: Mapping[str, Segment] = attrs.field(factory=dict, converter=_mapping)

    @property
    def schema_version(self) -> int:
        """The oldest schema that says all of it: 2 with a typed flag or a variant's value, else
        1 (which SDKs older than typed flags read, so their rules keep updating until then)."""
        return schema_version_of(self.flags.values())

    @classmethod
    def from_json(cls, data: Any, *, strict: bool = False) -> RulesDocument:
        """Validate and build a document from parsed JSON.

        Raises ``RulesParseError`` listing every problem with its JSON path, or
        ``UnsupportedSchemaError`` for a newer ``schema_version``. With ``strict`` unknown keys
        are problems too (the server uses it; SDKs ignore fields added by newer servers).
        """
        from rollwise import _parse

        return _parse.parse_document(data, strict=strict)

    @classmethod
    def from_text(cls, text: str | bytes, *, strict: bool = False) -> RulesDocument:
        """Parse a JSON text; invalid JSON is a ``RulesParseError`` too."""
        from rollwise import _parse

        return cls.from_json(_parse.load_json(text), strict=strict)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, strict: bool = False) -> RulesDocument:
        """Read and parse a JSON file."""
        with open(path, "rb") as handle:
            return cls.from_text(handle.read(), strict=strict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "environment": self.environment,
            "revision": self.revision,
            "segments": {k: s.to_json() for k, s in self.segments.items()},
            "flags": {k: f.to_json() for k, f in self.flags.items()},
        }

    def to_text(self) -> str:
        """Canonical JSON text (sorted keys, compact)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

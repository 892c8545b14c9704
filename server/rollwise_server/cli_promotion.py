"""What a promotion changes, and a promotion that brings its segments along.

``rollwise flags diff KEY --env A --env B`` shows, for the flag and each segment its rules use,
what differs between two environments (old -> new values, as ``history`` shows them);
``rollwise flags promote`` uses the same comparison for ``--dry-run`` and ``--with-segments``.
The server's promote endpoint copies one flag; the segments are applied first, each an audited
change of its own in the target environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import jsonpatch

from rollwise_server.api_client import ApiClient, ApiResponseError, Kind, strip_meta

__all__ = ["Difference", "differences", "segments_of"]

Json = dict[str, Any]


@attrs.frozen
class Difference:
    """One resource in two environments: ``target`` is ``None`` where it is missing (or
    archived); ``patch`` turns the target's configuration into the source's."""

    kind: Kind
    key: str
    source: Json
    target: Json | None
    patch: list[Json]

    @property
    def same(self) -> bool:
        return self.target is not None and not self.patch

    def to_json(self) -> Json:
        return {"kind": self.kind, "key": self.key, "missing": self.target is None,
                "diff": self.patch}  # fmt: skip


def segments_of(flag: Mapping[str, Any]) -> list[str]:
    """The segments a flag's rules refer to, in the order they first appear."""
    found: dict[str, None] = {}
    for rule in flag.get("rules") or []:
        for condition in rule.get("conditions") or []:
            if isinstance(condition, Mapping) and isinstance(condition.get("segment"), str):
                found[condition["segment"]] = None
    return list(found)


def _current(client: ApiClient, env: str, kind: Kind, key: str) -> Json | None:
    try:
        data = client.get_resource(env, kind, key)
    except ApiResponseError as exc:
        if exc.status != 404:
            raise
        return None
    return None if data.get("archived") else data


def _difference(client: ApiClient, kind: Kind, key: str, source_env: str, target_env: str,
                source: Json) -> Difference:  # fmt: skip
    target = _current(client, target_env, kind, key)
    mine, theirs = strip_meta(source), strip_meta(target or {})
    patch = jsonpatch.make_patch(theirs, mine).patch if target is not None else []
    return Difference(kind, key, source, target, patch)


def differences(client: ApiClient, key: str, source_env: str, target_env: str) -> Iterator[
    Difference
]:  # fmt: skip
    """The flag's segments, then the flag: each as it is in ``source_env`` against
    ``target_env`` (404 if the flag is not in ``source_env``)."""
    flag = client.get_resource(source_env, "flag", key)
    for name in segments_of(flag):
        segment = _current(client, source_env, "segment", name)
        if segment is not None:
            yield _difference(client, "segment", name, source_env, target_env, segment)
    yield _difference(client, "flag", key, source_env, target_env, flag)

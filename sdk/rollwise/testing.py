"""Helpers for testing code that uses rollwise (structlog's ``testing`` module is the model).

>>> from rollwise.testing import static_client, capture_exposures
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from rollwise.client import Client, RulesSource
from rollwise.events import Exposure
from rollwise.rules import schema_version_of

__all__ = ["capture_exposures", "flag_document", "static_client"]


def _kind(answer: Any) -> str:
    """The flag type of a fixed answer (``bool`` before ``int``: a bool is an int)."""
    for kind, types in (("string", str), ("boolean", bool), ("integer", int), ("float", float),
                        ("json", Mapping | list)):  # fmt: skip
        if isinstance(answer, types):
            return kind
    raise TypeError(f"no flag type holds a {type(answer).__name__}: {answer!r}")


def _static_flag(answer: Any) -> dict[str, Any]:
    kind = _kind(answer)
    variant = answer if kind == "string" else "static"
    body: dict[str, Any] = {
        "version": 1,
        "variants": {variant: {} if kind == "string" else {"value": answer}},
        "off_variant": variant,
        "default_variant": variant,
    }
    if kind != "string":
        body["type"] = kind
    return body


def flag_document(
    variants: Mapping[str, Any] | None = None, *, environment: str = "test", revision: int = 1
) -> dict[str, Any]:
    """A rules document in which each flag always serves one answer.

    ``flag_document({"fraud-model": "v2"})`` is a document whose flag ``fraud-model`` serves
    the variant ``v2`` to everyone (its ``off_variant`` too), for tests that only need a fixed
    answer. A value that is not a string makes a typed flag serving it as its value (variant
    ``static``): ``{"checks-enabled": False, "queue-size": 50, "threshold": 0.5, "config":
    {"k": 1}}`` are a boolean, an integer, a float and a json flag.
    """
    flags = {key: _static_flag(answer) for key, answer in (variants or {}).items()}
    return {
        "schema_version": schema_version_of(flags.values()),
        "environment": environment,
        "revision": revision,
        "segments": {},
        "flags": flags,
    }


def static_client(rules: RulesSource | Mapping[str, Any]) -> Client:
    """An offline client for tests: a rules document, or a ``{flag: answer}`` mapping (a
    variant key, or a typed value: ``flag_document``)."""
    if isinstance(rules, Mapping) and "flags" not in rules:
        return Client.offline(flag_document(rules))
    return Client.offline(rules)


@contextlib.contextmanager
def capture_exposures(client: Client) -> Iterator[list[Exposure]]:
    """Collect the exposures ``client`` records inside the ``with`` block into a list."""
    captured: list[Exposure] = []
    client.add_exposure_listener(captured.append)
    try:
        yield captured
    finally:
        client.remove_exposure_listener(captured.append)

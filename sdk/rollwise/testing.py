"""Helpers for testing code that uses rollwise (structlog's ``testing`` module is the model).

>>> from rollwise.testing import static_client, capture_exposures
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from rollwise.client import Client, RulesSource
from rollwise.events import Exposure

__all__ = ["capture_exposures", "flag_document", "static_client"]


def flag_document(
    variants: Mapping[str, str] | None = None, *, environment: str = "test", revision: int = 1
) -> dict[str, Any]:
    """A rules document in which each flag always serves one variant.

    ``flag_document({"fraud-model": "v2"})`` is a document whose flag ``fraud-model`` serves
    ``v2`` to everyone (its ``off_variant`` too), for tests that only need a fixed answer.
    """
    flags = {
        key: {
            "version": 1,
            "variants": {variant: {}},
            "off_variant": variant,
            "default_variant": variant,
        }
        for key, variant in (variants or {}).items()
    }
    return {
        "schema_version": 1,
        "environment": environment,
        "revision": revision,
        "segments": {},
        "flags": flags,
    }


def static_client(rules: RulesSource | Mapping[str, str]) -> Client:
    """An offline client for tests: a rules document, or a ``{flag: variant}`` mapping."""
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

"""The OpenAPI 3.1 description of the server's HTTP API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from rollwise._version import __version__

__all__ = ["openapi_document"]


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "rollwise flag server", "version": __version__},
        "paths": {},
    }

"""The machine-readable specifications shipped with the SDK.

``rules.schema.json`` (JSON Schema 2020-12) is the shape of the rules document of
``docs/spec/rules.md``. It lives in the package, not only in the docs, so that whoever has the
SDK installed has the schema of the documents it accepts: the flag server builds its OpenAPI
description from it, and validators in other languages can load the same file.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["RULES_SCHEMA", "rules_schema"]

RULES_SCHEMA = "rules.schema.json"
"""The file name of the rules document's JSON Schema in this package."""


def rules_schema() -> dict[str, Any]:
    """The JSON Schema of the rules document, as a fresh dict (callers may change it)."""
    text = files(__name__).joinpath(RULES_SCHEMA).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema

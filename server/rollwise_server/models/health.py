"""What ``/healthz`` and ``/readyz`` answer."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Health"]


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    status: Literal["ok", "unavailable"]
    version: str | None = None
    detail: str | None = None

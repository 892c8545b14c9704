"""The server's logging set-up: uvicorn's own configuration plus the ``rollwise`` loggers.

``rollwise serve`` passes this to uvicorn, so that the controller's decisions and the server's
warnings appear in the server's output beside uvicorn's lines, at the level of ``--log-level``.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["log_config"]


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's ``LOGGING_CONFIG`` with the ``rollwise`` logger on its default handler."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rollwise"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config

"""The server's logging set-up: uvicorn's own configuration plus the ``rollwise`` loggers.

``rollwise serve`` passes this to uvicorn, so that the controller's decisions, the server's
warnings and the access log (``access.py``) appear in the server's output beside uvicorn's
lines, at the level of ``--log-level``; with ``--log-format json`` every line is one JSON
object. uvicorn's own access log is off: ``rollwise.access`` replaces it.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

__all__ = ["LogFormat", "log_config"]

LogFormat = Literal["text", "json"]


def log_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's ``LOGGING_CONFIG`` with the ``rollwise`` loggers on its default handler."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rollwise"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    if log_format == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = "rollwise_server.access.JsonFormatter"
    return config

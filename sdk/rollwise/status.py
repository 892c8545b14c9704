"""``ClientStatus``: what a client knows about its rules and its connection."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["ClientStatus", "Connection", "RulesOrigin"]

RulesOrigin = Literal["server", "disk_cache", "bootstrap", "offline"]
Connection = Literal[
    "offline", "connecting", "streaming", "polling", "disconnected", "unauthorized", "closed"
]
"""``offline``: ``Client.offline``; ``connecting``: no answer yet, or reconnecting the stream;
``streaming``: the change stream is open; ``polling``: polling (streaming off or failing);
``disconnected``: the server is unreachable or failing, retried with backoff; ``unauthorized``:
the server refused the SDK key; ``closed``: after ``close()``."""


@attrs.frozen(kw_only=True)
class ClientStatus:
    """A snapshot for health checks and dashboards; ``client.status()`` builds it."""

    revision: int | None
    """The revision of the rules in use (``None``: no rules yet, every flag serves defaults)."""
    origin: RulesOrigin | None
    """Where those rules came from."""
    age_seconds: float | None
    """Seconds since the rules in use were received (or saved, for the disk cache)."""
    connection: Connection
    """The state of the link to the server (see ``Connection``)."""
    ready: bool
    """Whether the client has heard from the server since it started."""
    last_sync: float | None
    """When the server last answered (epoch seconds)."""
    last_error: str | None
    """The most recent problem: the server unreachable, a rejected document, ..."""

"""The asyncio client: ``rollwise.aio.AsyncClient`` (``pip install 'rollwise[aio]'``).

Evaluation is the same synchronous code as ``rollwise.Client``'s; the rules sync and the event
sender run as asyncio tasks over httpx. ``import rollwise`` never imports this package, nor
httpx.
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401 - only to say what to install when it is missing
except ImportError as exc:  # pragma: no cover - tested in a subprocess without httpx
    raise ImportError(
        "rollwise.aio needs httpx, which the aio extra installs: pip install 'rollwise[aio]'"
    ) from exc

from rollwise.aio.client import AsyncClient

__all__ = ["AsyncClient"]

"""Liveness, readiness and metrics for operators."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from rollwise._version import __version__
from rollwise_server.api.common import model_response, state, threaded
from rollwise_server.models import Health

__all__ = ["healthz", "metrics", "readyz"]


async def healthz(request: Request) -> Response:
    """The process is up (no dependency checked)."""
    return model_response(Health("ok", version=__version__))


async def readyz(request: Request) -> Response:
    """The database answers and can be written: ready to serve. While a write has failed for
    lack of disk space, a probe write (at most one a second) finds out when it can again."""
    store = state(request).store
    try:
        ok = await threaded(store.ping)
        if store.writes.probe_due():
            await threaded(store.probe_write)
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        return model_response(Health("unavailable", detail=str(exc)), 503)
    if not store.writes.writable:
        detail = "the database cannot be written: the disk is full"
        return model_response(Health("unavailable", detail=detail), 503)
    return model_response(Health("ok" if ok else "unavailable"), 200 if ok else 503)


async def metrics(request: Request) -> Response:
    return Response(state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)

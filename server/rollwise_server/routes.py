"""The route template of a request (``/api/v1/envs/{env}/flags/{key}``), for the metrics, the
access log and the traces: never a key or a token, and few enough values for a metric label.

Several routes share one endpoint (the flags, segments and metrics of an environment are served
by the same functions), so the endpoint alone does not name the route: the router's match
(``scope["route"]``, where Starlette sets it) does, or else the shared endpoint's routes are
matched again, which only those few requests pay for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

__all__ = ["RouteTemplates"]


class RouteTemplates:
    """Route templates by endpoint; ``of(scope)`` after the router has run."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._by_endpoint: dict[Callable[..., Any], list[Route]] = {}
        for route in routes:
            if isinstance(route, Route):
                self._by_endpoint.setdefault(route.endpoint, []).append(route)

    def of(self, scope: Scope) -> str:
        matched = scope.get("route")
        if isinstance(matched, Route):
            return matched.path
        candidates = self._by_endpoint.get(scope.get("endpoint"), [])  # type: ignore[arg-type]
        if len(candidates) == 1:
            return candidates[0].path
        for route in candidates:
            if route.matches(scope)[0] is Match.FULL:
                return route.path
        return "unmatched"

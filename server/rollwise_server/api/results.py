"""``GET /api/v1/envs/{env}/flags/{key}/results``: a flag's sufficient statistics for a metric.

The reduction (``rollwise.analysis.reduce``: a unit's variant is its first exposure, units
exposed to several variants left out and counted, outcomes within an attribution window) runs
as one SQL ``GROUP BY`` query in the database, in a worker thread; only the statistics per
variant and cohort travel. Query parameters: ``metric`` (required: a metric of the
environment's catalogue, else 404), ``kind`` (``binary``, ``count``, ``mean`` or ``ratio``;
the catalogue's kind when left out), ``denominator`` (a ratio's denominator metric; the
catalogue's when left out), ``cohort`` (an exposure attribute), ``bands`` (increasing edges
for a numeric cohort, e.g. ``0,100,500``), ``window`` (``14d`` by default; a duration such as
``2w`` or ``1h30m`` in the grammar of ``rollwise.durations``, or ``none``).

Until the ``Store`` protocol has a method for it, the query runs on the SQLite store's
per-thread reader connection (``reduce_in_store``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rollwise._parse import KEY_PATTERN
from rollwise.analysis.reduce import (
    DEFAULT_WINDOW_SECONDS,
    KINDS,
    MAX_BANDS,
    ReductionResult,
    ReductionSpec,
    parse_window,
    reduce_spec,
)
from rollwise.durations import PATTERN as DURATION_PATTERN
from rollwise_server import models
from rollwise_server.api.common import authorize, model_response, state, threaded
from rollwise_server.catalogue import Metric
from rollwise_server.errors import BadRequest, NotFound
from rollwise_server.rollouts import transitions
from rollwise_server.storage.base import Store

__all__ = ["OPENAPI_PATHS", "ROUTES_RESULTS", "parse_query", "reduce_in_store", "results"]

_NUMBER = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_BANDS = re.compile(rf"{_NUMBER}(?:,{_NUMBER})*")
_END = r"(?![\s\S])"  # end of string in ECMA 262 and Python alike (``$`` allows a final \n)


def _key(params: Any, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name}: required (a metric key, e.g. ?{name}=fraud_caught)")
        return None
    if KEY_PATTERN.fullmatch(value) is None:
        raise BadRequest(f"{name}: {value[:200]!r} is not a metric key")
    return str(value)


def parse_query(
    env: str, key: str, params: Any, catalogue: Mapping[str, Metric] | None = None
) -> ReductionSpec:
    """The reduction a request asks for (``BadRequest`` on a malformed parameter).

    With the environment's metric ``catalogue``, the metric must be defined there (404
    otherwise) and its kind and denominator come from it unless ``kind`` is given explicitly
    (another reading of the same events, e.g. ``count`` of a binary metric). Without a
    catalogue (analysis tools) ``kind`` is required."""
    metric = _key(params, "metric", required=True)
    kind = params.get("kind")
    denominator = _key(params, "denominator")
    source = metric
    if catalogue is not None:
        entry = catalogue.get(metric or "")
        if entry is None:
            raise NotFound(
                f"metric {metric!r} is not in the metric catalogue of {env!r}: define it "
                f"(POST /api/v1/envs/{env}/metrics) before reading its results"
            )
        if kind is None:  # an explicit kind (another reading of the same events) wins
            kind, denominator = entry.kind, denominator or entry.denominator
            source = entry.source
    if kind not in KINDS:
        raise BadRequest(f"kind: must be one of {', '.join(KINDS)}")
    bands: list[float] | None = None
    raw_bands = params.get("bands")
    if raw_bands is not None:
        if len(raw_bands) > 2000 or _BANDS.fullmatch(raw_bands) is None:
            raise BadRequest("bands: comma-separated numbers, e.g. bands=0,100,500")
        bands = [float(edge) for edge in raw_bands.split(",")]
        if len(bands) > MAX_BANDS:
            raise BadRequest(f"bands: at most {MAX_BANDS} edges")
    window: float | None = DEFAULT_WINDOW_SECONDS
    if "window" in params:
        try:
            window = parse_window(params["window"][:100])
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    try:
        return ReductionSpec(
            flag=key, metric=source or "", kind=kind, env=env, cohort=params.get("cohort"),
            bands=bands, window_seconds=window, denominator_metric=denominator,
        )  # fmt: skip
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def reduce_in_store(store: Store, spec: ReductionSpec) -> ReductionResult:
    """Run the reduction in the store's database (404 for an unknown environment or flag).

    Blocking: call it in a worker thread (the store's reader connection of this thread).
    """
    env = spec.env or ""
    store.revision(env)
    store.get_resource(env, "flag", spec.flag)  # archived flags keep their results
    return reduce_spec(store.reader(), spec, dialect=store.dialect)


async def results(request: Request) -> Response:
    env, key = request.path_params["env"], request.path_params["key"]
    await authorize(request, "read", env)
    store = state(request).store
    catalogue = await threaded(transitions.catalogue, store, env)
    spec = parse_query(env, key, request.query_params, catalogue)
    result = await threaded(reduce_in_store, state(request).store, spec)
    answer = msgspec.convert(result.to_json(), models.Results)
    return model_response(answer, headers={"Cache-Control": "no-store"})


ROUTES_RESULTS = [
    Route("/api/v1/envs/{env}/flags/{key}/results", results, methods=["GET"]),
]


# --- the OpenAPI description (``openapi.py`` adds these paths) --------------------------------


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description, **extra}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/envs/{env}/flags/{key}/results": {
        "parameters": [
            {
                "name": "env",
                "in": "path",
                "required": True,
                "schema": {"$ref": "#/components/schemas/key"},
                "description": "The environment, e.g. production.",
                "example": "production",
            },
            {
                "name": "key",
                "in": "path",
                "required": True,
                "schema": {"$ref": "#/components/schemas/key"},
                "description": "The flag key.",
                "example": "fraud-model",
            },
        ],
        "get": {
            "operationId": "getFlagResults",
            "tags": ["flags"],
            "summary": "A metric's sufficient statistics per variant and cohort",
            "description": "The metric is one of the environment's catalogue: its kind, "
            "denominator and numerator come from there. "
            "Reduced in the database by one SQL query: a unit's variant is its "
            "first exposure to the flag; units exposed to more than one variant are left out "
            "and counted (`diagnostics.multiple_variants`); an outcome counts when "
            "first exposure <= ts < first exposure + window. Per-unit value: binary, 1 if an "
            "outcome has a value > 0 (else 0); count, the number of outcomes; mean, the "
            "average of its values (units without one are not in n); ratio, Σ metric and "
            "Σ denominator (units whose denominator is 0 are not in n).\n\n"
            "Roles viewer, editor, approver, admin.",
            "x-rollwise-permission": "read",
            "parameters": [
                _query(
                    "metric",
                    {"$ref": "#/components/schemas/key"},
                    "A metric of the environment's catalogue (404 if it is not there).",
                    required=True,
                    example="fraud_caught",
                ),
                _query(
                    "kind",
                    {"enum": list(KINDS)},
                    "Optional: another reading of the metric's events (e.g. count of a binary "
                    "metric); the catalogue's kind when left out.",
                ),
                _query(
                    "denominator",
                    {"$ref": "#/components/schemas/key"},
                    "Optional: a ratio's denominator metric; the catalogue's when left out.",
                ),
                _query(
                    "cohort",
                    {"type": "string", "pattern": '^[^"\\\\\\x00-\\x1f\\x7f]{1,256}(?![\\s\\S])'},
                    "An attribute of the first exposure's attrs, e.g. country.",
                ),
                _query(
                    "bands",
                    {"type": "string", "pattern": f"^{_BANDS.pattern}{_END}", "maxLength": 2000},
                    f"Increasing edges that band a numeric cohort (at most {MAX_BANDS}), e.g. "
                    "0,100,500 → (-inf, 0), [0, 100), [100, 500), [500, inf). Needs cohort.",
                ),
                _query(
                    "window",
                    {
                        "type": "string",
                        "pattern": f"^(?:{DURATION_PATTERN}|none){_END}",
                        "default": "14d",
                    },
                    "The attribution window (1 ms to 100 years): a duration such as 14d, 2w or "
                    "1h30m (docs/spec/durations.md), or none for no upper bound.",
                ),
            ],
            "responses": {
                "200": {
                    "description": "The statistics and diagnostics.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Results"}}
                    },
                },
                "400": _problem(
                    "A malformed query parameter, or a kind or denominator that disagrees with "
                    "the catalogue."
                ),
                "401": _problem(
                    "No bearer token (Authorization: Bearer rw_...; any other scheme is 401), "
                    "or an unknown, revoked or expired one."
                ),
                "403": _problem("The token's role may not do this, or not in this environment."),
                "404": _problem("No such environment or flag, or no such metric in the catalogue."),
            },
        },
    }
}

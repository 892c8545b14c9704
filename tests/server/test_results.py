"""``GET /api/v1/envs/{env}/flags/{key}/results`` over real HTTP.

Events go in through the SDK ingestion endpoints of a live server; the statistics the endpoint
computes in SQLite must be those ``reduce_frame`` computes with pandas from the same events, and
``ResultsClient`` must read them back as the same ``ReductionResult``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import jsonschema
import pandas as pd
import pytest
import requests
from openapi_spec_validator import validate as validate_openapi

from rollwise.analysis.data import ResultsClient, ResultsError
from rollwise.analysis.reduce import ReductionResult, format_window, reduce_frame
from rollwise.errors import AuthenticationError, ServerUnavailableError
from rollwise_server.api.results import OPENAPI_PATHS
from rollwise_server.openapi import openapi_document
from rollwise_server.testing import LiveServer, free_port, live_server
from tests.analysis.test_reduce import (
    CASES,
    ENV,
    EXPOSURE_COLUMNS,
    FLAG,
    OUTCOME_COLUMNS,
    assert_same,
    case_args,
    generate,
)
from tests.server.conftest import EU_SEGMENT, example_flag

PATH = f"/api/v1/envs/{ENV}/flags/{FLAG}/results"


def create_flag(server: LiveServer) -> None:
    """The example flag ``fraud-model`` (and the segment it uses) in production."""
    admin = server.session()
    base = f"{server.url}/api/v1/envs/{ENV}"
    assert admin.post(f"{base}/segments", json=EU_SEGMENT, timeout=10).status_code == 201
    created = admin.post(f"{base}/flags", json=example_flag(), timeout=10)
    assert created.status_code == 201, created.text
    for metric in CATALOGUE:
        defined = admin.post(f"{base}/metrics", json=metric, timeout=10)
        assert defined.status_code == 201, defined.text


CATALOGUE = [
    {"key": "conv", "kind": "binary", "direction": "higher_is_better"},
    {"key": "latency", "kind": "mean", "direction": "lower_is_better"},
    {"key": "errors", "kind": "ratio", "direction": "lower_is_better", "denominator": "requests"},
    {"key": "requests", "kind": "count", "direction": "higher_is_better"},
]
"""The metric catalogue of the generated events (the endpoint reads only defined metrics)."""


def post_events(server: LiveServer, kind: str, events: Sequence[dict[str, Any]]) -> None:
    """Post ``events`` with an SDK token of each event's environment, in batches."""
    by_env: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_env[event["env"]].append({k: v for k, v in event.items() if k != "env"})
    for env, batch in by_env.items():
        sdk = server.session(server.token("sdk", env=env))
        for start in range(0, len(batch), 1000):
            chunk = batch[start : start + 1000]
            answer = sdk.post(f"{server.url}/api/v1/sdk/{kind}", json={"events": chunk}, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == len(chunk), answer.text


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any, Any]]:
    """A server holding the generated events of seed 7 (and the frames of the same events)."""
    exposures, outcomes = generate(7, units=150)
    with live_server(tmp_path_factory.mktemp("results")) as server:
        create_flag(server)
        post_events(server, "exposures", exposures)
        post_events(server, "events", outcomes)
        yield (
            server,
            pd.DataFrame.from_records(exposures, columns=list(EXPOSURE_COLUMNS[:-1])),
            pd.DataFrame.from_records(outcomes, columns=list(OUTCOME_COLUMNS[:-1])),
        )


def query(case: dict[str, Any]) -> dict[str, str]:
    args = case_args(case)
    params = {"metric": args["metric"], "kind": args["kind"]}
    params["window"] = format_window(args.get("window_seconds"))
    if "cohort" in args:
        params["cohort"] = args["cohort"]
    if "bands" in args:
        params["bands"] = ",".join(str(edge) for edge in args["bands"])
    if "denominator_metric" in args:
        params["denominator"] = args["denominator_metric"]
    return params


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_the_endpoint_computes_what_pandas_computes(
    loaded: tuple[LiveServer, Any, Any], case: dict[str, Any]
) -> None:
    server, exposures, outcomes = loaded
    viewer = server.session(server.token("viewer"))
    response = viewer.get(f"{server.url}{PATH}", params=query(case), timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    components = openapi_document()["components"]  # the $refs of the schema point there
    schema = {"$ref": "#/components/schemas/Results", "components": components}
    jsonschema.Draft202012Validator(schema).validate(body)
    from_server = ReductionResult.from_json(body)
    args = case_args(case)
    metric = args.pop("metric")
    from_pandas = reduce_frame(exposures, outcomes, FLAG, metric, env=ENV, **args)
    assert from_server.cells
    assert_same(from_server, from_pandas)
    assert body["diagnostics"] == {
        "units": from_pandas.units,
        "multiple_variants": from_pandas.multiple_variants,
    }
    assert body["variants"] == ["candidate", "control"]
    overall = {item["variant"]: item for item in body["overall"]}
    for variant, stats in from_pandas.overall().items():
        assert overall[variant]["n"] == stats.n
        assert overall[variant]["total"] == pytest.approx(stats.total)


@pytest.mark.parametrize(
    ("window", "seconds"), [("2w", 14 * 86400.0), ("1h30m", 5400.0), ("5400", 5400.0)]
)
def test_the_window_is_a_duration(
    loaded: tuple[LiveServer, Any, Any], window: str, seconds: float
) -> None:
    """``window`` reads the one duration grammar (rollwise.durations), as plans do."""
    server, exposures, outcomes = loaded
    viewer = server.session(server.token("viewer"))
    params = {"metric": "conv", "kind": "count", "window": window}
    response = viewer.get(f"{server.url}{PATH}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["window_seconds"] == seconds
    expected = reduce_frame(
        exposures, outcomes, FLAG, "conv", env=ENV, kind="count", window_seconds=seconds
    )
    assert_same(ReductionResult.from_json(response.json()), expected)


def test_the_client_reads_the_same_result(loaded: tuple[LiveServer, Any, Any]) -> None:
    server, exposures, outcomes = loaded
    with ResultsClient(server.url, server.token("viewer")) as client:
        result = client.results(
            ENV, FLAG, "errors", kind="ratio", denominator_metric="requests", cohort="amount",
            bands=[0, 100.5, 500], window_seconds=1800,
        )  # fmt: skip
    expected = reduce_frame(
        exposures, outcomes, FLAG, "errors", env=ENV, kind="ratio",
        denominator_metric="requests", cohort="amount", bands=[0, 100.5, 500],
        window_seconds=1800,
    )  # fmt: skip
    assert result.spec == expected.spec
    assert_same(result, expected)
    assert result.multiple_variants > 0
    arms = result.arms("control", "candidate")
    assert arms["overall"][0].kind == "ratio"
    assert ("amount", "[100.5, 500)") in arms


def test_only_readers_may_ask(loaded: tuple[LiveServer, Any, Any]) -> None:
    server, _, _ = loaded
    url = f"{server.url}{PATH}?metric=conv&kind=binary"
    assert requests.get(url, timeout=10).status_code == 401
    sdk = server.session(server.token("sdk", env=ENV))
    forbidden = sdk.get(url, timeout=10)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"
    for role in ("viewer", "editor", "approver", "admin"):
        assert server.session(server.token(role)).get(url, timeout=30).status_code == 200, role
    with ResultsClient(server.url, "rw_not-a-token") as client, pytest.raises(AuthenticationError):
        client.results(ENV, FLAG, "conv", kind="binary")


def test_unknown_environment_or_flag_is_404(loaded: tuple[LiveServer, Any, Any]) -> None:
    server, _, _ = loaded
    viewer = server.session(server.token("viewer"))
    for path in (
        "/api/v1/envs/nowhere/flags/fraud-model/results",
        "/api/v1/envs/production/flags/no-such-flag/results",
    ):
        answer = viewer.get(f"{server.url}{path}", params={"metric": "conv"}, timeout=10)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "not_found"


BAD_QUERIES = [
    ({}, "metric"),
    ({"metric": "not a key"}, "metric"),
    ({"metric": "conv", "kind": "median"}, "kind"),
    ({"metric": "conv", "denominator": "requests"}, "denominator"),
    ({"metric": "conv", "bands": "0,100"}, "bands"),
    ({"metric": "conv", "cohort": "amount", "bands": "100,0"}, "increasing"),
    ({"metric": "conv", "cohort": "amount", "bands": "0,,1"}, "bands"),
    ({"metric": "conv", "cohort": "amount", "bands": "1e999"}, "finite"),
    ({"metric": "conv", "cohort": "amount", "bands": ",".join(["1"] * 65)}, "bands"),
    ({"metric": "conv", "cohort": 'a"b'}, "cohort"),
    ({"metric": "conv", "window": "fortnight"}, "window"),
    ({"metric": "conv", "window": "0s"}, "window"),
    ({"metric": "conv", "window": "101000d"}, "window"),
    ({"metric": "conv", "window": "30m1h"}, "window: '30m1h' has its units out of order"),
    ({"metric": "conv", "window": "2W"}, "window: '2W' is not a duration: write a number with"),
]


@pytest.mark.parametrize(("params", "word"), BAD_QUERIES)
def test_bad_parameters_are_400(
    loaded: tuple[LiveServer, Any, Any], params: dict[str, str], word: str
) -> None:
    server, _, _ = loaded
    answer = server.session().get(f"{server.url}{PATH}", params=params, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert word in answer.json()["detail"]


def test_the_catalogue_decides_the_kind_and_unknown_metrics_are_404(
    loaded: tuple[LiveServer, Any, Any],
) -> None:
    server, exposures, outcomes = loaded
    admin = server.session()
    plain = admin.get(f"{server.url}{PATH}", params={"metric": "conv"}, timeout=10)
    assert plain.status_code == 200, plain.text
    assert plain.json()["kind"] == "binary"  # a 0/1 metric read as binary, not as a mean
    expected = reduce_frame(exposures, outcomes, FLAG, "conv", env=ENV, kind="binary")
    assert_same(ReductionResult.from_json(plain.json()), expected)
    ratio = admin.get(f"{server.url}{PATH}", params={"metric": "errors"}, timeout=10).json()
    assert (ratio["kind"], ratio["denominator"]) == ("ratio", "requests")
    unknown = admin.get(f"{server.url}{PATH}", params={"metric": "clickd"}, timeout=10)
    assert unknown.status_code == 404
    assert "catalogue" in unknown.json()["detail"]


def test_a_flag_without_exposures_has_empty_results(tmp_path: Any) -> None:
    with live_server(tmp_path) as server:
        create_flag(server)
        with ResultsClient(server.url, server.admin_token) as client:
            result = client.results(ENV, FLAG, "conv", kind="count", cohort="country")
            with pytest.raises(ResultsError) as caught:
                client.results(ENV, "missing", "conv")
    assert (result.cells, result.multiple_variants, result.overall()) == ((), 0, {})
    assert caught.value.status == 404


def test_the_client_reports_an_unreachable_server() -> None:
    client = ResultsClient(f"http://127.0.0.1:{free_port()}", "rw_x", timeout=2)
    with client, pytest.raises(ServerUnavailableError):
        client.results(ENV, FLAG, "conv")


def test_the_openapi_path_item_describes_the_route() -> None:
    (path,) = OPENAPI_PATHS
    operation = OPENAPI_PATHS[path]["get"]
    assert path == "/api/v1/envs/{env}/flags/{key}/results"
    assert {"200", "400", "401", "403", "404"} == set(operation["responses"])
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"metric", "kind", "denominator", "cohort", "bands", "window"}


def test_the_openapi_path_item_is_valid_openapi() -> None:
    document = openapi_document()
    document["paths"].update(OPENAPI_PATHS)
    validate_openapi(document)

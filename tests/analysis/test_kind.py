"""A metric's kind is never assumed (issue 10, item 3).

An analysis call without ``kind`` once read a 0/1 metric as a mean: only the units with an
outcome counted, so the arm came out as n = 1,189, mean 1.0. Every local entry point that takes
a ``kind`` now requires it, with an error that lists the kinds and points at the server's metric
catalogue; only ``ResultsClient.results`` may leave it out, because the server then reads the
kind from its catalogue and says which kind it used in its answer.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import sqlite3
import types
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pandas as pd
import pytest
import requests

from rollwise.analysis.data import ResultsClient, reduce_database
from rollwise.analysis.reduce import (
    KINDS,
    ReductionResult,
    ReductionSpec,
    reduce_frame,
    reduce_sql,
)
from rollwise.analysis.report import MetricSpec
from rollwise.analysis.suffstats import Kind, SufficientStats, check_kind, requires_kind
from rollwise.errors import ConfigurationError, RollwiseError

FLAG, METRIC, ENV = "fraud-model", "fraud_caught", "production"
MODULES = [
    "compare", "data", "fairness", "fixed_horizon", "plots", "reduce", "report", "sequential",
    "srm", "suffstats",
]  # fmt: skip
SERVER_DECIDES = {"rollwise.analysis.data.ResultsClient.results"}
"""The one place a kind may be left out: the server's metric catalogue supplies it."""


def assert_clear(error: pytest.ExceptionInfo[BaseException], where: str) -> None:
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert isinstance(error.value, RollwiseError)
    assert message.startswith(f"kind: {where} needs the metric's kind")
    for kind in ("binary", "mean", "count", "ratio"):
        assert kind in message
    assert "metric catalogue" in message


# --- a call without kind fails, with a clear message -------------------------------------------


def _empty_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    exposures = pd.DataFrame(columns=["ts", "flag", "variant", "unit_type", "unit", "id"])
    outcomes = pd.DataFrame(columns=["ts", "metric", "unit_type", "unit", "value"])
    return exposures, outcomes


WITHOUT_KIND: dict[str, tuple[str, Callable[..., object]]] = {
    "ReductionSpec": (
        "ReductionSpec()",
        lambda **kw: ReductionSpec(flag=FLAG, metric=METRIC, **kw),
    ),
    "reduce_frame": (
        "reduce_frame()",
        lambda **kw: reduce_frame(*_empty_frames(), FLAG, METRIC, **kw),
    ),
    "reduce_sql": (
        "reduce_sql()",
        lambda **kw: reduce_sql(sqlite3.connect(":memory:"), FLAG, METRIC, env=ENV, **kw),
    ),
    "reduce_database": (  # the kind is checked before the database is even opened
        "reduce_database()",
        lambda **kw: reduce_database("sqlite:///no/such.db", FLAG, METRIC, env=ENV, **kw),
    ),
    "SufficientStats": (
        "SufficientStats()",
        lambda **kw: SufficientStats(n=10, total=3.0, m2=2.1, **kw),
    ),
    "SufficientStats.from_values": (
        "SufficientStats.from_values()",
        lambda **kw: SufficientStats.from_values([1.0, 0.0, 1.0], **kw),
    ),
    "MetricSpec": ("MetricSpec()", lambda **kw: MetricSpec(harm_direction="decrease", **kw)),
}


@pytest.mark.parametrize("name", WITHOUT_KIND)
@pytest.mark.parametrize("how", ["missing", "None"])
def test_a_call_without_kind_fails_clearly(name: str, how: str) -> None:
    where, call = WITHOUT_KIND[name]
    with pytest.raises(ConfigurationError) as error:
        call() if how == "missing" else call(kind=None)
    assert_clear(error, where)


@pytest.mark.parametrize("name", WITHOUT_KIND)
def test_an_unknown_kind_is_refused(name: str) -> None:
    _, call = WITHOUT_KIND[name]
    with pytest.raises(ConfigurationError, match=r"kind: must be one of binary, count, mean, rat"):
        call(kind="median")


def test_the_kind_may_be_positional_where_the_signature_allows_it() -> None:
    @requires_kind
    def read(values: list[float], kind: Kind) -> Kind:
        return kind

    assert read([1.0], "binary") == "binary"
    with pytest.raises(ConfigurationError, match="must be one of"):
        read([1.0], "proportion")  # type: ignore[arg-type]
    # SufficientStats takes keywords only: an old positional Σx² is never read as its M2
    with pytest.raises(TypeError):
        SufficientStats(10, 3.0, 3.0, "binary")  # type: ignore[call-arg]


def test_evolve_keeps_checking_the_kind() -> None:
    spec = ReductionSpec(flag=FLAG, metric=METRIC, kind="binary")
    assert attrs.evolve(spec, kind="count").kind == "count"
    with pytest.raises(ConfigurationError, match="ReductionSpec"):
        attrs.evolve(spec, kind=None)


def test_check_kind_passes_the_kinds_through() -> None:
    assert [check_kind(kind, "here") for kind in KINDS] == list(KINDS)


def _kind_defaults() -> Iterator[tuple[str, object]]:
    """Every public callable of ``rollwise.analysis`` whose ``kind`` parameter has a default."""
    for module_name in MODULES:
        module = importlib.import_module(f"rollwise.analysis.{module_name}")
        for name in module.__all__:
            value = getattr(module, name)
            targets: list[tuple[str, Any]] = []
            if inspect.isclass(value):
                targets.append((name, value))
                targets += [
                    (f"{name}.{attr}", getattr(value, attr))
                    for attr, member in vars(value).items()
                    if not attr.startswith("_")
                    and isinstance(member, classmethod | staticmethod | types.FunctionType)
                ]
            elif inspect.isfunction(value):
                targets.append((name, value))
            for qualified, target in targets:
                parameter = inspect.signature(target).parameters.get("kind")
                if parameter is not None and parameter.default is not inspect.Parameter.empty:
                    yield f"{module.__name__}.{qualified}", parameter.default


def test_no_public_signature_defaults_the_kind() -> None:
    defaults = dict(_kind_defaults())
    assert set(defaults) == SERVER_DECIDES
    assert defaults["rollwise.analysis.data.ResultsClient.results"] is None


# --- the 0/1 metric of the issue ---------------------------------------------------------------

CAUGHT = {"control": 1_189, "candidate": 1_260}
UNITS = 2_000  # per arm


def _caught_only() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 0/1 metric logged only when it happens: an outcome of 1.0 per caught unit, none else."""
    exposures, outcomes = [], []
    for variant, caught in CAUGHT.items():
        for i in range(UNITS):
            unit = f"{variant}-{i}"
            exposures.append(
                {"id": f"e-{unit}", "ts": "2026-11-02T10:00:00.000Z", "flag": FLAG,
                 "variant": variant, "unit_type": "user_id", "unit": unit, "env": ENV}
            )  # fmt: skip
            if i < caught:
                outcomes.append(
                    {"id": f"o-{unit}", "ts": "2026-11-02T11:00:00.000Z", "metric": METRIC,
                     "unit_type": "user_id", "unit": unit, "value": 1.0, "env": ENV}
                )  # fmt: skip
    return pd.DataFrame(exposures), pd.DataFrame(outcomes)


def test_a_zero_one_metric_read_as_binary_gives_a_proportion() -> None:
    exposures, outcomes = _caught_only()
    binary = reduce_frame(exposures, outcomes, FLAG, METRIC, env=ENV, kind="binary")
    conn = sqlite3.connect(":memory:")
    try:
        exposures.assign(attrs="{}").to_sql("exposures", conn, index=False)
        outcomes.to_sql("outcomes", conn, index=False)
        in_sql = reduce_sql(conn, FLAG, METRIC, env=ENV, kind="binary")
    finally:
        conn.close()
    assert in_sql.to_json() == binary.to_json()
    for variant, caught in CAUGHT.items():
        stats = binary.overall()[variant]
        assert (stats.kind, stats.n, stats.total) == ("binary", UNITS, float(caught))
        p = caught / UNITS
        assert math.isclose(stats.mean, p)
        assert math.isclose(stats.variance, p * (1 - p))

    # What the silent default gave: only the units with an outcome, all of them 1.
    as_mean = reduce_frame(exposures, outcomes, FLAG, METRIC, env=ENV, kind="mean")
    control = as_mean.overall()["control"]
    assert (control.n, control.mean, control.variance) == (1_189, 1.0, 0.0)


# --- the results endpoint: the server's catalogue decides when kind is left out ----------------


class FakeSession(requests.Session):
    """Answers every GET with ``body`` and records the query parameters; no network."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__()
        self.body = body
        self.params: list[dict[str, str]] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.params.append(dict(kwargs["params"]))
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(self.body).encode()
        return response


def _answer(kind: str | None) -> dict[str, Any]:
    body = ReductionResult(
        spec=ReductionSpec(flag=FLAG, metric=METRIC, kind=kind or "binary", env=ENV),
        cells=(),
        multiple_variants=0,
    ).to_json()
    if kind is None:
        del body["kind"]
    return body


def test_the_results_client_may_leave_the_kind_to_the_server() -> None:
    session = FakeSession(_answer("binary"))
    with ResultsClient("http://rollwise.test", "rw_viewer", session=session) as client:
        result = client.results(ENV, FLAG, METRIC)
    assert "kind" not in session.params[0]  # not sent: the server's metric catalogue decides
    assert result.spec.kind == "binary"  # read back from the answer


def test_the_results_client_sends_a_given_kind_for_the_server_to_check() -> None:
    session = FakeSession(_answer("count"))
    with ResultsClient("http://rollwise.test", "rw_viewer", session=session) as client:
        result = client.results(ENV, FLAG, METRIC, kind="count")
        # a ratio's denominator may come from the catalogue: the server, not the client, says
        client.results(ENV, FLAG, METRIC, kind="ratio")
        with pytest.raises(ConfigurationError, match="must be one of"):
            client.results(ENV, FLAG, METRIC, kind="median")  # type: ignore[arg-type]
    assert session.params == [
        {"metric": METRIC, "window": "2w", "kind": "count"},
        {"metric": METRIC, "window": "2w", "kind": "ratio"},
    ]
    assert result.spec.kind == "count"


def test_an_answer_without_a_kind_is_refused() -> None:
    session = FakeSession(_answer(None))
    with (
        ResultsClient("http://rollwise.test", "rw_viewer", session=session) as client,
        pytest.raises(ConfigurationError, match="kind: the results' JSON needs the metric's kind"),
    ):
        client.results(ENV, FLAG, METRIC)

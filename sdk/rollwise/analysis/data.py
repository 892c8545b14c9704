"""Getting events and statistics out of the flag server, for notebooks and the controller.

Three ways in, from the largest data to the smallest transfer:

* ``load_exposures`` / ``load_outcomes``: the events as pandas DataFrames, from a server
  database URL (``sqlite:///path/rollwise.db``, ``postgresql://...``) or any DB-API connection,
  filtered in SQL by environment, flag or metric and time (``reduce_frame`` reduces them).
* ``reduce_database``: the reduction run in the database (``reduce_sql``); only the
  statistics come back.
* ``ResultsClient``: the server's results endpoint
  (``GET /api/v1/envs/{env}/flags/{key}/results``), which runs the same reduction next to the
  data; a viewer token is enough.

The metric's ``kind`` is never assumed. The local reductions (``reduce_database``, and
``reduce_frame`` / ``reduce_sql``) require it: a database or a DataFrame has no metric
catalogue to ask. ``ResultsClient.results`` may leave it out: the request then carries no
``kind``, the server reads the metric's kind from its metric catalogue, and the result's
``spec.kind`` is the kind the server's answer states.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from rollwise.analysis.reduce import (
    DEFAULT_WINDOW_SECONDS,
    Dialect,
    ReductionResult,
    ReductionSpec,
    _check_bands,
    _optional_window,
    dialect_of,
    format_window,
    reduce_spec,
)
from rollwise.analysis.suffstats import Kind, check_kind, requires_kind
from rollwise.errors import (
    AuthenticationError,
    ConfigurationError,
    ServerUnavailableError,
    TransportError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXPOSURE_COLUMNS",
    "OUTCOME_COLUMNS",
    "ResultsClient",
    "ResultsError",
    "connect",
    "load_exposures",
    "load_outcomes",
    "reduce_database",
]

EXPOSURE_COLUMNS = (
    "id", "env", "ts", "flag", "flag_version", "variant", "rule", "unit_type", "unit", "attrs",
)  # fmt: skip
OUTCOME_COLUMNS = ("id", "env", "ts", "metric", "unit_type", "unit", "value", "attrs")

Moment = datetime | str


# --- databases ----------------------------------------------------------------------------


def connect(url: str) -> Any:
    """A DB-API connection for a server database URL.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a bare path open SQLite read-only
    (beside a running server: WAL lets readers in); ``postgresql://`` (or ``postgres://``)
    opens psycopg (``pip install 'psycopg[binary]'``).
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigurationError(
                "db: a postgresql:// URL needs psycopg: pip install 'psycopg[binary]'"
            ) from exc
        return psycopg.connect(url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
    elif "://" in url:
        raise ConfigurationError(f"db: unsupported URL scheme in {url!r}")
    else:
        path = url
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigurationError(f"db: no SQLite database at {str(file)!r}")
    uri = f"file:{quote(str(file.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


class _Opened:
    """A connection from a URL (closed on exit) or the caller's connection (left open)."""

    def __init__(self, source: str | Any) -> None:
        self.owned = isinstance(source, str)
        self.conn: Any = connect(source) if isinstance(source, str) else source

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.conn.close()


def _moment(value: Moment, dialect: Dialect) -> Any:
    """A bound for ``ts``: the server's text form for SQLite, a datetime for PostgreSQL."""
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if dialect == "postgresql":
        return moment
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _load(
    source: str | Any,
    table: str,
    columns: Sequence[str],
    filters: dict[str, str | Sequence[str] | None],
    since: Moment | None,
    until: Moment | None,
    parse_attrs: bool,
) -> pd.DataFrame:
    import pandas as pd

    with _Opened(source) as conn:
        dialect = dialect_of(conn)
        mark = "?" if dialect == "sqlite" else "%s"
        ts = "ts" if dialect == "sqlite" else "ts::timestamptz"
        where: list[str] = []
        params: list[Any] = []
        for column, wanted in filters.items():
            if wanted is None:
                continue
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            where.append(f"{column} IN ({', '.join(mark for _ in values)})" if values else "0=1")
            params += values
        if since is not None:
            where.append(f"{ts} >= {mark}")
            params.append(_moment(since, dialect))
        if until is not None:
            where.append(f"{ts} < {mark}")
            params.append(_moment(until, dialect))
        sql = f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 (constant identifiers)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {ts}, id"
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            records = cursor.fetchall()
        finally:
            cursor.close()
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    if parse_attrs:
        frame["attrs"] = [a if isinstance(a, dict) else json.loads(a) for a in frame["attrs"]]
    return frame


def load_exposures(
    source: str | Any,
    *,
    env: str | None = None,
    flag: str | Sequence[str] | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    parse_attrs: bool = True,
) -> pd.DataFrame:
    """Exposures as a DataFrame (columns ``EXPOSURE_COLUMNS``, ``ts`` a UTC datetime, ``attrs``
    a dict unless ``parse_attrs=False``), ``since <= ts < until``, in time order.

    ``source``: a database URL (see ``connect``; closed afterwards) or a DB-API connection
    (left open).
    """
    filters = {"env": env, "flag": flag}
    return _load(source, "exposures", EXPOSURE_COLUMNS, filters, since, until, parse_attrs)


def load_outcomes(
    source: str | Any,
    *,
    env: str | None = None,
    metric: str | Sequence[str] | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    parse_attrs: bool = True,
) -> pd.DataFrame:
    """Outcomes as a DataFrame (columns ``OUTCOME_COLUMNS``), as ``load_exposures``."""
    filters = {"env": env, "metric": metric}
    return _load(source, "outcomes", OUTCOME_COLUMNS, filters, since, until, parse_attrs)


@requires_kind
def reduce_database(
    source: str | Any,
    flag: str,
    metric: str,
    *,
    env: str | None,
    kind: Kind,
    cohort: str | None = None,
    bands: Sequence[float] | None = None,
    window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
    denominator_metric: str | None = None,
) -> ReductionResult:
    """``reduce_sql`` on a database URL or connection: the statistics, computed in the database
    (``kind`` required: a local reduction has no metric catalogue to ask)."""
    spec = ReductionSpec(
        flag=flag, metric=metric, kind=kind, env=env, cohort=cohort, bands=bands,
        window_seconds=window_seconds, denominator_metric=denominator_metric,
    )  # fmt: skip
    with _Opened(source) as conn:
        return reduce_spec(conn, spec)


# --- the results endpoint -----------------------------------------------------------------


class ResultsError(TransportError):
    """The server refused the request (4xx); ``status`` and ``problem`` say why."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        super().__init__(f"{detail} (HTTP {status})")


class ResultsClient:
    """A client of ``GET /api/v1/envs/{env}/flags/{key}/results`` (any role that may read)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ResultsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def results(
        self,
        env: str,
        flag: str,
        metric: str,
        *,
        kind: Kind | None = None,
        cohort: str | None = None,
        bands: Sequence[float] | None = None,
        window_seconds: float | None = DEFAULT_WINDOW_SECONDS,
        denominator_metric: str | None = None,
    ) -> ReductionResult:
        """The statistics per variant and cohort, reduced by the server in its database.

        ``kind=None`` sends no ``kind``: the server takes the metric's kind (and a ratio's
        denominator) from its metric catalogue, and the result's ``spec.kind`` is the kind its
        answer states. A given ``kind`` is sent for the server to check against its catalogue.
        A server older than the catalogue reads a request without ``kind`` as ``mean``: pass
        ``kind`` to such a server. Here only the values are checked (``kind``, ``bands``,
        ``window_seconds``); whether they fit the metric is the server's to say (HTTP 400,
        ``ResultsError``).
        """
        edges = _check_bands(bands)
        params = {"metric": metric, "window": format_window(_optional_window(window_seconds))}
        if kind is not None:
            params["kind"] = check_kind(kind, "ResultsClient.results()")
        if cohort is not None:
            params["cohort"] = cohort
        if edges is not None:
            params["bands"] = ",".join(repr(edge) for edge in edges)
        if denominator_metric is not None:
            params["denominator"] = denominator_metric
        path = f"/api/v1/envs/{quote(env, safe='')}/flags/{quote(flag, safe='')}/results"
        try:
            response = self.session.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServerUnavailableError(
                f"cannot reach the flag server at {self.url}: {exc}"
            ) from exc
        if response.status_code in (401, 403):
            raise AuthenticationError(f"the server refused the token (HTTP {response.status_code})")
        if response.status_code >= 500:
            raise ServerUnavailableError(f"the server failed (HTTP {response.status_code})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            problem = body if isinstance(body, dict) else {"detail": response.text[:200]}
            raise ResultsError(response.status_code, problem)
        return ReductionResult.from_json(body)

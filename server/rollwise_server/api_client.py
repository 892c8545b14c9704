"""A small client for the flag server's admin REST API (what the ``rollwise`` CLI talks through).

One pooled ``requests.Session`` per client. urllib3's ``Retry`` retries idempotent GETs only
(read errors and 502/503/504 answers, with exponential backoff); writes (POST, PUT, DELETE) are
sent once, so a kill or a token is never applied twice. A connection that could not be opened
at all is retried for every method: nothing was sent, so nothing can be applied twice.

Errors, under ``rollwise.errors.TransportError``::

    TransportError
    ├── ApiResponseError          the server answered 4xx/5xx (its problem+json document)
    └── ServerUnavailableError
        └── ServerUnreachableError    no answer: refused, timed out, DNS, TLS
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rollwise._version import __version__
from rollwise.errors import Problem, ServerUnavailableError, TransportError

__all__ = [
    "META_FIELDS",
    "ApiClient",
    "ApiResponseError",
    "ApplyOutcome",
    "Kind",
    "ServerUnreachableError",
    "strip_meta",
]

Kind = Literal["flag", "segment", "metric"]
ApplyOutcome = Literal["created", "updated", "unchanged"]
Json = dict[str, Any]

META_FIELDS = frozenset(
    {"key", "version", "archived", "updated_at", "updated_by", "reason", "stale"}
)
"""Fields the server adds to a flag, segment or metric when it answers (and ignores when it
reads)."""

_METRIC_DEFAULTS: Json = {"unit": "", "description": "", "default_tolerance": 0.0, "owner": ""}
"""What the server stores for a metric field a file leaves out (so that applying such a file
again finds it unchanged)."""


class ApiResponseError(TransportError):
    """The server answered with an error status; ``problem`` is its problem+json document."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem: Json = dict(problem)
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        self.detail = str(detail)
        raw = problem.get("problems")
        self.problems: tuple[Problem, ...] = tuple(
            Problem(str(p.get("path", "")), str(p.get("message", "")))
            for p in (raw if isinstance(raw, list) else [])
            if isinstance(p, dict)
        )
        current = problem.get("current_version")
        self.current_version: int | None = current if isinstance(current, int) else None
        super().__init__(f"{self.detail} (HTTP {status})")


class ServerUnreachableError(ServerUnavailableError):
    """No answer from the server at ``url``: connection refused, timeout, DNS or TLS failure."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the flag server at {url}: {reason}")


def _reason(exc: requests.RequestException) -> str:
    """A short, readable cause for a failed connection (not urllib3's nested repr)."""
    if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectionError):
        return "it did not answer in time"
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text or "WinError 10061" in text:
        return "connection refused"
    if isinstance(exc, requests.ConnectTimeout):
        return "the connection timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "the host name does not resolve"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _problem_of(response: requests.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = " ".join(response.text.split())[:200]
    detail = f"HTTP {response.status_code} {response.reason or ''}".strip()
    return {"status": response.status_code, "detail": f"{detail}: {text}" if text else detail}


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


def strip_meta(body: Mapping[str, Any]) -> Json:
    """A flag, segment or metric without the fields the server manages (for comparing
    configurations)."""
    return {k: v for k, v in body.items() if k not in META_FIELDS}


def _configuration(kind: Kind, body: Mapping[str, Any]) -> Json:
    """``strip_meta``, with a metric's left-out fields as the server fills them in."""
    data = strip_meta(body)
    if kind != "metric":
        return data
    filled = {**_METRIC_DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
    if filled.get("kind") == "ratio":
        filled.setdefault("numerator", body.get("key"))
    return filled


class ApiClient:
    """The admin API of one server, authenticated with one bearer token."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, retries: int = 3) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, application/problem+json",
                "User-Agent": f"rollwise-cli/{__version__}",
            }
        )
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=(502, 503, 504),
            backoff_factor=0.1,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **options: Any) -> Json:
        """Send one request to ``/api/v1/{path}`` (``params``, ``body``, ``headers``); the JSON
        answer, or an error raised."""
        url = f"{self.url}/api/v1/{path}"
        response = self._send(method, path, **options)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise ApiResponseError(
                response.status_code,
                {"detail": f"the answer to {method} {url} is not JSON; is this a rollwise server?"},
            ) from None
        if not isinstance(data, dict):
            raise ApiResponseError(
                response.status_code, {"detail": f"the answer to {method} {url} is not an object"}
            )
        return data

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: Json | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = f"{self.url}/api/v1/{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.session.request(
                method, url, params=query, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ServerUnreachableError(self.url, _reason(exc)) from None
        if response.status_code >= 400:
            raise ApiResponseError(response.status_code, _problem_of(response))
        return response

    def text(self, path: str, *, params: Mapping[str, str | int | None] | None = None) -> str:
        """``GET /api/v1/{path}`` answered with a document (Markdown, HTML): its text."""
        return self._send("GET", path, params=params).text

    # --- flags, segments and metrics ---

    def list_resources(self, env: str, kind: Kind, *, archived: bool = False) -> Json:
        params = {"archived": "true"} if archived else None
        return self.request("GET", _path("envs", env, f"{kind}s"), params=params)

    def get_resource(self, env: str, kind: Kind, key: str) -> Json:
        return self.request("GET", _path("envs", env, f"{kind}s", key))

    def create_resource(self, env: str, kind: Kind, body: Json, *, reason: str | None) -> Json:
        payload = {**body, "reason": reason} if reason is not None else body
        return self.request("POST", _path("envs", env, f"{kind}s"), body=payload)

    def replace_resource(
        self, env: str, kind: Kind, key: str, body: Json, *, version: int, reason: str | None
    ) -> Json:
        """PUT with ``If-Match: "version"``: a 409 if the server has moved past ``version``."""
        payload = {**body, "reason": reason} if reason is not None else body
        return self.request(
            "PUT",
            _path("envs", env, f"{kind}s", key),
            body=payload,
            headers={"If-Match": f'"{version}"'},
        )

    def archive_resource(self, env: str, kind: Kind, key: str, *, reason: str | None) -> Json:
        body = {"reason": reason} if reason is not None else None
        return self.request("DELETE", _path("envs", env, f"{kind}s", key), body=body)

    def history(
        self, env: str, kind: Kind, key: str, *, limit: int | None = None, before: int | None = None
    ) -> Json:
        """A page of versions: the newest ``limit`` below ``before``; ``next_before`` pages on."""
        params = {"limit": limit, "before": before}
        return self.request("GET", _path("envs", env, f"{kind}s", key, "history"), params=params)

    def apply(
        self, env: str, kind: Kind, body: Json, *, reason: str | None
    ) -> tuple[ApplyOutcome, Json]:
        """Create ``body`` if its key is new (or archived), else replace it.

        The replacement names the version it edits: the file's ``version`` if it has one (so a
        file written before someone else's change gets a 409), else the current version. A body
        equal to the current configuration changes nothing.
        """
        key = str(body["key"])
        try:
            current: Json | None = self.get_resource(env, kind, key)
        except ApiResponseError as exc:
            if exc.status != 404:  # an unknown environment: the POST says so
                raise
            current = None
        if current is None or current.get("archived"):
            return "created", self.create_resource(env, kind, body, reason=reason)
        if _configuration(kind, current) == _configuration(kind, body):
            return "unchanged", current
        version = body.get("version")
        if type(version) is not int:
            version = int(current["version"])
        return "updated", self.replace_resource(
            env, kind, key, body, version=version, reason=reason
        )

    # --- flag actions ---

    def kill(self, env: str, key: str, *, reason: str | None) -> Json:
        return self.request(
            "POST", _path("envs", env, "flags", key, "kill"), body={"reason": reason}
        )

    def revert(self, env: str, key: str, *, to_version: int, reason: str | None) -> Json:
        return self.request(
            "POST",
            _path("envs", env, "flags", key, "revert"),
            body={"to_version": to_version, "reason": reason},
        )

    def promote(self, env: str, key: str, *, to: str, reason: str | None) -> Json:
        return self.request(
            "POST", _path("envs", env, "flags", key, "promote"), body={"to": to, "reason": reason}
        )

    # --- rollouts and results ---

    def rollout(self, env: str, key: str) -> Json:
        return self.request("GET", _path("envs", env, "flags", key, "rollout"))

    def rollout_runs(self, env: str, key: str) -> Json:
        return self.request("GET", _path("envs", env, "flags", key, "rollouts"))

    def rollout_review(self, env: str, key: str, run: int, form: str) -> str:
        path = _path("envs", env, "flags", key, "rollouts", str(run), "review")
        return self.text(path, params={"format": form})

    def put_lessons(self, env: str, key: str, run: int, text: str, reason: str | None) -> Json:
        body: Json = {"text": text, **({"reason": reason} if reason is not None else {})}
        path = _path("envs", env, "flags", key, "rollouts", str(run), "lessons")
        return self.request("PUT", path, body=body)

    def put_rollout(
        self, env: str, key: str, plan: Json, *, reason: str | None, version: int | None = None
    ) -> Json:
        body = {**plan, **({"reason": reason} if reason is not None else {})}
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        return self.request(
            "PUT", _path("envs", env, "flags", key, "rollout"), body=body, headers=headers
        )

    def rollout_action(
        self, env: str, key: str, action: str, *, reason: str | None, winner: str | None = None
    ) -> Json:
        body = {"reason": reason, **({"winner": winner} if winner is not None else {})}
        return self.request("POST", _path("envs", env, "flags", key, "rollout", action), body=body)

    def results(self, env: str, key: str, **params: str | int | None) -> Json:
        return self.request("GET", _path("envs", env, "flags", key, "results"), params=params)

    def set_enabled(self, env: str, key: str, enabled: bool, *, reason: str | None) -> Json:
        """A new version with ``enabled`` set, written at the version read (409 if someone
        changed the flag meanwhile): ``False`` serves the off variant, ``True`` the rules."""
        current = self.get_resource(env, "flag", key)
        body = {**strip_meta(current), "key": key, "enabled": enabled}
        return self.replace_resource(
            env, "flag", key, body, version=int(current["version"]), reason=reason
        )

    # --- environments, tokens, audit ---

    def environments(self) -> Json:
        return self.request("GET", "envs")

    def environment(self, key: str) -> Json:
        return self.request("GET", _path("envs", key))

    def create_environment(
        self, key: str, *, protected: bool = False, reason: str | None = None
    ) -> Json:
        return self.request(
            "POST", "envs", body={"key": key, "protected": protected, "reason": reason}
        )

    def set_protected(self, key: str, *, protected: bool, reason: str) -> Json:
        """``PATCH /envs/{key}``: protect or unprotect an environment (admin; reason required)."""
        return self.request(
            "PATCH", _path("envs", key), body={"protected": protected, "reason": reason}
        )

    def tokens(self) -> Json:
        return self.request("GET", "tokens")

    def create_token(
        self,
        *,
        role: str,
        name: str,
        env: str | None,
        owner: str | None = None,
        envs: Sequence[str] | None = None,
        expires_at: str | None = None,
    ) -> Json:
        """``owner`` is the person the token belongs to (required but for ``sdk`` tokens);
        ``envs`` the environments its role applies to (``None``: all); ``expires_at`` an
        RFC 3339 time in the future (``None``: never)."""
        body: Json = {"role": role, "name": name, "env": env, "envs": envs,
                      "expires_at": expires_at}  # fmt: skip
        if owner is not None:
            body["owner"] = owner
        if envs is not None:
            body["envs"] = list(envs)
        return self.request("POST", "tokens", body=body)

    def revoke_token(self, token_id: str) -> Json:
        return self.request("DELETE", _path("tokens", token_id))

    def audit(self, **filters: str | int | None) -> Json:
        """``GET /audit`` with ``env``, ``flag`` (its rollout's entries too), ``segment``,
        ``metric``, ``actor`` (a token's owner), ``action``, ``since``, ``until``, ``limit`` and
        ``before`` (the ``next_before`` cursor of the previous page)."""
        return self.request("GET", "audit", params=filters)

    def webhook_deliveries(self, **filters: str | int | None) -> Json:
        """``GET /webhooks/deliveries`` with ``state``, ``event``, ``limit`` and ``before``."""
        return self.request("GET", "webhooks/deliveries", params=filters)

"""What every console handler works with: the signed-in session, the submitted form, the
environments the person may see, and what their role allows where (``Console``); and
``endpoint``, which turns a handler into a Starlette endpoint that signs in, checks CSRF and
renders API errors as pages."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote

import attrs
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from rollwise_server.api.common import read_raw, state, threaded
from rollwise_server.auth import PERMISSIONS, Permission, require
from rollwise_server.errors import ApiError, BadRequest, Forbidden, NotFound, PayloadTooLarge
from rollwise_server.ui import sessions
from rollwise_server.ui.calls import Answer, call
from rollwise_server.ui.render import html

__all__ = ["Console", "Form", "endpoint", "json_field", "whole"]

LARGEST = 2**53
"""The largest whole number a console field takes (a version, a count): JSON's safe integers,
far below what SQLite or the API would choke on."""


def whole(text: str | None) -> int | None:
    """A field's whole number (ASCII digits only, at most ``LARGEST``), else ``None``."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 16:
        return None
    value = int(text)
    return value if value <= LARGEST else None


def json_field(text: str, name: str) -> Any:
    """A JSON form field (the previewed flag), or 400 naming it."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest(f"{name}: not valid JSON, or nested too deeply") from None


class Form:
    """A submitted ``application/x-www-form-urlencoded`` form (fields may repeat)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._first: dict[str, str] = {}
        for name, value in pairs:
            self._first.setdefault(name, value)

    def get(self, name: str, default: str = "") -> str:
        return self._first.get(name, default)

    def has(self, name: str) -> bool:
        return name in self._first

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def names(self) -> list[str]:
        return list(self._first)


MAX_FIELDS = 20_000


async def read_form(request: Request) -> Form:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadRequest("the console's forms are sent as application/x-www-form-urlencoded")
    raw = await read_raw(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    try:
        return Form(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:
        raise PayloadTooLarge(f"a form has at most {MAX_FIELDS} fields") from None


@attrs.define
class Console:
    """One request to the console, signed in."""

    request: Request
    session: sessions.Session
    form: Form
    environments: list[dict[str, Any]]

    @property
    def principal(self) -> Any:
        return self.session.principal

    def can(self, permission: Permission, env: str | None = None) -> bool:
        """Whether the person may do this (the UI hides what they may not; the API decides)."""
        principal = self.session.principal
        if permission not in PERMISSIONS.get(principal.role, frozenset()):
            return False
        return env is None or principal.envs is None or env in principal.envs

    def require_write(self, env: str) -> None:
        """Pages that prepare a change (editors, previews) are for those who may make it:
        403 before any work, so that no one else can make the server compute them."""
        if not self.can("write", env):
            raise Forbidden(f"role {self.principal.role!r} may not change {env!r}")

    def can_everywhere(self, permission: Permission) -> bool:
        return self.can(permission) and self.session.principal.envs is None

    def environment(self, env: str) -> dict[str, Any]:
        """The environment ``env`` if the person may read it (403/404 otherwise)."""
        require(self.session.principal, "read", env)
        for environment in self.environments:
            if environment["key"] == env:
                return environment
        raise NotFound(f"environment {env!r} does not exist")

    async def api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return await call(self.request, self.session.principal, method, path, body, **kwargs)

    def page(self, name: str, status: int = 200, /, **context: Any) -> Response:
        return html(
            self.request,
            name,
            {"console": self, "csrf": self.session.csrf, "principal": self.principal, **context},
            status,
        )

    @property
    def store(self) -> Any:
        return state(self.request).store


Handler = Callable[[Console], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A console page: signed in (else to the sign-in page), the form's CSRF token checked on
    every POST, and an API error shown as a page with its status."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        session = await sessions.current(request)
        if session is None:
            target = request.url.path if request.method == "GET" else "/ui"
            expired = "&expired=1" if request.cookies.get(sessions.COOKIE) else ""
            return RedirectResponse(f"/ui/sign-in?next={quote(target)}{expired}", 303)
        form = Form([])
        console: Console | None = None
        try:
            if request.method == "POST":
                sessions.check_origin(request)
                form = await read_form(request)
                sessions.check_csrf(session, form.get("csrf"))
            environments = await threaded(state(request).store.environments)
            principal = session.principal
            visible = [
                e for e in environments if principal.envs is None or e["key"] in principal.envs
            ]
            console = Console(request, session, form, visible)
            return await handler(console)
        except ApiError as error:
            if console is None:
                console = Console(request, session, Form([]), [])
            response = console.page("error.html", error.status, error=error)
            response.headers.update(error.headers())  # Retry-After, for one
            return response

    return run

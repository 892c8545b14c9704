"""Sign-in, sign-out, the console's root and the environment switcher."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from rollwise.durations import format_duration
from rollwise_server.api.common import state
from rollwise_server.errors import ApiError
from rollwise_server.ui import sessions
from rollwise_server.ui.context import Console, endpoint, read_form
from rollwise_server.ui.render import html

__all__ = ["root", "sign_in", "sign_out", "switch"]


def _local(target: str) -> str:
    """Only a path of the console itself may be the page to go back to (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or "\\" in target:
        return "/ui"
    return parts.path


def _page(request: Request, status: int = 200, **context: object) -> Response:
    settings = state(request).settings
    values = {
        "error": "",
        "expired": False,
        "signed_out": False,
        "next": _local(request.query_params.get("next", "/ui")),
        "idle": format_duration(settings.console_idle_timeout),
        "lifetime": format_duration(settings.console_session_lifetime),
        **context,
    }
    return html(request, "signin.html", values, status)


async def sign_in(request: Request) -> Response:
    if request.method == "GET":
        if await sessions.current(request) is not None:
            return RedirectResponse(_local(request.query_params.get("next", "/ui")), 303)
        return _page(
            request,
            expired=request.query_params.get("expired") == "1",
            signed_out=request.query_params.get("out") == "1",
        )
    try:
        sessions.check_origin(request)
        form = await read_form(request)
        session_id, _ = await sessions.sign_in(request, form.get("token"))
    except ApiError as error:
        response = _page(request, error.status, error=error.detail)
        response.headers.update(error.headers())
        return response
    response = RedirectResponse(_local(form.get("next", "/ui")), 303)
    sessions.set_cookie(request, response, session_id)
    return response


async def sign_out(request: Request) -> Response:
    """Ends the session (the form carries the CSRF token: no page can sign you out)."""
    session = await sessions.current(request)
    if session is not None:
        sessions.check_origin(request)
        form = await read_form(request)
        sessions.check_csrf(session, form.get("csrf"))
        await sessions.end(request, session)
    response = RedirectResponse("/ui/sign-in?out=1", 303)
    sessions.clear_cookie(request, response)
    return response


@endpoint
async def root(console: Console) -> Response:
    if not console.environments:
        return RedirectResponse("/ui/audit", 303)
    keys = [e["key"] for e in console.environments]
    env = "production" if "production" in keys else keys[0]
    return RedirectResponse(f"/ui/envs/{env}/flags", 303)


@endpoint
async def switch(console: Console) -> Response:
    """The same page in another environment (or its flag list when the page is of a flag
    that may not exist there)."""
    params = console.request.query_params
    env = params.get("env", "")
    console.environment(env)
    parts = _local(params.get("from", "/ui")).split("/")
    if len(parts) >= 5 and parts[1:3] == ["ui", "envs"]:
        section = parts[4] if parts[4] in ("flags", "segments", "metrics") else "flags"
        return RedirectResponse(f"/ui/envs/{env}/{section}", 303)
    return RedirectResponse(f"/ui/envs/{env}/flags", 303)

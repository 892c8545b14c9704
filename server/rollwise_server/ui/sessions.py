"""Console sign-in and sessions.

Signing in posts an API token once; the server answers with a session cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS, ``Path=/ui``) whose id is 32 random bytes. The
session lives in the database (only the id's SHA-256 is stored), names its token by id and
carries a CSRF token that every state-changing form must send back. It ends at logout, after
``console_idle_timeout`` without a request, ``console_session_lifetime`` after sign-in, or as
soon as its token is revoked or expires. The API under ``/api/v1`` never reads the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

import attrs
from starlette.requests import Request
from starlette.responses import Response

from rollwise_server.api.common import authenticate, state, threaded
from rollwise_server.auth import Principal
from rollwise_server.errors import Forbidden, Unauthorized

__all__ = [
    "COOKIE",
    "Session",
    "check_csrf",
    "clear_cookie",
    "current",
    "end",
    "set_cookie",
    "sign_in",
]

COOKIE = "rollwise_session"
TOUCH_EVERY = 30.0
"""Seconds between writes of a session's ``last_seen``: the idle timeout is this precise."""
CONSOLE_ROLES = ("viewer", "editor", "approver", "admin")


@attrs.frozen
class Session:
    id_hash: str
    csrf: str
    principal: Principal


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def sign_in(request: Request, secret: str) -> tuple[str, Session]:
    """Check a token and open a session for it: ``(cookie value, session)``. Failed attempts
    count against the address like failed API authentications (``authenticate``)."""
    server = state(request)
    if not secret.strip():
        raise Unauthorized("enter your API token (it starts with rw_)")
    principal = await authenticate(request, f"Bearer {secret.strip()}")
    if principal.role not in CONSOLE_ROLES:
        raise Forbidden(f"a {principal.role!r} token cannot sign in to the console")
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    settings = server.settings
    await threaded(
        server.store.create_session,
        id_hash=_hash(session_id),
        token_id=principal.token_id,
        csrf=csrf,
        now=now,
        forget_before=now - max(settings.console_idle_timeout, 60.0),
    )
    return session_id, Session(_hash(session_id), csrf, principal)


async def current(request: Request, *, touch: bool = True) -> Session | None:
    """The request's live session, or ``None`` (no cookie, ended, timed out, token gone).
    ``touch=False`` checks without counting as use (a page left open is not a person)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    server = state(request)
    id_hash = _hash(session_id)
    record = await threaded(server.store.session, id_hash)
    if record is None:
        return None
    now = time.time()
    settings = server.settings
    principal = Principal.of(record.token)
    ended = (
        now - record.last_seen >= settings.console_idle_timeout
        or now - record.created >= settings.console_session_lifetime
        or record.token.revoked_at is not None
        or principal.expired(now)
    )
    if ended:
        await threaded(server.store.end_session, id_hash)
        return None
    if touch and now - record.last_seen >= min(TOUCH_EVERY, settings.console_idle_timeout / 4):
        await threaded(server.store.touch_session, id_hash, now)
    return Session(id_hash, record.csrf, principal)


async def end(request: Request, session: Session) -> None:
    await threaded(state(request).store.end_session, session.id_hash)


def check_origin(request: Request) -> None:
    """A form posted from another site is refused (403) before anything else, sign-in
    included (no one can sign you in as them): the browser's ``Sec-Fetch-Site`` or ``Origin``
    says where the form came from, when it says."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"a form from another site ({site}) cannot act on the console")
    origin = request.headers.get("origin")  # "null" under Referrer-Policy: no-referrer
    if origin not in (None, "null") and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden(f"a form from {origin} cannot act on the console")


def check_csrf(session: Session, submitted: object) -> None:
    """The form's CSRF token must be the session's (403 otherwise)."""
    if not isinstance(submitted, str) or not hmac.compare_digest(
        submitted.encode(), session.csrf.encode()
    ):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page and retry")


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )

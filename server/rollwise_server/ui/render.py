"""Pages are Jinja2 templates (``ui/templates``) rendered on the server, sent with a
Content-Security-Policy that allows no inline script or style: the console's JavaScript and CSS
are files under ``/ui/static``, and its charts are SVG drawn on the server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from rollwise_server.times import utc_moment

__all__ = ["CSP", "html", "templates"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def _when(value: Any) -> str:
    """A stored time (ISO text or Unix seconds) as ``2026-12-03 19:11:58 UTC``."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        moment: datetime | None = datetime.fromtimestamp(value, UTC)
    else:
        try:
            moment = utc_moment(str(value))
        except OverflowError:
            moment = None
    return str(value) if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _compact(value: Any, limit: int = 120) -> str:
    """A JSON value on one line, shortened for a table cell."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.4g}%" if whole else "\u2013"


templates = jinja2.Environment(
    loader=jinja2.PackageLoader("rollwise_server.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(when=_when, compact=_compact, percent=_percent, tojson_text=json.dumps)


def html(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render template ``name``; every page gets the request and sends the CSP."""
    body = templates.get_template(name).render(request=request, **context)
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
    return HTMLResponse(body, status_code=status, headers=headers)

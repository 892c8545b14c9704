"""The configured webhook URLs, and how they are named where people can read them.

A webhook URL is often a credential itself (a Slack hook's path, a token in the query, a user
and password), so it appears in no log line, API answer or database row: those name an endpoint
by its *label* (``scheme://host[:port]``) and its *id* (the first 16 hex digits of the URL's
SHA-256, which tells two endpoints on one host apart). Only the delivery worker holds the URLs,
read from the settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import attrs

from rollwise.errors import ConfigurationError

__all__ = ["Endpoint", "Endpoints", "redact", "scrub"]


def redact(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: never its user, password, path, query or fragment."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(an unreadable URL)"
    if not host:
        return "(an unreadable URL)"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def scrub(text: str, url: str) -> str:
    """``text`` (an error message) with the parts of ``url`` that ``redact`` drops cut out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    secrets = [url, parts.netloc, parts.path, parts.query, parts.fragment]
    secrets += [parts.username or "", parts.password or ""]
    for secret in sorted({s for s in secrets if s and s != "/"}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


@attrs.frozen
class Endpoint:
    """One configured URL; ``url`` stays out of ``repr`` (and so out of tracebacks)."""

    url: str = attrs.field(repr=False)
    id: str = attrs.field(init=False)
    label: str = attrs.field(init=False)

    @id.default
    def _id(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @label.default
    def _label(self) -> str:
        return redact(self.url)


@attrs.frozen
class Endpoints:
    """The endpoints of ``ROLLWISE_WEBHOOK_URLS``, in order, without repeats."""

    items: tuple[Endpoint, ...] = ()

    @classmethod
    def parse(cls, text: str | list[str] | tuple[str, ...]) -> Endpoints:
        """Comma-separated ``http(s)://host/...`` URLs (empty entries ignored); a bad entry is a
        ``ConfigurationError`` that names it by position and label, never in full."""
        entries = text.split(",") if isinstance(text, str) else list(text)
        found: dict[str, Endpoint] = {}
        for position, raw in enumerate(entries, start=1):
            url = raw.strip()
            if not url:
                continue
            problem = _problem(url)
            if problem:
                raise ConfigurationError(
                    f"ROLLWISE_WEBHOOK_URLS: entry {position} ({redact(url)}) {problem}"
                )
            endpoint = Endpoint(url)
            found.setdefault(endpoint.id, endpoint)
        return cls(tuple(found.values()))

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, endpoint_id: str) -> Endpoint | None:
        return next((e for e in self.items if e.id == endpoint_id), None)


def _problem(url: str) -> str | None:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "has spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None

"""Server settings, read from ``ROLLWISE_*`` environment variables (Starlette ``Config``).

Each setting is declared once in ``SETTINGS`` (name, type, default, help), so the CLI, the
documentation and ``tests/test_docs.py`` all read the same list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from starlette.config import Config

from rollwise.durations import parse_duration
from rollwise.errors import ConfigurationError
from rollwise_server.tracing import TRACING_MODES
from rollwise_server.webhooks.endpoints import Endpoints
from rollwise_server.webhooks.signing import parse_secret

__all__ = ["SETTINGS", "Duration", "Setting", "Settings"]


class Duration(float):
    """The type of a setting that is a span of time, in seconds: its variable takes a duration
    in the one grammar (``rollwise.durations``: ``30d``, ``1h30m``, ``500ms``) or a bare number
    of seconds (``15``)."""


@attrs.frozen
class Setting:
    name: str
    type: type
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        return f"ROLLWISE_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "db",
        str,
        "sqlite:///./rollwise.db",
        "Database URL: sqlite:///path/to/file.db or postgresql://user@host:5432/database",
    ),
    Setting("max_body_bytes", int, 10 * 1024 * 1024, "Largest request body accepted (413 above)"),
    Setting("max_batch_events", int, 10_000, "Most events in one ingestion batch (413 above)"),
    Setting(
        "event_max_age",
        Duration,
        30 * 86_400.0,
        "Events whose ts is older than this are refused, each with a reason (30d)",
    ),
    Setting(
        "event_max_future",
        Duration,
        86_400.0,
        "Events whose ts is further ahead than this (clock skew) are refused (1d)",
    ),
    Setting(
        "event_retention",
        Duration,
        3650 * 86_400.0,
        "PostgreSQL: months of events wholly older than this are dropped (10 years)",
    ),
    Setting("heartbeat_seconds", Duration, 15.0, "Interval of the SSE stream's heartbeat comments"),
    Setting(
        "token_cache_seconds", Duration, 5.0, "How long a token lookup is cached (revocation delay)"
    ),
    Setting(
        "revision_poll_seconds", Duration, 2.0, "How often revisions are re-read from the database"
    ),
    Setting("controller_interval", Duration, 10.0, "Time between the rollout controller's rounds"),
    Setting(
        "auth_failures_per_minute",
        int,
        30,
        "Failed authentications an address may make in a minute; after that its requests get "
        "429 until the minute is over",
    ),
    Setting(
        "max_streams_per_token",
        int,
        1000,
        "Open SDK streams per token and server process (429 above): one per app instance",
    ),
    Setting(
        "webhook_urls",
        str,
        "",
        "Comma-separated http(s) URLs that receive rollout decisions (Standard Webhooks)",
    ),
    Setting(
        "webhook_secret",
        str,
        "",
        "The whsec_ signing secret (base64 of 24 to 64 random bytes); required with webhook_urls",
    ),
    Setting(
        "access_log_sample",
        float,
        0.01,
        "Share of requests written to the access log (0 to 1); every 5xx is written",
    ),
    Setting(
        "tracing",
        str,
        "off",
        "off, or otlp: OpenTelemetry spans of requests and store calls (rollwise[otel])",
    ),
    Setting(
        "console_idle_timeout",
        Duration,
        1800.0,
        "A console session ends after this long without a request (30m)",
    ),
    Setting(
        "console_session_lifetime",
        Duration,
        43_200.0,
        "A console session ends this long after sign-in, however busy (12h)",
    ),
    Setting("webhook_max_attempts", int, 25, "Most delivery attempts of a webhook event to a URL"),
    Setting(
        "webhook_give_up_after",
        Duration,
        86_400.0,
        "Seconds after an event when its undelivered webhook is given up (marked failed)",
    ),
    Setting(
        "webhook_retry_seconds",
        Duration,
        5.0,
        "Wait before a webhook's first retry; it doubles per retry, up to an hour, with jitter",
    ),
)


def _positive(instance: Settings, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value <= 0:
        raise ConfigurationError(f"{attribute.name}: must be positive, not {value!r}")


def _share(instance: Settings, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not 0 <= value <= 1:
        raise ConfigurationError(f"{attribute.name}: must be between 0 and 1, not {value!r}")


def _tracing(instance: Settings, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in TRACING_MODES:
        raise ConfigurationError(
            f"ROLLWISE_TRACING: must be one of {', '.join(TRACING_MODES)}, not {value!r}"
        )


def _webhook_urls(instance: Settings, attribute: attrs.Attribute[Any], value: str) -> None:
    Endpoints.parse(value)  # raises ConfigurationError naming ROLLWISE_WEBHOOK_URLS


def _webhook_secret(instance: Settings, attribute: attrs.Attribute[Any], value: str) -> None:
    """Required with webhook URLs, and always a valid ``whsec_`` secret when given."""
    if value or Endpoints.parse(instance.webhook_urls):
        parse_secret(value)  # raises ConfigurationError naming ROLLWISE_WEBHOOK_SECRET


@attrs.frozen(kw_only=True)
class Settings:
    """The server's configuration."""

    db: str = "sqlite:///./rollwise.db"
    max_body_bytes: int = attrs.field(default=10 * 1024 * 1024, validator=_positive)
    max_batch_events: int = attrs.field(default=10_000, validator=_positive)
    event_max_age: float = attrs.field(default=30 * 86_400.0, validator=_positive)
    event_max_future: float = attrs.field(default=86_400.0, validator=_positive)
    event_retention: float = attrs.field(default=3650 * 86_400.0, validator=_positive)
    heartbeat_seconds: float = attrs.field(default=15.0, validator=_positive)
    token_cache_seconds: float = attrs.field(default=5.0, validator=_positive)
    revision_poll_seconds: float = attrs.field(default=2.0, validator=_positive)
    controller_interval: float = attrs.field(default=10.0, validator=_positive)
    auth_failures_per_minute: int = attrs.field(default=30, validator=_positive)
    max_streams_per_token: int = attrs.field(default=1000, validator=_positive)
    webhook_urls: str = attrs.field(default="", repr=False, validator=_webhook_urls)
    webhook_secret: str = attrs.field(default="", repr=False, validator=_webhook_secret)
    access_log_sample: float = attrs.field(default=0.01, validator=_share)
    tracing: str = attrs.field(default="off", validator=_tracing)
    console_idle_timeout: float = attrs.field(default=1800.0, validator=_positive)
    console_session_lifetime: float = attrs.field(default=43_200.0, validator=_positive)
    webhook_max_attempts: int = attrs.field(default=25, validator=_positive)
    webhook_give_up_after: float = attrs.field(default=86_400.0, validator=_positive)
    webhook_retry_seconds: float = attrs.field(default=5.0, validator=_positive)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``ROLLWISE_*`` variables; keyword ``overrides`` win."""
        config = (
            Config(environ=dict(environ), env_prefix="ROLLWISE_")
            if environ is not None
            else Config(env_prefix="ROLLWISE_")
        )
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.type is Duration:
                raw = config(setting.name.upper(), default=None)
                values[setting.name] = (
                    setting.default
                    if raw is None
                    else parse_duration(raw, setting.env_var, positive=True)
                )
                continue
            try:
                values[setting.name] = config(
                    setting.name.upper(), cast=setting.type, default=setting.default
                )
            except ValueError as exc:
                raise ConfigurationError(f"{setting.env_var}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

"""Server settings, read from ``ROLLWISE_*`` environment variables (Starlette ``Config``).

Each setting is declared once in ``SETTINGS`` (name, type, default, help), so the CLI, the
documentation and ``tests/test_docs.py`` all read the same list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from starlette.config import Config

from rollwise.errors import ConfigurationError

__all__ = ["SETTINGS", "Setting", "Settings"]


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
    Setting("db", str, "sqlite:///./rollwise.db", "Database URL: sqlite:///path/to/file.db"),
    Setting("max_body_bytes", int, 10 * 1024 * 1024, "Largest request body accepted (413 above)"),
    Setting("max_batch_events", int, 10_000, "Most events in one ingestion batch (413 above)"),
    Setting("heartbeat_seconds", float, 15.0, "Interval of the SSE stream's heartbeat comments"),
    Setting(
        "token_cache_seconds", float, 5.0, "How long a token lookup is cached (revocation delay)"
    ),
    Setting(
        "revision_poll_seconds", float, 2.0, "How often revisions are re-read from the database"
    ),
    Setting("controller_interval", float, 10.0, "Seconds between the rollout controller's rounds"),
    Setting("webhook_urls", str, "", "Comma-separated URLs notified of rollout decisions"),
    Setting("webhook_secret", str, "", "Shared secret of the webhooks' HMAC-SHA256 signature"),
)


def _positive(instance: Settings, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value <= 0:
        raise ConfigurationError(f"{attribute.name}: must be positive, not {value!r}")


@attrs.frozen(kw_only=True)
class Settings:
    """The server's configuration."""

    db: str = "sqlite:///./rollwise.db"
    max_body_bytes: int = attrs.field(default=10 * 1024 * 1024, validator=_positive)
    max_batch_events: int = attrs.field(default=10_000, validator=_positive)
    heartbeat_seconds: float = attrs.field(default=15.0, validator=_positive)
    token_cache_seconds: float = attrs.field(default=5.0, validator=_positive)
    revision_poll_seconds: float = attrs.field(default=2.0, validator=_positive)
    controller_interval: float = attrs.field(default=10.0, validator=_positive)
    webhook_urls: str = ""
    webhook_secret: str = attrs.field(default="", repr=False)

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
            try:
                values[setting.name] = config(
                    setting.name.upper(), cast=setting.type, default=setting.default
                )
            except ValueError as exc:
                raise ConfigurationError(f"{setting.env_var}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

"""``ClientConfig``: every option of the online client, validated in one frozen value.

``Client(url, sdk_key, **options)`` builds one; ``ClientConfig.from_env()`` reads the same
options from ``ROLLWISE_*`` environment variables (``ROLLWISE_URL``, ``ROLLWISE_SDK_KEY``,
``ROLLWISE_POLL_INTERVAL``, ...). A bad value raises ``ConfigurationError`` naming the option.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from rollwise.durations import parse_duration
from rollwise.errors import ConfigurationError

__all__ = ["ClientConfig", "default_cache_dir", "env_arguments"]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rollwise``, or ``~/.cache/rollwise``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rollwise"


def _url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"url: must be an http(s) URL of the flag server, not {value!r}")


def _urls(value: Any) -> Any:
    """A comma-separated string (``ROLLWISE_FALLBACK_URLS``) or a sequence, as a tuple."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return tuple(_strip_slash(v) for v in value)
    return value


def _each_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple):
        raise ConfigurationError(f"{attribute.name}: must be a list of URLs, not {value!r}")
    for index, url in enumerate(value):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"{attribute.name}[{index}]: must be an http(s) URL of a flag server, not {url!r}"
            )


def _non_empty(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{attribute.name}: must be a non-empty string")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{attribute.name}: must be a positive number, not {value!r}")


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{attribute.name}: must be a positive integer, not {value!r}")


def _boolean(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name}: must be true or false, not {value!r}")


def _needs_cache_dir(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value and instance.cache_dir is None:
        raise ConfigurationError(f"{attribute.name}: needs a cache_dir, where the spool lives")


def _strip_slash(value: str) -> str:
    return value.rstrip("/") if isinstance(value, str) else value


def _optional_path(value: Any) -> Path | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | os.PathLike):
        return Path(value).expanduser()
    raise ConfigurationError(f"expected a path, not {value!r}")


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Options of the online client. Times are in seconds."""

    url: str = attrs.field(validator=_url, converter=_strip_slash)
    sdk_key: str = attrs.field(validator=_non_empty, repr=lambda _: "'***'")
    fallback_urls: tuple[str, ...] = attrs.field(
        factory=tuple, converter=_urls, validator=_each_url
    )
    """Other replicas of the same server (one database), tried in turn when the current one
    cannot be reached; the client stays on the one that answers."""
    cache_dir: Path | None = attrs.field(factory=default_cache_dir, converter=_optional_path)
    """Where the last good rules and the event spool live; ``None`` keeps nothing on disk."""
    streaming: bool = attrs.field(default=True, validator=_boolean)
    """Follow the server-sent-events stream (else poll every ``poll_interval``)."""
    poll_interval: float = attrs.field(default=30.0, validator=_positive)
    connect_timeout: float = attrs.field(default=5.0, validator=_positive)
    read_timeout: float = attrs.field(default=10.0, validator=_positive)
    stream_timeout: float = attrs.field(default=60.0, validator=_positive)
    """A stream silent this long (no event, no heartbeat) is reconnected."""
    max_backoff: float = attrs.field(default=30.0, validator=_positive)
    """The longest wait between reconnection or resend attempts (jittered exponential); it also
    caps the reconnection time a server asks for with the stream's ``retry:`` field."""
    flush_interval: float = attrs.field(default=1.0, validator=_positive)
    batch_size: int = attrs.field(default=1000, validator=_positive_int)
    max_queue: int = attrs.field(default=100_000, validator=_positive_int)
    """Events of each kind held in memory; past half of it the sender spills to the spool, and
    an event that finds the queue full is dropped, counted and warned about."""
    spool_max_bytes: int = attrs.field(default=100 * 1024 * 1024, validator=_positive_int)
    spool_first: bool = attrs.field(default=False, validator=[_boolean, _needs_cache_dir])
    """Write events to the spool before sending them, so that a crash of the process loses only
    those recorded since the sender's last spool write (about ``flush_interval``'s worth)."""
    dedup_size: int = attrs.field(default=100_000, validator=_positive_int)
    dedup_ttl: float = attrs.field(default=3600.0, validator=_positive)
    send_events: bool = attrs.field(default=True, validator=_boolean)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    shadow_workers: int = attrs.field(default=2, validator=_positive_int)
    """Threads that run shadow candidates (``client.shadow``), off the request path."""
    shadow_max_pending: int = attrs.field(default=1000, validator=_positive_int)
    """Candidates allowed to wait for a shadow thread; past it a run is dropped and counted."""
    shadow_timeout: float = attrs.field(default=1.0, validator=_positive)
    """A candidate slower than this is logged as a timeout and its answer discarded."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Options from ``ROLLWISE_<OPTION>`` variables; keyword ``overrides`` win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            raw = environ.get(f"ROLLWISE_{field.name.upper()}")
            if raw is None:
                continue
            values[field.name] = _cast(field, raw)
        values.update(overrides)
        for required in ("url", "sdk_key"):
            if required not in values:
                raise ConfigurationError(
                    f"{required}: not set (pass it, or set ROLLWISE_{required.upper()})"
                )
        return cls(**values)


def _cast(field: attrs.Attribute[Any], raw: str) -> Any:
    name = f"ROLLWISE_{field.name.upper()}"
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return raw
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name}: must be true or false, not {raw!r}")
    if isinstance(default, float):  # every float option is a time: a duration (30s, 500ms)
        return parse_duration(raw, name, positive=True)
    try:
        if isinstance(default, int):
            return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: must be a number, not {raw!r}") from None
    return raw


def env_arguments(options: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(url, sdk_key, keyword arguments)`` of a client configured by ``ROLLWISE_*``
    variables: ``options`` that are ``ClientConfig`` fields override the variables, the others
    (``bootstrap``, ``on_exposure``...) pass through."""
    names = {a.name for a in attrs.fields(ClientConfig)}
    config = ClientConfig.from_env(**{k: v for k, v in options.items() if k in names})
    fields = {f: getattr(config, f) for f in names if f not in ("url", "sdk_key")}
    extra = {k: v for k, v in options.items() if k not in names}
    return config.url, config.sdk_key, {**fields, **extra}

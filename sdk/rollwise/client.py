"""The ``Client``: what application code calls on every request.

Evaluation (``variant()``, ``evaluate()``, the typed values) is ``evaluation.Evaluation``; this
module adds how the rules arrive (a fixed document, or the flag server followed by a background
thread), outcomes, and the lifecycle.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from rollwise.config import ClientConfig, env_arguments
from rollwise.errors import ConfigurationError
from rollwise.exposures import ExposureListener, ExposureLog
from rollwise.online import Online, setup_online
from rollwise.reporting import Reporting
from rollwise.rules import RulesDocument
from rollwise.transport import Transport

__all__ = ["Client", "RulesSource", "load_document"]

logger = logging.getLogger("rollwise")

RulesSource = RulesDocument | Mapping[str, Any] | str | bytes | os.PathLike[str]
"""A rules document, its parsed JSON, its JSON text, or the path of a JSON file."""

_MAX_REMEMBERED_KEYS = 1024


def _looks_like_json(text: str) -> bool:
    """JSON text rather than a path: empty, or starting (after a BOM or white space) with an
    object or an array (a document must be an object; an array gets the parser's message)."""
    return text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[", "")


def load_document(rules: RulesSource) -> RulesDocument:
    """Turn any ``RulesSource`` into a validated ``RulesDocument``."""
    if isinstance(rules, RulesDocument):
        return rules
    if isinstance(rules, Mapping):
        return RulesDocument.from_json(rules)
    if isinstance(rules, bytes):
        return RulesDocument.from_text(rules)
    if isinstance(rules, str) and _looks_like_json(rules):
        return RulesDocument.from_text(rules.lstrip("\ufeff \t\r\n"))
    if isinstance(rules, str | os.PathLike):
        try:
            return RulesDocument.from_file(Path(rules))
        except (OSError, ValueError) as exc:  # a missing file, or text that is no path
            shown = str(rules)[:80] + ("…" if len(str(rules)) > 80 else "")
            raise ConfigurationError(
                f"rules: {shown!r} is neither JSON text nor a readable file: {exc.strerror or exc}"
                if isinstance(exc, OSError)
                else f"rules: {shown!r} is neither JSON text nor a file path"
            ) from None
    raise ConfigurationError(
        f"rules: expected a mapping, JSON text or a file path, not {type(rules).__name__}"
    )


class Client(Reporting):
    """Evaluates flags in-process, with rules kept in sync with the flag server.

    ``Client(url, sdk_key, **options)`` is the online client (options: ``ClientConfig``);
    ``Client.offline(rules)`` evaluates a fixed document and never talks to a server.
    """

    _online: Online | None

    def __init__(
        self,
        url: str,
        sdk_key: str,
        *,
        bootstrap: RulesSource | None = None,
        on_exposure: ExposureListener | None = None,
        transport: Callable[[ClientConfig], Transport] | None = None,
        **options: Any,
    ) -> None:
        """Connect to the flag server at ``url`` with an SDK key of one environment.

        Never blocks: evaluation starts at once with the ``bootstrap`` document, or the last
        good rules from the disk cache, or flag defaults, while a background thread fetches the
        rules and follows the change stream. ``wait_until_ready(timeout)`` waits for the server.
        ``transport`` replaces the HTTP transport (a factory taking the config), for tests.
        """
        config = ClientConfig(url=url, sdk_key=sdk_key, **options)
        exposures = setup_online(self, config, on_exposure)
        online = Online(self, config, exposures, transport, self._predictions, self._shadow_pool)
        self._online = online
        online.serve_first(None if bootstrap is None else load_document(bootstrap))
        online.start()

    @classmethod
    def from_env(cls, **options: Any) -> Client:
        """An online client configured by ``ROLLWISE_*`` variables (``ROLLWISE_URL``, ...)."""
        url, sdk_key, arguments = env_arguments(options)
        return cls(url, sdk_key, **arguments)

    @classmethod
    def offline(
        cls,
        rules: RulesSource,
        *,
        on_exposure: ExposureListener | None = None,
        dedup_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """A client that evaluates a fixed rules document and never talks to a server.

        ``rules`` is a mapping, JSON text or a file path; an invalid document raises
        ``RulesParseError`` here, at start-up. Split assignments are exposures: they go to
        ``on_exposure`` (called synchronously) and to ``rollwise.testing.capture_exposures``.
        """
        if on_exposure is not None and not callable(on_exposure):
            raise ConfigurationError("on_exposure: must be callable")
        if isinstance(dedup_size, bool) or not isinstance(dedup_size, int) or dedup_size < 1:
            raise ConfigurationError("dedup_size: must be a positive integer")
        client = object.__new__(cls)
        client._online = None
        client._setup(ExposureLog(dedup_size=dedup_size, clock=clock), clock)
        if on_exposure is not None:
            client._exposures.add_listener(on_exposure)
        client._install(load_document(rules))
        return client

    # --- events ---

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for running shadow candidates, then send every queued and spooled event now;
        ``True`` if none is left after ``timeout``."""
        deadline = time.monotonic() + timeout
        idle = self._shadow_pool.wait(timeout)
        online = self._online
        if online is None:
            return idle
        return online.flush(max(0.0, deadline - time.monotonic())) and idle

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait until the server has sent the rules once (``True``); ``False`` when it refused
        the SDK key (at once: waiting is in vain) or ``timeout`` passed."""
        online = self._online
        if online is None:
            return True
        online.answered.wait(timeout)
        return online.ready.is_set()

    def close(self) -> None:
        """Let running shadow candidates finish, flush events (each up to ``close_timeout``),
        stop the threads; evaluation keeps working."""
        self._closed = True
        online = self._online
        self._shadow_pool.close(5.0 if online is None else online.config.close_timeout)
        if online is not None:
            online.close()
        self._changes.close(5.0 if online is None else online.config.close_timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<rollwise.Client revision={self._store.revision} flags={len(self._evaluators)}>"

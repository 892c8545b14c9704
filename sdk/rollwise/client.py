"""The ``Client``: what application code calls on every request.

``variant()`` and ``evaluate()`` are the hot path: one dictionary lookup and one call into the
flag's compiled closure. They never raise: any fault returns the flag's known-safe
``off_variant`` (or ``default`` for an unknown flag) with ``reason=ERROR``, and is logged once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from rollwise._types import Evaluator
from rollwise.assignment import Assignment, ErrorCode, Reason
from rollwise.compiler import CompiledRules, compile_rules
from rollwise.errors import ConfigurationError
from rollwise.exposures import ExposureListener, ExposureLog
from rollwise.rules import RulesDocument
from rollwise.store import RulesStore

__all__ = ["Client", "RulesSource", "load_document"]

logger = logging.getLogger("rollwise")

RulesSource = RulesDocument | Mapping[str, Any] | str | bytes | os.PathLike[str]
"""A rules document, its parsed JSON, its JSON text, or the path of a JSON file."""

_MAX_REMEMBERED_KEYS = 1024


def load_document(rules: RulesSource) -> RulesDocument:
    """Turn any ``RulesSource`` into a validated ``RulesDocument``."""
    if isinstance(rules, RulesDocument):
        return rules
    if isinstance(rules, Mapping):
        return RulesDocument.from_json(rules)
    if isinstance(rules, bytes):
        return RulesDocument.from_text(rules)
    if isinstance(rules, str) and rules.lstrip().startswith("{"):
        return RulesDocument.from_text(rules)
    if isinstance(rules, str | os.PathLike):
        return RulesDocument.from_file(Path(rules))
    raise ConfigurationError(
        f"rules: expected a mapping, JSON text or a file path, not {type(rules).__name__}"
    )


class Client:
    """Evaluates flags in-process. Build one per process with ``Client.offline(...)``."""

    _store: RulesStore
    _exposures: ExposureLog
    _clock: Callable[[], float]
    _evaluators: Mapping[str, Evaluator]
    _variants: Mapping[str, Callable[[Mapping[str, Any]], str | None]]

    def __init__(self) -> None:
        raise TypeError("use Client.offline(rules); the online client arrives with the server")

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
        client._setup(ExposureLog(dedup_size=dedup_size, clock=clock), clock)
        if on_exposure is not None:
            client._exposures.add_listener(on_exposure)
        client._install(load_document(rules))
        return client

    def _setup(self, exposures: ExposureLog, clock: Callable[[], float]) -> None:
        self._store = RulesStore()
        self._evaluators = {}
        self._variants = {}
        self._exposures = exposures
        self._clock = clock
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._closed = False

    def _install(self, document: RulesDocument) -> CompiledRules:
        """Compile ``document`` and swap it in atomically; log its warnings once."""
        recorder = self._exposures.recorder if self._exposures.active else None
        compiled = compile_rules(document, clock=self._clock, recorder=recorder)
        for message in compiled.warnings:
            self._report_once(message, message)
        self._store.swap(compiled)
        self._evaluators = compiled.fast
        self._variants = compiled.fast_variant
        return compiled

    def _report_once(self, key: str, message: str, *args: Any, exc: bool = False) -> None:
        with self._lock:
            if key in self._reported or len(self._reported) >= _MAX_REMEMBERED_KEYS:
                return
            self._reported.add(key)
        logger.warning(message, *args, exc_info=exc)

    # --- the hot path ---

    def variant(
        self, flag_key: str, context: Mapping[str, Any], /, *, default: str | None = None
    ) -> str | None:
        """The variant (model version) that ``flag_key`` serves to ``context``. Never raises."""
        try:
            return self._variants[flag_key](context)
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._slow(flag_key, context, default).variant

    def evaluate(
        self, flag_key: str, context: Mapping[str, Any], /, *, default: str | None = None
    ) -> Assignment:
        """The full ``Assignment`` (variant, payload, reason, rule, version). Never raises."""
        try:
            return self._evaluators[flag_key](context)
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._slow(flag_key, context, default)

    # --- the cold paths ---

    def _missing(self, flag_key: Any, default: str | None) -> Assignment:
        key = flag_key if isinstance(flag_key, str) else repr(flag_key)
        self._report_once(
            f"missing:{key}", "rollwise: unknown flag %r; serving the default %r", key, default
        )
        return Assignment(
            flag=key, variant=default, reason=Reason.ERROR, error_code=ErrorCode.FLAG_NOT_FOUND
        )

    def _slow(self, flag_key: Any, context: Any, default: str | None) -> Assignment:
        """The fast function raised, or the flag is unknown: decide with the reference evaluator."""
        try:
            compiled = self._store.compiled
            flag = compiled.flags.get(flag_key) if compiled is not None else None
        except Exception:  # noqa: BLE001 - an unhashable flag key
            flag = None
        if flag is None:
            return self._missing(flag_key, default)
        try:
            return flag.evaluate(context)
        except Exception:  # noqa: BLE001, S110 - reported once below, with the traceback
            pass
        if not isinstance(context, Mapping):
            self._report_once(
                f"context:{flag_key}",
                "rollwise: flag %r evaluated with a %s context; a mapping is required",
                flag_key,
                type(context).__name__,
            )
            return flag.invalid_context
        self._report_once(
            f"error:{flag_key}", "rollwise: evaluating flag %r failed", flag_key, exc=True
        )
        return flag.error

    # --- introspection and lifecycle ---

    @property
    def rules(self) -> RulesDocument | None:
        """The rules document in use."""
        compiled = self._store.compiled
        return None if compiled is None else compiled.document

    def flag_keys(self) -> list[str]:
        """The keys of every flag in the rules in use."""
        return sorted(self._evaluators)

    def add_exposure_listener(self, listener: ExposureListener) -> None:
        """Call ``listener(exposure)`` for every new exposure from now on."""
        self._exposures.add_listener(listener)
        self._recompile()

    def remove_exposure_listener(self, listener: ExposureListener) -> None:
        self._exposures.remove_listener(listener)
        self._recompile()

    def _recompile(self) -> None:
        """Compile the rules in use again: the exposure hook is left out when nothing listens."""
        compiled = self._store.compiled
        if compiled is not None:
            self._install(compiled.document)

    def stats(self) -> dict[str, Any]:
        """Counters: exposures recorded and de-duplicated, and the rules revision in use."""
        return {
            "revision": self._store.revision,
            "exposures_recorded": self._exposures.recorded,
            "exposures_duplicated": self._exposures.duplicates,
            "exposures_dropped": self._exposures.dropped,
        }

    def close(self) -> None:
        """Release the client's resources; evaluation keeps working on the last rules."""
        self._closed = True

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

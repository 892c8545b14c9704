"""The ``Client``: what application code calls on every request.

``variant()`` and ``evaluate()`` are the hot path: one dictionary lookup and one call into the
flag's compiled closure. They never raise: any fault returns the flag's known-safe
``off_variant`` (or ``default`` for an unknown flag, and for every flag while an online client has
no rules yet: ``PROVIDER_NOT_READY``) with ``reason=ERROR``, and is logged once.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs

from rollwise._types import Evaluator
from rollwise.assignment import Assignment, ErrorCode, Reason
from rollwise.changes import ChangeListener, FlagChanges, changes_between
from rollwise.compiler import CompiledRules, compile_rules
from rollwise.config import ClientConfig
from rollwise.errors import ConfigurationError
from rollwise.events import json_scalar
from rollwise.exposures import ExposureListener, ExposureLog
from rollwise.online import Online
from rollwise.rules import RulesDocument
from rollwise.shadow import PredictionListener, PredictionLog, ShadowPool, ShadowRun
from rollwise.status import ClientStatus
from rollwise.store import RulesStore
from rollwise.transport import Transport

__all__ = ["Client", "RulesSource", "load_document"]

logger = logging.getLogger("rollwise")

RulesSource = RulesDocument | Mapping[str, Any] | str | bytes | os.PathLike[str]
"""A rules document, its parsed JSON, its JSON text, or the path of a JSON file."""

_MAX_REMEMBERED_KEYS = 1024


def _key_text(flag_key: Any) -> str:
    """A flag key as logs and results show it, whatever was passed: never raises (an integer
    too long to print, an object whose ``repr`` fails) and never long."""
    if isinstance(flag_key, str):
        plain = str.__str__(flag_key)  # a subclass's own __str__ or __format__ is not called
        return plain if len(plain) <= 200 else plain[:200] + "…"
    try:
        text = repr(flag_key)
    except Exception:  # noqa: BLE001 - any object may be passed as a key
        text = f"<{type(flag_key).__name__}>"
    return text if len(text) <= 200 else text[:200] + "…"


_CONFIG_FIELDS = frozenset(a.name for a in attrs.fields(ClientConfig))


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


class Client:
    """Evaluates flags in-process, with rules kept in sync with the flag server.

    ``Client(url, sdk_key, **options)`` is the online client (options: ``ClientConfig``);
    ``Client.offline(rules)`` evaluates a fixed document and never talks to a server.
    """

    _store: RulesStore
    _exposures: ExposureLog
    _clock: Callable[[], float]
    _evaluators: Mapping[str, Evaluator]
    _variants: Mapping[str, Callable[[Mapping[str, Any]], str | None]]
    _online: Online | None
    evaluations: int
    """How many times ``variant``/``evaluate`` ran (approximate under concurrent threads)."""

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
        if on_exposure is not None and not callable(on_exposure):
            raise ConfigurationError("on_exposure: must be callable")
        exposures = ExposureLog(
            queue=config.send_events,
            dedup_size=config.dedup_size,
            dedup_ttl=config.dedup_ttl,
            max_queue=config.max_queue,
        )
        self._setup(exposures, time.time)
        self._predictions = PredictionLog(queue=config.send_events, max_queue=config.max_queue)
        self._shadow_pool = ShadowPool(
            workers=config.shadow_workers,
            max_pending=config.shadow_max_pending,
            timeout=config.shadow_timeout,
        )
        if on_exposure is not None:
            exposures.add_listener(on_exposure)
        online = Online(self, config, exposures, transport, self._predictions, self._shadow_pool)
        self._online = online
        start_document = None if bootstrap is None else load_document(bootstrap)
        cached = online.load_cache()
        if cached is not None and (
            start_document is None or cached.revision > start_document.revision
        ):
            self._install(cached)
            online.origin = "disk_cache"
        elif start_document is not None:
            self._install(start_document)
            online.origin = "bootstrap"
            online.received_at = time.time()
        online.start()

    @classmethod
    def from_env(cls, **options: Any) -> Client:
        """An online client configured by ``ROLLWISE_*`` variables (``ROLLWISE_URL``, ...)."""
        config = ClientConfig.from_env(**{k: v for k, v in options.items() if k in _CONFIG_FIELDS})
        extra = {k: v for k, v in options.items() if k not in _CONFIG_FIELDS}
        fields = {f: getattr(config, f) for f in _CONFIG_FIELDS if f not in ("url", "sdk_key")}
        return cls(config.url, config.sdk_key, **fields, **extra)

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

    def _setup(self, exposures: ExposureLog, clock: Callable[[], float]) -> None:
        self._store = RulesStore()
        self.evaluations = 0
        self._evaluators = {}
        self._variants = {}
        self._exposures = exposures
        self._clock = clock
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._closed = False
        self._predictions = PredictionLog(queue=False)
        self._shadow_pool = ShadowPool()
        self._changes = FlagChanges()

    def _install(self, document: RulesDocument) -> CompiledRules:
        """Compile ``document`` and swap it in atomically; log its warnings once."""
        recorder = self._exposures.recorder if self._exposures.active else None
        compiled = compile_rules(document, clock=self._clock, recorder=recorder)
        for message in compiled.warnings:
            self._report_once(message, message)
        old = self._store.swap(compiled)
        self._evaluators = compiled.fast
        self._variants = compiled.fast_variant
        # in use now: the listeners' thread hears of the changes (the caller never waits)
        self._changes.publish(changes_between(None if old is None else old.document, document))
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
        self.evaluations += 1
        try:
            return self._variants[flag_key](context)
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._slow(flag_key, context, default).variant

    def evaluate(
        self, flag_key: str, context: Mapping[str, Any], /, *, default: str | None = None
    ) -> Assignment:
        """The full ``Assignment`` (variant, payload, reason, rule, version). Never raises."""
        self.evaluations += 1
        try:
            return self._evaluators[flag_key](context)
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._slow(flag_key, context, default)

    def shadow(
        self, flag_key: str, context: Mapping[str, Any], /, *, default: str | None = None
    ) -> ShadowRun:
        """A shadow run: ``variant`` is served (as ``evaluate`` decides), and for the share of
        units the flag's ``shadow`` names, ``shadow_variant`` is computed beside it off the
        request path (``rollwise.shadow``). Never raises."""
        assignment = self.evaluate(flag_key, context, default=default)
        try:
            compiled = self._store.compiled
            entry = None if compiled is None else compiled.flags.get(flag_key)
            flag = None if entry is None or not isinstance(context, Mapping) else entry.flag
            return ShadowRun(
                assignment, flag, context, self._predictions, self._shadow_pool, self._clock
            )
        except Exception:  # noqa: BLE001 - a shadow run never breaks serving
            self._report_once(
                f"shadow:{_key_text(flag_key)}",
                "rollwise: the shadow run of flag %r failed; serving without it",
                _key_text(flag_key),
                exc=True,
            )
            return ShadowRun(
                assignment, None, {}, self._predictions, self._shadow_pool, self._clock
            )

    def add_prediction_listener(self, listener: PredictionListener) -> None:
        """Call ``listener(prediction)`` for every prediction of a shadow run from now on (on
        the thread that made it: the caller's for ``live``, a shadow worker's for the rest)."""
        self._predictions.add_listener(listener)

    def remove_prediction_listener(self, listener: PredictionListener) -> None:
        self._predictions.remove_listener(listener)

    # --- the cold paths ---

    def _missing(self, flag_key: Any, default: str | None) -> Assignment:
        key = _key_text(flag_key)
        online = self._online
        if online is not None and not online.ready.is_set():
            # the server, not yet heard from, may have the flag: say so, and say it again if
            # the flag is still unknown once the server has answered
            self._report_once(
                f"missing-early:{key}",
                "rollwise: unknown flag %r in %s; the server has not answered yet; serving the "
                "default %r",
                key, online.rules_in_use(), default,
            )  # fmt: skip
        else:
            self._report_once(
                f"missing:{key}", "rollwise: unknown flag %r; serving the default %r", key, default
            )
        return Assignment(
            flag=key, variant=default, reason=Reason.ERROR, error_code=ErrorCode.FLAG_NOT_FOUND
        )

    def _not_ready(self, flag_key: Any, default: str | None) -> Assignment:
        """An online client with no rules at all yet: not an unknown flag, a client not ready."""
        key = _key_text(flag_key)
        self._report_once(
            "not-ready",
            "rollwise: no rules yet (the flag server has not answered, and there is no disk "
            "cache or bootstrap document): %r and every other flag serve the caller's default "
            "until the rules arrive",
            key,
        )
        return Assignment(
            flag=key, variant=default, reason=Reason.ERROR, error_code=ErrorCode.PROVIDER_NOT_READY
        )

    def _slow(self, flag_key: Any, context: Any, default: str | None) -> Assignment:
        """The fast function raised, or the flag is unknown: decide with the reference evaluator."""
        compiled = self._store.compiled
        if compiled is None:
            return self._not_ready(flag_key, default)
        try:
            flag = compiled.flags.get(flag_key)
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

    def on_change(
        self, listener: ChangeListener, flags: Iterable[str] | None = None
    ) -> ChangeListener:
        """Call ``listener(change)`` (a ``FlagChange``: key, old and new version and flag) for
        each flag that changes from now on (only those in ``flags``, if given), once the new
        rules are in use. Listeners run in order on a thread of their own: a slow one delays
        the others, never sync or evaluation; one that raises is logged and counted
        (``stats()["change_listener_errors"]``). Returns ``listener``, so it decorates too."""
        self._changes.add(listener, flags)
        return listener

    def remove_change_listener(self, listener: ChangeListener) -> None:
        self._changes.remove(listener)

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

    # --- events ---

    def track(
        self,
        metric: str,
        unit: str | int,
        value: float | int | bool,
        *,
        unit_type: str = "user_id",
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an outcome: the measured result of the model for one unit. Never raises.

        ``value`` is a finite number (``True``/``False`` count as 1/0 for binary metrics).
        Outcomes are sent in the background like exposures; an offline client drops them.
        """
        try:
            if isinstance(value, bool):
                value = int(value)
            unit_text = (
                unit if isinstance(unit, str) else str(unit) if isinstance(unit, int) else ""
            )
            if (
                not isinstance(metric, str)
                or not metric
                or not unit_text
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                self._report_once(
                    f"track:{metric!r}",
                    "rollwise: track(%r, %r, %r) ignored: needs a metric name, a unit and a "
                    "finite number",
                    metric,
                    unit,
                    value,
                )
                return
            online = self._online
            if online is None or not online.config.send_events:
                return
            clean = None if attrs is None else {str(k): json_scalar(v) for k, v in attrs.items()}
            online.outcomes.put(metric, unit_type, unit_text, float(value), clean)
        except Exception:
            logger.exception("rollwise: track() failed")

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
        """Wait until the server has answered once (``True``), or ``timeout`` passes."""
        online = self._online
        return True if online is None else online.ready.wait(timeout)

    def status(self) -> ClientStatus:
        """Where the rules in use came from, how old they are, and the connection's state."""
        online = self._online
        revision = self._store.revision
        if online is None:
            return ClientStatus(
                revision=revision, origin="offline", age_seconds=None,
                connection="closed" if self._closed else "offline", ready=True,
                last_sync=None, last_error=None,
            )  # fmt: skip
        state = online.sync.state
        received = online.received_at
        return ClientStatus(
            revision=revision,
            origin=online.origin,
            age_seconds=None if received is None else max(0.0, time.time() - received),
            connection="closed" if online.closed else state.connection,
            ready=online.ready.is_set(),
            last_sync=state.last_sync,
            last_error=state.last_error,
        )

    def stats(self) -> dict[str, Any]:
        """Counters: evaluations, exposures and outcomes at each step, the last sync and error."""
        log = self._exposures
        out: dict[str, Any] = {
            "revision": self._store.revision,
            "evaluations": self.evaluations,
            "exposures_recorded": log.recorded,
            "exposures_duplicated": log.duplicates,
            "exposures_dropped": log.dropped,
            "shadow_runs": self._shadow_pool.runs,
            "shadow_errors": self._shadow_pool.errors,
            "shadow_timeouts": self._shadow_pool.timeouts,
            "shadow_dropped": self._shadow_pool.dropped,
            "predictions_recorded": self._predictions.recorded,
            "change_listener_calls": self._changes.delivered,
            "change_listener_errors": self._changes.errors,
            "change_listener_dropped": self._changes.dropped,
        }
        online = self._online
        if online is not None:
            sender = online.sender.stats
            spool = online.spool
            out.update(
                exposures_queued=len(log),
                exposures_sent=sender.sent["exposures"],
                exposures_rejected=sender.rejected["exposures"],
                outcomes_tracked=online.outcomes.tracked,
                outcomes_queued=len(online.outcomes),
                outcomes_sent=sender.sent["outcomes"],
                outcomes_rejected=sender.rejected["outcomes"],
                outcomes_dropped=online.outcomes.dropped,
                predictions_queued=len(self._predictions),
                predictions_sent=sender.sent["predictions"],
                predictions_rejected=sender.rejected["predictions"],
                predictions_dropped=self._predictions.dropped,
                events_duplicates_at_server=sum(sender.duplicates.values()),
                events_spooled=sender.spooled,
                events_replayed=sender.replayed,
                events_in_spool=0 if spool is None else len(spool),
                events_dropped_at_spool_cap=0 if spool is None else spool.dropped,
                events_dropped_unspoolable=online.sender.dropped_unspoolable,
                last_sync=online.sync.state.last_sync,
                last_error=online.sync.state.last_error or sender.last_error,
            )
        return out

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

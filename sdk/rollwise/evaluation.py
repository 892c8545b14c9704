"""The rules in use and evaluation against them: what ``Client`` and ``AsyncClient`` share.

``variant()`` and ``evaluate()`` are the hot path: one dictionary lookup and one call into the
flag's compiled closure. They never raise: any fault returns the flag's known-safe
``off_variant`` (or ``default`` for an unknown flag, and for every flag while an online client has
no rules yet: ``PROVIDER_NOT_READY``) with ``reason=ERROR``, and is logged once. How the rules
arrive (a fixed document, a thread, an asyncio task) is the subclass's business.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rollwise._types import Evaluator
from rollwise.assignment import Assignment, ErrorCode, Reason
from rollwise.changes import ChangeListener, FlagChanges, changes_between
from rollwise.compiler import CompiledRules, compile_rules
from rollwise.exposures import ExposureListener, ExposureLog
from rollwise.rules import Flag, FlagType, RulesDocument
from rollwise.shadow import PredictionListener, PredictionLog, ShadowPool, ShadowRun
from rollwise.store import RulesStore

__all__ = ["Evaluation", "key_text"]

logger = logging.getLogger("rollwise")

_MAX_REMEMBERED_KEYS = 1024

ValueFn = Callable[[Mapping[str, Any]], Any]


def key_text(flag_key: Any) -> str:
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


_FITS: Mapping[str, Callable[[Any], bool]] = {
    FlagType.STRING: lambda v: isinstance(v, str),
    FlagType.BOOLEAN: lambda v: isinstance(v, bool),
    FlagType.INTEGER: lambda v: isinstance(v, int) and not isinstance(v, bool),
    FlagType.FLOAT: lambda v: isinstance(v, float),
    FlagType.JSON: lambda v: isinstance(v, Mapping | tuple),
}


def _fits(value: Any, flag_type: FlagType) -> bool:
    """Whether ``value`` is a value of a ``flag_type`` flag (as the parser built it)."""
    return _FITS[flag_type](value)


class Evaluation:
    """The compiled rules in use, the evaluation methods and the listeners of a client."""

    _store: RulesStore
    _exposures: ExposureLog
    _clock: Callable[[], float]
    _evaluators: Mapping[str, Evaluator]
    _variants: Mapping[str, Callable[[Mapping[str, Any]], str | None]]
    evaluations: int
    """How many times ``variant``/``evaluate`` ran (approximate under concurrent threads)."""

    def _awaiting_server(self) -> str | None:
        """While an online client has not heard from its server: which rules it uses (for the
        unknown-flag message); ``None`` once it has, and always for an offline client."""
        return None

    def _setup(self, exposures: ExposureLog, clock: Callable[[], float]) -> None:
        self._store = RulesStore()
        self.evaluations = 0
        self._evaluators = {}
        self._variants = {}
        self._set_values({})
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
        self._set_values(compiled.fast_value)
        # in use now: the listeners' thread hears of the changes (the caller never waits)
        self._changes.publish(changes_between(None if old is None else old.document, document))
        return compiled

    def _set_values(self, by_type: Mapping[FlagType, Mapping[str, ValueFn]]) -> None:
        """One attribute per type, so that a typed accessor costs what ``variant()`` costs
        (``_by_type`` holds the same maps, for ``evaluate_value``)."""
        self._by_type = {kind: by_type.get(kind, {}) for kind in FlagType}
        self._strings = by_type.get(FlagType.STRING, {})
        self._booleans = by_type.get(FlagType.BOOLEAN, {})
        self._integers = by_type.get(FlagType.INTEGER, {})
        self._floats = by_type.get(FlagType.FLOAT, {})
        self._jsons = by_type.get(FlagType.JSON, {})

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

    # --- typed values: the variant's ``value``, or ``default`` (never raises) ---

    def bool_value(self, flag_key: str, context: Mapping[str, Any], default: bool, /) -> bool:
        """The value of boolean flag ``flag_key`` for ``context``; ``default`` if the flag is
        unknown or of another type (``TYPE_MISMATCH``) or there are no rules yet."""
        self.evaluations += 1
        try:
            return self._booleans[flag_key](context)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._typed(flag_key, context, default, FlagType.BOOLEAN).value  # type: ignore[no-any-return]

    def string_value(self, flag_key: str, context: Mapping[str, Any], default: str, /) -> str:
        """The value of string flag ``flag_key`` (its variant's key unless the variant gives
        a ``value``); ``default`` as ``bool_value`` says."""
        self.evaluations += 1
        try:
            return self._strings[flag_key](context)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._typed(flag_key, context, default, FlagType.STRING).value  # type: ignore[no-any-return]

    def int_value(self, flag_key: str, context: Mapping[str, Any], default: int, /) -> int:
        """The value of integer flag ``flag_key``; ``default`` as ``bool_value`` says."""
        self.evaluations += 1
        try:
            return self._integers[flag_key](context)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._typed(flag_key, context, default, FlagType.INTEGER).value  # type: ignore[no-any-return]

    def float_value(self, flag_key: str, context: Mapping[str, Any], default: float, /) -> float:
        """The value of float flag ``flag_key``; ``default`` as ``bool_value`` says (an integer
        flag is another type: ``int_value`` reads it)."""
        self.evaluations += 1
        try:
            return self._floats[flag_key](context)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._typed(flag_key, context, default, FlagType.FLOAT).value  # type: ignore[no-any-return]

    def json_value(self, flag_key: str, context: Mapping[str, Any], default: Any, /) -> Any:
        """The value of JSON flag ``flag_key``: a read-only view (mappings and tuples, built
        once per document; ``rollwise.thaw`` copies it into dicts and lists); ``default`` as
        ``bool_value`` says."""
        self.evaluations += 1
        try:
            return self._jsons[flag_key](context)
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            return self._typed(flag_key, context, default, FlagType.JSON).value

    def evaluate_value(
        self, flag_key: str, context: Mapping[str, Any], default: Any, flag_type: FlagType, /
    ) -> Assignment:
        """The ``Assignment`` behind a typed accessor: ``value`` is the variant's, or
        ``default`` with ``reason=ERROR`` and the error code (``TYPE_MISMATCH`` when the flag is
        not a ``flag_type`` flag; nothing is then evaluated or exposed). Never raises."""
        try:
            typed = flag_key in self._by_type[flag_type]
        except Exception:  # noqa: BLE001 - an unhashable key, an unknown type: the cold path
            typed = False
        if typed:
            assignment = self.evaluate(flag_key, context)
            if assignment.is_error or _fits(assignment.value, flag_type):
                return assignment
            # new rules came in between, with the key retyped: answer as for another type
        self.evaluations += 1
        return self._typed(flag_key, context, default, flag_type)

    def _typed(self, flag_key: Any, context: Any, default: Any, flag_type: Any) -> Assignment:
        """The cold path of a typed accessor; never raises."""
        try:
            return self._slow(flag_key, context, default, FlagType(flag_type))
        except Exception:  # noqa: BLE001 - the evaluation path never raises
            key = key_text(flag_key)
            self._report_once(
                f"typed:{key}", "rollwise: typed evaluation of %r failed", key, exc=True
            )
            return Assignment(
                flag=key, variant=None, reason=Reason.ERROR, error_code=ErrorCode.GENERAL,
                value=default,
            )  # fmt: skip

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
                f"shadow:{key_text(flag_key)}",
                "rollwise: the shadow run of flag %r failed; serving without it",
                key_text(flag_key),
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

    def _missing(self, flag_key: Any, default: Any, typed: bool) -> Assignment:
        key = key_text(flag_key)
        waiting = self._awaiting_server()
        if waiting is not None:
            # the server, not yet heard from, may have the flag: say so, and say it again if
            # the flag is still unknown once the server has answered
            self._report_once(
                f"missing-early:{key}",
                "rollwise: unknown flag %r in %s; the server has not answered yet; serving the "
                "default %r",
                key, waiting, default,
            )  # fmt: skip
        else:
            self._report_once(
                f"missing:{key}", "rollwise: unknown flag %r; serving the default %r", key, default
            )
        return Assignment(
            flag=key, variant=None if typed else default, reason=Reason.ERROR,
            error_code=ErrorCode.FLAG_NOT_FOUND, value=default,
        )  # fmt: skip

    def _not_ready(self, flag_key: Any, default: Any, typed: bool) -> Assignment:
        """An online client with no rules at all yet: not an unknown flag, a client not ready."""
        key = key_text(flag_key)
        self._report_once(
            "not-ready",
            "rollwise: no rules yet (the flag server has not answered, and there is no disk "
            "cache or bootstrap document): %r and every other flag serve the caller's default "
            "until the rules arrive",
            key,
        )
        return Assignment(
            flag=key, variant=None if typed else default, reason=Reason.ERROR,
            error_code=ErrorCode.PROVIDER_NOT_READY, value=default,
        )  # fmt: skip

    def _mismatch(self, flag: Flag, default: Any, flag_type: FlagType) -> Assignment:
        self._report_once(
            f"type:{flag.key}:{flag_type}",
            "rollwise: flag %r is of type %s, read as %s; serving the default %r",
            flag.key, flag.type.value, flag_type.value, default,
        )  # fmt: skip
        return Assignment(
            flag=flag.key, variant=None, reason=Reason.ERROR, flag_version=flag.version,
            error_code=ErrorCode.TYPE_MISMATCH, value=default,
        )  # fmt: skip

    def _slow(
        self, flag_key: Any, context: Any, default: Any, flag_type: FlagType | None = None
    ) -> Assignment:
        """The fast function raised, or the flag is unknown (or, with ``flag_type``, of another
        type): decide with the reference evaluator."""
        typed = flag_type is not None
        compiled = self._store.compiled
        if compiled is None:
            return self._not_ready(flag_key, default, typed)
        try:
            flag = compiled.flags.get(flag_key)
        except Exception:  # noqa: BLE001 - an unhashable flag key
            flag = None
        if flag is None:
            return self._missing(flag_key, default, typed)
        if flag_type is not None and flag.flag.type is not flag_type:
            return self._mismatch(flag.flag, default, flag_type)
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

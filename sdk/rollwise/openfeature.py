"""``RollwiseProvider``: rollwise flags through the OpenFeature API (an optional extra).

Application code asks OpenFeature's client; the provider asks a ``rollwise.Client`` and maps the
``Assignment`` to OpenFeature's vocabulary:

- Each ``get_<type>_*`` reads flags of its type (``docs/spec/rules.md``, Flag types):
  ``get_string_*`` a string flag's value (the variant key, the model version, unless the
  variant gives a value), ``get_boolean_*``, ``get_integer_*``, ``get_float_*`` their flags'
  values, ``get_object_*`` a json flag's value, or a string flag's payload, as plain dicts and
  lists; a flag of another type resolves to the default with ``TYPE_MISMATCH``.
- ``reason``, ``error_code`` and ``variant`` come from the ``Assignment``; ``flag_metadata``
  holds ``flag_version`` and ``rule`` when they are known.
- On any error OpenFeature returns the caller's default (its rule, not rollwise's
  ``off_variant``), with ``reason=ERROR`` and no ``variant``.
- ``client.track(name, context, details)`` records a rollwise outcome for the context's unit.
- ``initialize`` waits until the client is ready (``ready_timeout``), so
  ``api.set_provider_and_wait`` returns with rules in use; events follow the client:
  ``PROVIDER_CONFIGURATION_CHANGED`` with the changed flag keys (``client.on_change``),
  ``PROVIDER_STALE`` when the link to the server is lost (the rules in use stay), ``PROVIDER_READY``
  when it is back, ``PROVIDER_ERROR`` when the server refuses the SDK key.

Nothing here raises into the application. ``import rollwise`` does not import this module, and
importing it without openfeature-sdk installed raises an ``ImportError`` naming the extra.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEventDetails
    from openfeature.exception import ErrorCode as OFErrorCode
    from openfeature.exception import ProviderFatalError, ProviderNotReadyError
    from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
    from openfeature.flag_evaluation import Reason as OFReason
    from openfeature.provider import AbstractProvider, Metadata
    from openfeature.track import TrackingEventDetails
except ImportError as error:  # pragma: no cover - tested in a subprocess
    raise ImportError(
        "rollwise.openfeature needs the openfeature-sdk package: "
        "pip install 'rollwise[openfeature]'"
    ) from error

from rollwise._freeze import thaw
from rollwise.assignment import Assignment, ErrorCode, Reason
from rollwise.changes import FlagChange
from rollwise.client import Client
from rollwise.rules import FlagType

__all__ = ["RollwiseProvider"]

logger = logging.getLogger("rollwise")

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]

_REASONS: Mapping[Reason, OFReason] = {
    Reason.TARGETING_MATCH: OFReason.TARGETING_MATCH,
    Reason.SPLIT: OFReason.SPLIT,
    Reason.DEFAULT: OFReason.DEFAULT,
    Reason.DISABLED: OFReason.DISABLED,
    Reason.ERROR: OFReason.ERROR,
    Reason.STALE: OFReason.STALE,
}

_ERROR_CODES: Mapping[ErrorCode, OFErrorCode] = {
    ErrorCode.FLAG_NOT_FOUND: OFErrorCode.FLAG_NOT_FOUND,
    ErrorCode.INVALID_CONTEXT: OFErrorCode.INVALID_CONTEXT,
    ErrorCode.PROVIDER_NOT_READY: OFErrorCode.PROVIDER_NOT_READY,
    ErrorCode.PARSE_ERROR: OFErrorCode.PARSE_ERROR,
    ErrorCode.TYPE_MISMATCH: OFErrorCode.TYPE_MISMATCH,
    ErrorCode.GENERAL: OFErrorCode.GENERAL,
}

_ERROR_MESSAGES: Mapping[OFErrorCode, str] = {
    OFErrorCode.FLAG_NOT_FOUND: "rollwise has no flag {flag!r}",
    OFErrorCode.INVALID_CONTEXT: "rollwise could not use the evaluation context for flag {flag!r}",
    OFErrorCode.PROVIDER_NOT_READY: (
        "the rollwise client has no rules yet (it has not reached the server and has no "
        "disk cache or bootstrap document)"
    ),
    OFErrorCode.PARSE_ERROR: "rollwise could not parse the rules of flag {flag!r}",
    OFErrorCode.TYPE_MISMATCH: "flag {flag!r} is of another type than the one asked for",
    OFErrorCode.GENERAL: "evaluating flag {flag!r} failed; see the 'rollwise' log",
}

_WRONG_TYPE = (
    "rollwise flag {flag!r} is of type {kind}, not {asked}: read it with the accessor of its "
    "type (docs/spec/rules.md, Flag types)"
)


class RollwiseProvider(AbstractProvider):
    """An OpenFeature provider that evaluates flags with a ``rollwise.Client``.

    ``unit_attribute`` is the context attribute the OpenFeature ``targeting_key`` becomes (and
    the ``unit_type`` of tracked outcomes). The provider does not own ``client``: OpenFeature's
    ``shutdown()`` closes it only with ``close_client_on_shutdown=True``.
    """

    def __init__(
        self,
        client: Client,
        *,
        unit_attribute: str = "user_id",
        close_client_on_shutdown: bool = False,
        ready_timeout: float = 10.0,
        watch_interval: float = 0.25,
    ) -> None:
        super().__init__()
        self._client = client
        self._unit_attribute = unit_attribute
        self._close_client_on_shutdown = close_client_on_shutdown
        self._ready_timeout = ready_timeout
        self._watch_interval = watch_interval
        self._metadata = Metadata(name="rollwise")
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._emitted = "not_ready"
        """The state OpenFeature last heard: not_ready, ready, stale or error."""

    @property
    def client(self) -> Client:
        """The rollwise client this provider evaluates with."""
        return self._client

    def get_metadata(self) -> Metadata:
        return self._metadata

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Wait until the client has its rules from the server (``ready_timeout``), then follow
        it: OpenFeature hears of changes, a lost link and its return as provider events.

        Raises ``ProviderNotReadyError`` when the client has no rules at all within the
        timeout (no server, no disk cache, no bootstrap: every flag would serve its default),
        and ``ProviderFatalError`` when the server refuses the SDK key; the client keeps trying
        and the provider emits ``PROVIDER_READY`` once it has rules."""
        self._client.on_change(self._changed)
        ready = self._client.wait_until_ready(self._ready_timeout)
        status = self._client.status()
        self._start_watching()
        if status.connection == "unauthorized":
            self._emitted = "error"
            raise ProviderFatalError("the rollwise server refused the SDK key")
        if not ready and status.revision is None and status.connection != "offline":
            self._emitted = "error"
            raise ProviderNotReadyError(
                f"the rollwise client has no rules after {self._ready_timeout:g} s (no answer "
                "from the server, no disk cache, no bootstrap document); it keeps trying"
            )
        self._emitted = "ready"  # OpenFeature emits PROVIDER_READY when this returns

    def _changed(self, change: FlagChange) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(
            flags_changed=[change.key], metadata={"revision": change.revision},
        ))  # fmt: skip

    def _state(self) -> str:
        status = self._client.status()
        if status.connection == "unauthorized":
            return "error"
        if status.revision is None:
            return "not_ready"
        if status.connection in ("streaming", "polling", "offline"):
            return "ready"
        return "stale"  # disconnected, or reconnecting: the rules in use may be out of date

    def _start_watching(self) -> None:
        if self._watcher is None or not self._watcher.is_alive():
            self._stop.clear()
            self._watcher = threading.Thread(
                target=self._watch, name="rollwise-openfeature-events", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        """Turn the client's state into provider events, on each change of it."""
        while not self._stop.wait(self._watch_interval):
            try:
                state = self._state()
                if state == self._emitted or state == "not_ready":
                    continue
                self._emitted = state
                if state == "ready":
                    self.emit_provider_ready(ProviderEventDetails())
                elif state == "stale":
                    self.emit_provider_stale(ProviderEventDetails(
                        message="the link to the rollwise server is lost; serving the rules "
                        "in use",
                    ))  # fmt: skip
                else:
                    self.emit_provider_error(ProviderEventDetails(
                        message="the rollwise server refused the SDK key",
                        error_code=OFErrorCode.PROVIDER_FATAL,
                    ))  # fmt: skip
            except Exception:
                logger.exception("rollwise: the OpenFeature provider's event watch failed")

    def shutdown(self) -> None:
        """Stop following the client; close it (flushing its events) if the provider owns it."""
        self._stop.set()
        self._client.remove_change_listener(self._changed)
        if not self._close_client_on_shutdown:
            return
        try:
            self._client.close()
        except Exception:
            logger.exception("rollwise: closing the client from the OpenFeature provider failed")

    # --- evaluation ---

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """The value of string flag ``flag_key`` for the context: its variant's key (the model
        version) unless the variant gives another ``value``."""
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.STRING)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """The value of boolean flag ``flag_key``; another type is ``TYPE_MISMATCH``."""
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.BOOLEAN)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """The value of integer flag ``flag_key``; another type is ``TYPE_MISMATCH``."""
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.INTEGER)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """The value of float flag ``flag_key``; another type (an integer flag too) is
        ``TYPE_MISMATCH``."""
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.FLOAT)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """The value of json flag ``flag_key`` as a fresh dict or list the caller may change;
        for a string flag, its variant's payload (an object or array, else ``TYPE_MISMATCH``)."""
        try:
            kind = self._type_of(flag_key)
            if kind is not FlagType.STRING:
                return self._resolve(flag_key, default_value, evaluation_context, FlagType.JSON)
            assignment = self._evaluate(flag_key, evaluation_context)
            if assignment.is_error:
                return self._error(flag_key, default_value, assignment)
            payload = thaw(assignment.payload)
            if not isinstance(payload, dict | list):
                found = "no payload" if payload is None else f"a {type(payload).__name__} payload"
                return FlagResolutionDetails(
                    value=default_value,
                    reason=OFReason.ERROR,
                    error_code=OFErrorCode.TYPE_MISMATCH,
                    error_message=(
                        f"variant {assignment.variant!r} of flag {flag_key!r} has {found}, "
                        "not a JSON object or array"
                    ),
                    flag_metadata=_flag_metadata(assignment),
                )
            return FlagResolutionDetails(
                value=payload,
                reason=_REASONS.get(assignment.reason, OFReason.UNKNOWN),
                variant=assignment.variant,
                flag_metadata=_flag_metadata(assignment),
            )
        except Exception:  # noqa: BLE001 - resolution never raises; logged in _failed
            return self._failed(flag_key, default_value)

    def _type_of(self, flag_key: str) -> FlagType | None:
        """The type of the flag in the rules in use (``None``: no such flag, or no rules)."""
        rules = self._client.rules
        flag = None if rules is None else rules.flags.get(flag_key)
        return None if flag is None else flag.type

    def _resolve(
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None,
        flag_type: FlagType,
    ) -> FlagResolutionDetails[Any]:
        try:
            assignment = self._client.evaluate_value(
                flag_key, self._context(evaluation_context), default_value, flag_type
            )
            if assignment.error_code is ErrorCode.TYPE_MISMATCH:
                kind = self._type_of(flag_key)
                return FlagResolutionDetails(
                    value=default_value,
                    reason=OFReason.ERROR,
                    error_code=OFErrorCode.TYPE_MISMATCH,
                    error_message=_WRONG_TYPE.format(
                        flag=flag_key, kind=kind and kind.value, asked=flag_type.value
                    ),
                    flag_metadata=_flag_metadata(assignment),
                )
            if assignment.is_error:
                return self._error(flag_key, default_value, assignment)
            value = assignment.value
            if value is None and flag_type is FlagType.STRING:  # an Assignment built by hand
                value = assignment.variant
            return FlagResolutionDetails(
                value=thaw(value) if flag_type is FlagType.JSON else value,
                reason=_REASONS.get(assignment.reason, OFReason.UNKNOWN),
                variant=assignment.variant,
                flag_metadata=_flag_metadata(assignment),
            )
        except Exception:  # noqa: BLE001 - resolution never raises; logged in _failed
            return self._failed(flag_key, default_value)

    # --- events ---

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Record an outcome: ``client.track(name, unit, value, unit_type=..., attrs=...)``.

        The unit is the context's ``targeting_key`` (or its ``unit_attribute`` attribute); the
        value is ``tracking_event_details.value``, or ``1.0`` when there is none (the event
        happened once); the details' attributes become the outcome's ``attrs``.
        """
        try:
            context = self._context(evaluation_context)
            unit = context.get(self._unit_attribute)
            value: Any = 1.0
            attrs = None
            if tracking_event_details is not None:
                if tracking_event_details.value is not None:
                    value = tracking_event_details.value
                attrs = dict(tracking_event_details.attributes) or None
            self._client.track(
                tracking_event_name,
                unit if isinstance(unit, str | int) and not isinstance(unit, bool) else "",
                value,
                unit_type=self._unit_attribute,
                attrs=attrs,
            )
        except Exception:
            logger.exception("rollwise: OpenFeature track(%r) failed", tracking_event_name)

    # --- helpers ---

    def _context(self, evaluation_context: EvaluationContext | None) -> dict[str, Any]:
        """The rollwise context: the attributes, and the targeting key as ``unit_attribute``."""
        if evaluation_context is None:
            return {}
        context = dict(evaluation_context.attributes)
        if evaluation_context.targeting_key:
            context[self._unit_attribute] = evaluation_context.targeting_key
        return context

    def _evaluate(self, flag_key: str, evaluation_context: EvaluationContext | None) -> Assignment:
        return self._client.evaluate(flag_key, self._context(evaluation_context))

    def _error(
        self,
        flag_key: str,
        default_value: T,
        assignment: Assignment,
        code: OFErrorCode | None = None,
    ) -> FlagResolutionDetails[T]:
        if code is None:
            rollwise_code = assignment.error_code or ErrorCode.GENERAL
            code = _ERROR_CODES.get(rollwise_code, OFErrorCode.GENERAL)
        return FlagResolutionDetails(
            value=default_value,
            reason=OFReason.ERROR,
            error_code=code,
            error_message=_ERROR_MESSAGES[code].format(flag=flag_key),
            flag_metadata=_flag_metadata(assignment),
        )

    def _failed(self, flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
        logger.exception("rollwise: OpenFeature resolution of flag %r failed", flag_key)
        return FlagResolutionDetails(
            value=default_value,
            reason=OFReason.ERROR,
            error_code=OFErrorCode.GENERAL,
            error_message=_ERROR_MESSAGES[OFErrorCode.GENERAL].format(flag=flag_key),
        )


def _flag_metadata(assignment: Assignment) -> dict[str, str | int]:
    metadata: dict[str, str | int] = {}
    if assignment.flag_version is not None:
        metadata["flag_version"] = assignment.flag_version
    if assignment.rule is not None:
        metadata["rule"] = assignment.rule
    return metadata

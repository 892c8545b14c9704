"""``RollwiseProvider``: rollwise flags through the OpenFeature API (an optional extra).

Application code asks OpenFeature's client; the provider asks a ``rollwise.Client`` and maps the
``Assignment`` to OpenFeature's vocabulary:

- ``get_string_*`` is the variant key (the model version), ``get_object_*`` the variant's
  payload as plain dicts and lists; boolean, integer and float flags do not exist in rollwise
  and resolve to the default with ``TYPE_MISMATCH``.
- ``reason``, ``error_code`` and ``variant`` come from the ``Assignment``; ``flag_metadata``
  holds ``flag_version`` and ``rule`` when they are known.
- On any error OpenFeature returns the caller's default (its rule, not rollwise's
  ``off_variant``), with ``reason=ERROR`` and no ``variant``.
- ``client.track(name, context, details)`` records a rollwise outcome for the context's unit.

Nothing here raises into the application. ``import rollwise`` does not import this module, and
importing it without openfeature-sdk installed raises an ``ImportError`` naming the extra.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode as OFErrorCode
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
from rollwise.client import Client

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
    OFErrorCode.GENERAL: "evaluating flag {flag!r} failed; see the 'rollwise' log",
}

_NOT_A_STRING = (
    "rollwise flags serve string variants: read flag {flag!r} with get_string_value() for the "
    "variant key or get_object_value() for its payload, not as a {kind}"
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
    ) -> None:
        super().__init__()
        self._client = client
        self._unit_attribute = unit_attribute
        self._close_client_on_shutdown = close_client_on_shutdown
        self._metadata = Metadata(name="rollwise")

    @property
    def client(self) -> Client:
        """The rollwise client this provider evaluates with."""
        return self._client

    def get_metadata(self) -> Metadata:
        return self._metadata

    def shutdown(self) -> None:
        """Close the rollwise client (flushing its events) if the provider owns it."""
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
        """The variant key (the model version) that ``flag_key`` serves to the context."""
        try:
            assignment = self._evaluate(flag_key, evaluation_context)
            if assignment.is_error:
                return self._error(flag_key, default_value, assignment)
            if assignment.variant is None:  # not served by the client; guarded all the same
                return self._error(flag_key, default_value, assignment, OFErrorCode.GENERAL)
            return FlagResolutionDetails(
                value=assignment.variant,
                reason=_REASONS.get(assignment.reason, OFReason.UNKNOWN),
                variant=assignment.variant,
                flag_metadata=_flag_metadata(assignment),
            )
        except Exception:  # noqa: BLE001 - resolution never raises; logged in _failed
            return self._failed(flag_key, default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """The payload of the variant served, as a fresh dict or list the caller may change."""
        try:
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

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Not supported: the default with ``TYPE_MISMATCH`` (the flag is not evaluated)."""
        return _mismatch(flag_key, default_value, "boolean")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """Not supported: the default with ``TYPE_MISMATCH`` (the flag is not evaluated)."""
        return _mismatch(flag_key, default_value, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Not supported: the default with ``TYPE_MISMATCH`` (the flag is not evaluated)."""
        return _mismatch(flag_key, default_value, "float")

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


def _mismatch(flag_key: str, default_value: T, kind: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=OFReason.ERROR,
        error_code=OFErrorCode.TYPE_MISMATCH,
        error_message=_NOT_A_STRING.format(flag=flag_key, kind=kind),
    )

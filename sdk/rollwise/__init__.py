"""rollwise: roll out ML model versions safely.

Application code evaluates flags in-process with ``Client``; see ``docs/sdk.md``.
"""

from rollwise._freeze import thaw
from rollwise._version import __version__
from rollwise.assignment import Assignment, ErrorCode, Reason
from rollwise.changes import FlagChange
from rollwise.client import Client, RulesSource
from rollwise.config import ClientConfig
from rollwise.errors import (
    AuthenticationError,
    ConfigurationError,
    EventsDroppedWarning,
    Problem,
    RollwiseDeprecationWarning,
    RollwiseError,
    RollwiseWarning,
    RulesError,
    RulesParseError,
    ServerUnavailableError,
    SpoolError,
    TransportError,
    UnsupportedSchemaError,
)
from rollwise.events import Exposure, Outcome
from rollwise.rules import (
    Condition,
    Flag,
    FlagType,
    Rule,
    RulesDocument,
    Schedule,
    Segment,
    SegmentRef,
    Serve,
    SplitArm,
    Variant,
)
from rollwise.status import ClientStatus

__all__ = [
    "Assignment",
    "AuthenticationError",
    "Client",
    "ClientConfig",
    "ClientStatus",
    "Condition",
    "ConfigurationError",
    "ErrorCode",
    "EventsDroppedWarning",
    "Exposure",
    "Flag",
    "FlagChange",
    "FlagType",
    "Outcome",
    "Problem",
    "Reason",
    "RollwiseDeprecationWarning",
    "RollwiseError",
    "RollwiseWarning",
    "Rule",
    "RulesDocument",
    "RulesError",
    "RulesParseError",
    "RulesSource",
    "Schedule",
    "Segment",
    "SegmentRef",
    "Serve",
    "ServerUnavailableError",
    "SplitArm",
    "SpoolError",
    "TransportError",
    "UnsupportedSchemaError",
    "Variant",
    "__version__",
    "thaw",
]

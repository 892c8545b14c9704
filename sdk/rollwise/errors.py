"""The one error hierarchy of rollwise.

Every exception rollwise raises is a :class:`RollwiseError`::

    RollwiseError
    ├── ConfigurationError (also ValueError)   a bad option or setting
    ├── RulesError                              a rules document that cannot be used
    │   ├── RulesParseError (also ValueError)   names the JSON path of every problem
    │   └── UnsupportedSchemaError              a schema_version newer than this SDK
    ├── TransportError                          talking to the flag server failed
    │   ├── ServerUnavailableError
    │   └── AuthenticationError
    └── SpoolError                              the local event spool cannot be used

Warnings (never raised from the evaluation path, which only logs):

    RollwiseWarning (UserWarning)
    ├── RollwiseDeprecationWarning
    └── EventsDroppedWarning

The evaluation path (``Client.variant`` and ``Client.evaluate``) never raises: faults become an
``Assignment`` with ``reason=ERROR`` and an ``ErrorCode``.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "EventsDroppedWarning",
    "Problem",
    "RollwiseDeprecationWarning",
    "RollwiseError",
    "RollwiseWarning",
    "RulesError",
    "RulesParseError",
    "ServerUnavailableError",
    "SpoolError",
    "TransportError",
    "UnsupportedSchemaError",
]


class RollwiseError(Exception):
    """Base class of every error raised by rollwise."""


class ConfigurationError(RollwiseError, ValueError):
    """An option or setting has a bad value; the message names it."""


class RulesError(RollwiseError):
    """A rules document cannot be used."""


@attrs.frozen
class Problem:
    """One problem in a document: where it is (a JSON path) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RulesParseError(RulesError, ValueError):
    """A rules document, flag or segment is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid rules document ({count} {noun}):\n{lines}")


class UnsupportedSchemaError(RulesError):
    """The document's ``schema_version`` is newer than this SDK understands."""


class TransportError(RollwiseError):
    """Talking to the flag server failed."""


class ServerUnavailableError(TransportError):
    """The flag server could not be reached or answered with a server error."""


class AuthenticationError(TransportError):
    """The flag server rejected the SDK key (401 or 403)."""


class SpoolError(RollwiseError):
    """The local event spool cannot be opened or written."""


class RollwiseWarning(UserWarning):
    """Base class of rollwise's warnings."""


class RollwiseDeprecationWarning(RollwiseWarning):
    """A rollwise API that will be removed."""


class EventsDroppedWarning(RollwiseWarning):
    """Events were dropped (spool full or rejected by the server); the count says how many."""

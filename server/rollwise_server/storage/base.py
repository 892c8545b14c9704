"""The ``Store`` interface: everything the server keeps, behind one protocol.

SQLite (``sqlite.py``) implements it for one process; PostgreSQL implements the same protocol
for several replicas. Every write is one transaction that checks the version it edits, bumps the
environment's revision and appends the audit entry, so a change is all there or not at all.
Methods are synchronous: the HTTP layer calls them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from rollwise_server.storage.writable import WriteState

if TYPE_CHECKING:
    from rollwise.analysis.reduce import Dialect

__all__ = [
    "ACTIVE_ROLLOUT",
    "WEBHOOK_STATES",
    "Actor",
    "AuditEntry",
    "AuditQuery",
    "EventRow",
    "IngestCounts",
    "Kind",
    "MonitorRecord",
    "Resource",
    "ResourceVersion",
    "RolloutRecord",
    "SessionRecord",
    "Store",
    "TokenRecord",
    "Validator",
    "WebhookDelivery",
    "WebhookOutcome",
    "WebhookQuery",
]

Kind = Literal["flag", "segment", "metric"]
ACTIVE_ROLLOUT = ("running", "paused", "awaiting_approval", "errored")
"""The states in which a rollout owns its flag: its plan is frozen, its weights are the
controller's, and a kill ends it."""


@attrs.frozen
class Actor:
    """Who makes a change: the person (a token's owner) and the token used, or a system actor
    such as ``controller`` (no token). ``name`` is what the audit log shows as ``actor``."""

    name: str
    token_id: str | None = None
    owner: str | None = None

    @classmethod
    def of(cls, who: Actor | str) -> Actor:
        return who if isinstance(who, Actor) else cls(who)


Validator = Callable[[dict[str, Any], Mapping[str, int]], dict[str, Any]]
"""Checks and canonicalizes a body, given the environment's segments (key → condition cost)."""
"""Called inside the write transaction with the new body and the environment's segment keys;
returns the canonical body or raises ``Invalid``."""


@attrs.frozen
class Resource:
    """The current state of a flag or segment in one environment."""

    env: str
    kind: Kind
    key: str
    version: int
    archived: bool
    body: Mapping[str, Any]
    updated_at: str
    updated_by: str


@attrs.frozen
class ResourceVersion:
    """One entry of a flag's or segment's history."""

    version: int
    action: str
    actor: str
    reason: str | None
    ts: str
    archived: bool
    body: Mapping[str, Any]


@attrs.frozen
class AuditEntry:
    """One append-only audit record: who did what, to what, when, why, and the numbers."""

    id: int
    ts: str
    actor: str
    action: str
    env: str | None
    resource_type: str
    resource_key: str | None
    version: int | None
    reason: str | None
    details: Mapping[str, Any]
    owner: str | None = None
    """The person behind the change (the token's owner); ``None`` for the controller."""
    token_id: str | None = None
    """The token used; ``None`` for the controller and for bootstrap changes."""


@attrs.frozen(kw_only=True)
class AuditQuery:
    env: str | None = None
    envs: tuple[str, ...] | None = None
    """Only these environments (a token limited to some environments sees only theirs)."""
    resource_type: str | None = None
    resource_types: tuple[str, ...] | None = None
    resource_key: str | None = None
    actor: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None
    before_id: int | None = None
    limit: int = 100


@attrs.frozen
class TokenRecord:
    """An API token; the secret itself is never stored, only its SHA-256.

    ``owner`` is the person the token belongs to (one person may hold several tokens);
    ``envs`` the environments its role applies to (``None``: all); ``env`` the one
    environment of an ``sdk`` token."""

    id: str
    name: str
    role: str
    env: str | None
    created_at: str
    created_by: str
    revoked_at: str | None
    owner: str = ""
    envs: tuple[str, ...] | None = None
    expires_at: str | None = None


@attrs.frozen(kw_only=True)
class SessionRecord:
    """A console session: its CSRF token, when it began and was last used (Unix time), and
    the token it signed in with (read afresh with the session: revocation ends it)."""

    id_hash: str
    csrf: str
    created: float
    last_seen: float
    token: TokenRecord


@attrs.frozen
class MonitorRecord:
    """A flag's monitor: its spec and the controller's state (both JSON), with a version."""

    env: str
    flag: str
    name: str
    version: int
    spec: Mapping[str, Any]
    state: Mapping[str, Any]
    updated_at: str


@attrs.frozen
class RolloutRecord:
    """A flag's rollout: its plan and its state (both JSON), with a version."""

    env: str
    flag: str
    version: int
    plan: Mapping[str, Any]
    state: Mapping[str, Any]
    updated_at: str


@attrs.frozen
class IngestCounts:
    accepted: int
    duplicates: int


EventRow = tuple[Any, ...]
"""An event as a row in the column order of its table (see ``EXPOSURE_COLUMNS``)."""


WEBHOOK_STATES = ("pending", "delivered", "failed")


@attrs.frozen
class WebhookDelivery:
    """One event for one endpoint in the webhook outbox, and how its delivery is going.

    ``endpoint`` is the endpoint's id and ``endpoint_label`` its ``scheme://host[:port]``: the
    URL itself is never stored. ``next_attempt`` (Unix time) is set while ``pending``."""

    id: int
    message_id: str
    endpoint: str
    endpoint_label: str
    event: str
    body: str
    state: str
    attempts: int
    created: float
    created_at: str
    next_attempt: float | None
    last_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    finished_at: str | None


@attrs.frozen(kw_only=True)
class WebhookOutcome:
    """What became of a claimed delivery: ``pending`` (again at ``next_attempt``),
    ``delivered`` or ``failed``; ``attempted`` unless it was given up without a request."""

    state: str
    at: str
    attempted: bool = True
    status: int | None = None
    error: str | None = None
    next_attempt: float | None = None


@attrs.frozen(kw_only=True)
class WebhookQuery:
    state: str | None = None
    event: str | None = None
    before_id: int | None = None
    limit: int = 100


class Store(Protocol):
    """What the server needs from its database."""

    writes: WriteState
    dialect: Dialect
    ingest_writers: int
    """Whether writes fail for lack of disk space (``/readyz``, ``StorageFull``)."""

    def close(self) -> None: ...

    def ping(self) -> bool: ...

    def probe_write(self) -> bool: ...

    # environments
    def environments(self) -> list[dict[str, Any]]: ...
    def create_environment(
        self, key: str, *, actor: Actor | str, reason: str | None, protected: bool = False
    ) -> dict[str, Any]: ...
    def set_protected(
        self, key: str, protected: bool, *, actor: Actor | str, reason: str
    ) -> dict[str, Any]: ...
    def environment(self, key: str) -> dict[str, Any]: ...
    def revision(self, env: str) -> int: ...

    # flags and segments
    def list_resources(self, env: str, kind: Kind, *, archived: bool = False) -> list[Resource]: ...
    def get_resource(self, env: str, kind: Kind, key: str) -> Resource: ...
    def write_resource(
        self,
        env: str,
        kind: Kind,
        key: str,
        body: dict[str, Any] | None,
        *,
        expected_version: int | None,
        action: str,
        actor: Actor | str,
        reason: str | None,
        validate: Validator | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Resource: ...
    def history_versions(
        self,
        env: str,
        kind: Kind,
        key: str,
        *,
        before: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[int]: ...
    def history(
        self,
        env: str,
        kind: Kind,
        key: str,
        *,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[ResourceVersion]: ...
    def rules_document(self, env: str) -> tuple[int, dict[str, Any]]: ...

    # audit
    def audit(self, query: AuditQuery) -> list[AuditEntry]: ...
    def append_audit(
        self,
        *,
        actor: Actor | str,
        action: str,
        env: str | None,
        resource_type: str,
        resource_key: str | None,
        version: int | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry: ...

    # tokens
    def create_token(
        self,
        *,
        name: str,
        role: str,
        env: str | None,
        secret_hash: str,
        actor: Actor | str,
        owner: str | None = None,
        envs: Sequence[str] | None = None,
        expires_at: str | None = None,
    ) -> TokenRecord: ...
    def tokens_ended(self, token_ids: Sequence[str], now: str) -> list[str]: ...
    def tokens(self) -> list[TokenRecord]: ...
    def token_by_hash(self, secret_hash: str) -> TokenRecord | None: ...
    def revoke_token(self, token_id: str, *, actor: Actor | str) -> TokenRecord: ...

    # rollouts
    def get_rollout(self, env: str, flag: str) -> RolloutRecord | None: ...
    def active_rollouts(self) -> list[RolloutRecord]: ...
    def put_rollout(
        self,
        env: str,
        flag: str,
        plan: Mapping[str, Any],
        state: Mapping[str, Any],
        *,
        expected_version: int | None,
        actor: Actor | str,
        action: str,
        reason: str | None,
        details: Mapping[str, Any] | None = None,
        flag_change: Mapping[str, Any] | None = None,
        stamp: Sequence[str] = (),
    ) -> RolloutRecord: ...
    def all_rollouts(self) -> list[RolloutRecord]: ...
    def put_rollout_state(
        self, env: str, flag: str, state: Mapping[str, Any], *, expected_version: int
    ) -> bool: ...
    def seen_metrics(self, env: str) -> list[tuple[str, int, str]]: ...

    # monitors
    def monitors(self, env: str | None = None, flag: str | None = None) -> list[MonitorRecord]: ...
    def get_monitor(self, env: str, flag: str, name: str) -> MonitorRecord | None: ...
    def put_monitor(
        self, env: str, flag: str, name: str, spec: Mapping[str, Any] | None,
        state: Mapping[str, Any], *, expected_version: int | None, actor: Actor | str,
        action: str, reason: str | None, details: Mapping[str, Any] | None = None,
        expected_updated_at: str | None = None,
    ) -> MonitorRecord | None: ...  # fmt: skip
    def put_monitor_state(
        self, env: str, flag: str, name: str, state: Mapping[str, Any], *, expected_version: int,
        expected_updated_at: str,
    ) -> bool: ...  # fmt: skip
    def reader(self) -> Any: ...
    def watch(self, publish: Callable[[str, int], None]) -> None: ...
    def maintain(self, retention: float) -> dict[str, list[str]]: ...
    def top_seq(self, table: Literal["exposures", "outcomes", "predictions"]) -> int: ...
    def lead(self) -> bool: ...
    def snapshot(self) -> AbstractContextManager[Any]: ...
    def insert_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...
    def counter_follows(self, conn: Any, table: str, column: str) -> None: ...
    def transaction(self) -> AbstractContextManager[Any]: ...
    def lease_rollout(self, env: str, flag: str, owner: str, seconds: float) -> bool: ...
    def release_rollout(self, env: str, flag: str, owner: str) -> None: ...
    def release_leases(self, owner: str) -> None: ...

    # events
    def ingest(
        self, table: Literal["exposures", "outcomes", "predictions"], rows: Sequence[EventRow]
    ) -> IngestCounts: ...
    def ingest_many(
        self,
        batches: Sequence[
            tuple[Literal["exposures", "outcomes", "predictions"], Sequence[EventRow]]
        ],
    ) -> list[IngestCounts]: ...
    def recent_exposures(
        self, env: str, flag: str, *, window: int, units: int
    ) -> list[tuple[str, str, str, str]]: ...
    def recent_traffic(
        self, env: str, flag: str, metric: str, *, window: int
    ) -> dict[str, float]: ...
    def count_events(
        self, table: Literal["exposures", "outcomes", "predictions"], env: str | None = None
    ) -> int: ...

    # webhook outbox
    def enqueue_webhook(
        self,
        *,
        message_id: str,
        event: str,
        body: str,
        endpoints: Sequence[tuple[str, str]],
        now: float,
    ) -> list[int]: ...
    def claim_webhooks(
        self, now: float, lease_until: float, limit: int
    ) -> list[WebhookDelivery]: ...
    def finish_webhook(self, delivery_id: int, outcome: WebhookOutcome) -> None: ...
    def next_webhook_due(self) -> float | None: ...
    def webhook_deliveries(self, query: WebhookQuery) -> list[WebhookDelivery]: ...

    # console sessions (``ui/sessions.py``)
    def create_session(
        self, *, id_hash: str, token_id: str, csrf: str, now: float, forget_before: float
    ) -> None: ...
    def session(self, id_hash: str) -> SessionRecord | None: ...
    def touch_session(self, id_hash: str, now: float) -> None: ...
    def end_session(self, id_hash: str) -> None: ...

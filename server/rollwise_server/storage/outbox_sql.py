"""The webhook outbox in SQL (table ``webhook_outbox``, migration ``m006``).

A mixin of ``SqlStore``: it uses the store's ``transaction()`` and ``_reader()``. A row is
claimed by moving its ``next_attempt`` past the request's time-out (``lease_until``) inside the
claiming transaction, which locks the rows it claims (SQLite: the one writer; PostgreSQL:
``FOR UPDATE SKIP LOCKED``), so a second worker or replica never sends it at the same time,
and a row whose worker died mid-request becomes due again once that lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rollwise_server.storage.base import WebhookDelivery, WebhookOutcome, WebhookQuery

__all__ = ["SqlOutbox"]

_COLUMNS = (
    "id, message_id, endpoint, endpoint_label, event, body, state, attempts, created, created_at,"
    " next_attempt, last_attempt_at, last_status, last_error, finished_at"
)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _delivery(row: Sequence[Any]) -> WebhookDelivery:
    return WebhookDelivery(*row)


class SqlOutbox:
    """The ``Store`` methods of the webhook outbox."""

    if TYPE_CHECKING:

        def transaction(self) -> AbstractContextManager[Any]: ...
        def _reader(self) -> Any: ...

        _SQL_SKIP_LOCKED: str

    def enqueue_webhook(
        self,
        *,
        message_id: str,
        event: str,
        body: str,
        endpoints: Sequence[tuple[str, str]],
        now: float,
    ) -> list[int]:
        """One pending row per endpoint (``(id, label)``), due at once, in one transaction."""
        with self.transaction() as conn:
            return [
                int(
                    conn.execute(
                        "INSERT INTO webhook_outbox (message_id, endpoint, endpoint_label, event,"
                        " body, state, created, created_at, next_attempt)"
                        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING id",
                        (message_id, endpoint, label, event, body, now, _iso(now), now),
                    ).fetchone()[0]
                )
                for endpoint, label in endpoints
            ]

    def claim_webhooks(self, now: float, lease_until: float, limit: int) -> list[WebhookDelivery]:
        """The pending rows due at ``now`` (oldest first, at most ``limit``), each claimed
        until ``lease_until``."""
        with self.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM webhook_outbox"
                " WHERE state = 'pending' AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?"
                f"{self._SQL_SKIP_LOCKED}",
                (now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE webhook_outbox SET next_attempt = ? WHERE id = ?",
                [(lease_until, row[0]) for row in rows],
            )
        return [_delivery(row) for row in rows]

    def finish_webhook(self, delivery_id: int, outcome: WebhookOutcome) -> None:
        """Record what became of a claimed row: its new state, and the attempt if one was made."""
        final = outcome.state != "pending"
        with self.transaction() as conn:
            conn.execute(
                "UPDATE webhook_outbox SET state = ?, next_attempt = ?,"
                " attempts = attempts + ?,"
                " last_attempt_at = CASE WHEN ? THEN ? ELSE last_attempt_at END,"
                " last_status = CASE WHEN ? THEN ? ELSE last_status END,"
                " last_error = ?, finished_at = ? WHERE id = ?",
                (
                    outcome.state,
                    None if final else outcome.next_attempt,
                    int(outcome.attempted),
                    outcome.attempted, outcome.at,
                    outcome.attempted, outcome.status,
                    outcome.error,
                    outcome.at if final else None,
                    delivery_id,
                ),
            )  # fmt: skip

    def next_webhook_due(self) -> float | None:
        """When the earliest pending row is due (Unix time), or ``None`` if none is pending."""
        row = (
            self._reader()
            .execute("SELECT min(next_attempt) FROM webhook_outbox WHERE state = 'pending'")
            .fetchone()
        )
        return None if row is None or row[0] is None else float(row[0])

    def webhook_deliveries(self, query: WebhookQuery) -> list[WebhookDelivery]:
        """Rows newest first, filtered by state and event, below ``before_id``."""
        clauses: list[str] = []
        params: list[str | int] = []
        for column, value in (("state", query.state), ("event", query.event)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.before_id is not None:
            clauses.append("id < ?")
            params.append(query.before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM webhook_outbox {where} ORDER BY id DESC LIMIT ?",
            (*params, query.limit),
        )
        return [_delivery(row) for row in rows]

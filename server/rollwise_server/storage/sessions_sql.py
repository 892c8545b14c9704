"""Console sessions in SQL (table ``console_sessions``, migration ``m007``).

A mixin of ``SqlStore``. A session row names its token by id; reading a session joins the
token, so a revoked or expired token ends its sessions at the next request.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from rollwise_server.storage.base import SessionRecord, TokenRecord

__all__ = ["SqlSessions"]


class SqlSessions:
    """The ``Store`` methods of console sessions."""

    if TYPE_CHECKING:

        def transaction(self) -> AbstractContextManager[Any]: ...
        def _reader(self) -> Any: ...
        @staticmethod
        def _token(row: tuple[object, ...]) -> TokenRecord: ...

    def create_session(
        self, *, id_hash: str, token_id: str, csrf: str, now: float, forget_before: float
    ) -> None:
        """Store a new session, and drop the sessions last seen before ``forget_before``."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM console_sessions WHERE last_seen < ?", (forget_before,))
            conn.execute(
                "INSERT INTO console_sessions (id_hash, token_id, csrf, created, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (id_hash, token_id, csrf, now, now),
            )

    def session(self, id_hash: str) -> SessionRecord | None:
        row = (
            self._reader()
            .execute(
                "SELECT s.csrf, s.created, s.last_seen, t.id, t.name, t.role, t.env,"
                " t.created_at, t.created_by, t.revoked_at, t.owner, t.envs, t.expires_at"
                " FROM console_sessions s JOIN tokens t ON t.id = s.token_id"
                " WHERE s.id_hash = ?",
                (id_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return SessionRecord(
            id_hash=id_hash, csrf=row[0], created=row[1], last_seen=row[2],
            token=self._token(tuple(row[3:])),
        )  # fmt: skip

    def touch_session(self, id_hash: str, now: float) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash)
            )

    def end_session(self, id_hash: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

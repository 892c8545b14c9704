"""What the SQL stores share: every change in one transaction, in SQL that both SQLite and
PostgreSQL run.

``SqlStore`` holds the logic of the ``Store`` protocol; a backend (``sqlite.py``,
``postgres.py``) gives it connections (``_reader()``, ``transaction()``), its few dialect
phrases (the ``_SQL_*`` attributes) and what it does differently (ingestion, notifications).
Statements use ``?`` placeholders; the PostgreSQL connection translates them.

Inside a write transaction, ``_require_env`` locks the environment's row (PostgreSQL: ``FOR
UPDATE``; SQLite has one writer anyway): every write that moves an environment's revision or
edits one of its resources or rollouts is serialized per environment, so versions and revisions
stay gap-free and If-Match holds however many replicas write at once.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from rollwise._parse import condition_cost
from rollwise.analysis.reduce import Dialect
from rollwise.rules import schema_version_of
from rollwise_server.errors import Conflict, Invalid, NotFound, VersionConflict
from rollwise_server.rollouts.ownership import check_flag_edit, with_control_weights
from rollwise_server.storage.base import (
    ACTIVE_ROLLOUT,
    Actor,
    AuditEntry,
    AuditQuery,
    EventRow,
    IngestCounts,
    Kind,
    MonitorRecord,
    Resource,
    ResourceVersion,
    RolloutRecord,
    TokenRecord,
    Validator,
)
from rollwise_server.storage.document_limits import check_document_limits
from rollwise_server.storage.flag_type import check_flag_type
from rollwise_server.storage.outbox_sql import SqlOutbox
from rollwise_server.storage.sessions_sql import SqlSessions
from rollwise_server.storage.writable import WriteState
from rollwise_server.times import utc_moment

__all__ = [
    "COLUMNS",
    "DEFAULT_ENVIRONMENTS",
    "EXPOSURE_COLUMNS",
    "OUTCOME_COLUMNS",
    "PROTECTED_BY_DEFAULT",
    "SqlStore",
    "now_iso",
]

DEFAULT_ENVIRONMENTS = ("staging", "production")
PROTECTED_BY_DEFAULT = frozenset({"production"})
EXPOSURE_COLUMNS = (
    "id", "env", "ts", "flag", "flag_version", "variant", "rule", "unit_type", "unit", "attrs",
    "received_at",
)  # fmt: skip
OUTCOME_COLUMNS = (
    "id",
    "env",
    "ts",
    "metric",
    "unit_type",
    "unit",
    "value",
    "attrs",
    "received_at",
)
PREDICTION_COLUMNS = (
    "id", "env", "ts", "flag", "flag_version", "variant", "role", "run", "unit_type", "unit",
    "label", "score", "latency_ms", "status", "attrs", "received_at",
)  # fmt: skip
COLUMNS = {
    "exposures": EXPOSURE_COLUMNS,
    "outcomes": OUTCOME_COLUMNS,
    "predictions": PREDICTION_COLUMNS,
}
_CONTROLLED = ("running", "paused", "awaiting_approval")
"""The rollouts the controller looks at (``active_rollouts``)."""


def now_iso() -> str:
    """The current time as RFC 3339 UTC with microseconds (sortable as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _newest_versions(
    conn: Any,
    columns: str,
    env: str,
    kind: str,
    key: str,
    before: int | None,
    limit: int | None,
) -> list[tuple[Any, ...]]:
    """``columns`` of the newest ``limit`` versions below ``before`` (all by default), newest
    first."""
    rows: list[tuple[Any, ...]] = conn.execute(
        f"SELECT {columns} FROM resource_versions"  # columns: this module's own text
        " WHERE env = ? AND kind = ? AND key = ? AND version < ? ORDER BY version DESC LIMIT ?",
        (env, kind, key, before if before is not None else 2**62, limit or 2**62),
    ).fetchall()
    return rows


class SqlStore(SqlOutbox, SqlSessions):
    """The ``Store`` protocol in SQL; a subclass supplies the connections and the dialect."""

    dialect: Dialect
    writes: WriteState
    _SQL_BEGIN_SNAPSHOT = "BEGIN"
    """Starts a read transaction that sees one snapshot (``rules_document``)."""
    _SQL_LOCK = ""
    """Appended to a ``SELECT`` inside a write transaction to lock the rows it reads."""
    ingest_writers = 1
    """How many threads the ingestion worker stores batches with (``ingest_worker``)."""
    _SQL_SKIP_LOCKED = ""
    """Appended to a ``SELECT`` that claims rows: lock them, and pass over rows others hold."""
    _SQL_NOT_INDEXED = ""
    """After a table name: scan in arrival order rather than through an index."""

    def _reader(self) -> Any:
        """A connection for reads (this thread's, or one from a pool)."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Any]:
        """A connection in one write transaction: committed when the block ends, rolled back
        if it raises."""
        raise NotImplementedError

    def probe_write(self) -> bool:
        """Whether the database can be written (``/readyz`` asks while writes fail)."""
        raise NotImplementedError

    def ping(self) -> bool:
        return bool(self._reader().execute("SELECT 1").fetchone() == (1,))

    def close(self) -> None:
        raise NotImplementedError

    def _revision_moved(self, conn: Any, env: str, revision: int) -> None:
        """``env`` is at ``revision`` once ``conn``'s transaction commits (PostgreSQL tells the
        other replicas)."""

    def maintain(self, retention: float) -> dict[str, list[str]]:
        """Housekeeping of the event tables, run now and then by the server (PostgreSQL: make
        the partitions ingestion needs next, drop those older than ``retention`` seconds);
        what it created and dropped."""
        return {"created": [], "dropped": []}

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A read connection in one read transaction: every table as of one moment."""
        conn = self._reader()
        conn.execute(self._SQL_BEGIN_SNAPSHOT)
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def insert_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows`` as they are (``db copy``), in ``conn``'s transaction."""
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )

    def counter_follows(self, conn: Any, table: str, column: str) -> None:
        """After rows were inserted with their own ids (``db copy``), make the next id the
        database gives ``table`` follow them (SQLite does so by itself)."""

    def lead(self) -> bool:
        """Whether this process should run the controller's rounds now. SQLite: always (one
        server per file; the rollouts' leases cover a second process on the same file)."""
        return True

    def watch(self, publish: Callable[[str, int], None]) -> None:
        """Call ``publish(env, revision)`` as other processes move revisions, if the database
        can say so (PostgreSQL); otherwise nothing: the server polls (``revision_poll_seconds``)."""

    # --- environments ---

    _ENVIRONMENT = "SELECT key, revision, created_at, protected FROM environments"

    @staticmethod
    def _environment(row: Sequence[Any]) -> dict[str, Any]:
        key, revision, created, protected = row
        return {
            "key": key,
            "revision": revision,
            "created_at": created,
            "protected": bool(protected),
        }

    def environments(self) -> list[dict[str, Any]]:
        rows = self._reader().execute(f"{self._ENVIRONMENT} ORDER BY created_at, key")
        return [self._environment(row) for row in rows]

    def environment(self, key: str) -> dict[str, Any]:
        row = self._reader().execute(f"{self._ENVIRONMENT} WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"environment {key!r} does not exist")
        return self._environment(row)

    def create_environment(
        self, key: str, *, actor: Actor | str, reason: str | None, protected: bool = False
    ) -> dict[str, Any]:
        with self.transaction() as conn:
            created = now_iso()
            inserted = conn.execute(
                "INSERT INTO environments (key, revision, created_at, protected)"
                " VALUES (?, 0, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, created, int(protected)),
            ).rowcount
            if inserted != 1:  # another request (or replica) created it first
                raise Conflict(f"environment {key!r} exists already")
            self._audit(
                conn, actor, "environment.create", key, "environment", key, None, reason,
                {"protected": protected},
            )  # fmt: skip
        return {"key": key, "revision": 0, "created_at": created, "protected": protected}

    def set_protected(
        self, key: str, protected: bool, *, actor: Actor | str, reason: str
    ) -> dict[str, Any]:
        """Protect or unprotect an environment (audited as ``environment.protect`` or
        ``environment.unprotect``; no entry when nothing changes)."""
        with self.transaction() as conn:
            row = conn.execute(
                f"{self._ENVIRONMENT} WHERE key = ?{self._SQL_LOCK}", (key,)
            ).fetchone()
            if row is None:
                raise NotFound(f"environment {key!r} does not exist")
            if bool(row[3]) != protected:
                conn.execute(
                    "UPDATE environments SET protected = ? WHERE key = ?", (int(protected), key)
                )
                action = "environment.protect" if protected else "environment.unprotect"
                self._audit(conn, actor, action, key, "environment", key, None, reason, {})
            return self._environment((*row[:3], protected))

    def _require_env(self, conn: Any, env: str, *, lock: bool = False) -> int:
        """The environment's revision; ``lock``: inside a write transaction, hold its row
        until the transaction ends (the writes of one environment one after another)."""
        row = conn.execute(
            f"SELECT revision FROM environments WHERE key = ?{self._SQL_LOCK if lock else ''}",
            (env,),
        ).fetchone()
        if row is None:
            raise NotFound(f"environment {env!r} does not exist")
        return int(row[0])

    def revision(self, env: str) -> int:
        return self._require_env(self._reader(), env)

    # --- flags and segments ---

    @staticmethod
    def _resource(row: Sequence[Any]) -> Resource:
        env, kind, key, version, archived, body, updated_at, updated_by = row
        return Resource(
            env, kind, key, version, bool(archived), json.loads(body), updated_at, updated_by
        )

    _RESOURCE = (
        "SELECT env, kind, key, version, archived, body, updated_at, updated_by FROM resources"
    )

    def list_resources(self, env: str, kind: Kind, *, archived: bool = False) -> list[Resource]:
        conn = self._reader()
        self._require_env(conn, env)
        rows = conn.execute(
            f"{self._RESOURCE} WHERE env = ? AND kind = ? AND archived <= ? ORDER BY key",
            (env, kind, int(archived)),
        )
        return [self._resource(row) for row in rows]

    def get_resource(self, env: str, kind: Kind, key: str) -> Resource:
        conn = self._reader()
        self._require_env(conn, env)
        row = conn.execute(
            f"{self._RESOURCE} WHERE env = ? AND kind = ? AND key = ?", (env, kind, key)
        ).fetchone()
        if row is None:
            raise NotFound(f"{kind} {key!r} does not exist in environment {env!r}")
        return self._resource(row)

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
    ) -> Resource:
        """Create (``expected_version=None``), update, or archive (``body=None``) a resource.

        A flag managed by an active rollout is checked by ``rollouts.ownership`` in the same
        transaction: a refused edit raises ``Conflict``; an edit that turns the flag off ends
        the rollout (``aborted``, reason ``killed``) with its own audit entry. Metrics are not
        part of the rules document and do not move the environment's revision."""
        with self.transaction() as conn:
            revision = self._require_env(conn, env, lock=True)
            row = conn.execute(
                "SELECT version, archived, body FROM resources"
                " WHERE env = ? AND kind = ? AND key = ?",
                (env, kind, key),
            ).fetchone()
            current = None if row is None else int(row[0])
            if expected_version is None:
                if row is not None and not row[1]:
                    raise Conflict(f"{kind} {key!r} exists already", current_version=current)
            elif row is None:
                raise NotFound(f"{kind} {key!r} does not exist in environment {env!r}")
            elif current != expected_version:
                raise VersionConflict(
                    f"{kind} {key!r} is at version {current}, not {expected_version}: "
                    "reload it and apply your change again",
                    current_version=current,
                )
            elif row[1]:
                raise Conflict(
                    f"{kind} {key!r} is archived; create it again (POST) to restore it",
                    current_version=current,
                )
            version = (current or 0) + 1
            archived = body is None
            if archived and row is not None:
                stored = {**json.loads(row[2]), "version": version}
                if kind == "segment":
                    self._check_unreferenced(conn, env, key)
                if kind == "metric":
                    self._check_metric_unused(conn, env, key)
            else:
                body = body or {}
                segment_costs = {
                    k: condition_cost(json.loads(b).get("conditions")) for (k, b) in conn.execute(
                        "SELECT key, body FROM resources"
                        " WHERE env = ? AND kind = 'segment' AND archived = 0",
                        (env,),
                    )
                }  # fmt: skip
                stored = validate(dict(body, version=version), segment_costs) if validate else body
                stored = {k: v for k, v in stored.items() if k not in ("key",)}
                stored["version"] = version
                if kind in ("flag", "segment"):
                    check_document_limits(conn, env, kind, key, stored, segment_costs)
            if kind == "segment" and row is not None and not row[1]:
                self._check_segment_not_managed(conn, env, key, json.loads(row[2]), body)
            if kind == "metric" and row is not None and not row[1] and not archived:
                self._check_metric_frozen(conn, env, key, json.loads(row[2]), stored)
            if kind == "flag" and row is not None and not row[1] and not archived:
                check_flag_type(key, json.loads(row[2]), stored)
            if kind == "flag" and row is not None and not row[1]:
                stored = self._rollout_owns(
                    conn, env, key, json.loads(row[2]), None if archived else stored, version,
                    actor, reason,
                ) or stored  # fmt: skip
            ts = now_iso()
            who = Actor.of(actor)
            conn.execute(
                "INSERT INTO resources"
                " (env, kind, key, version, archived, body, updated_at, updated_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (env, kind, key) DO UPDATE SET"
                " version = excluded.version, archived = excluded.archived, body = excluded.body,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (env, kind, key, version, int(archived), _dumps(stored), ts, who.name),
            )
            conn.execute(
                "INSERT INTO resource_versions"
                " (env, kind, key, version, action, actor, reason, ts, archived, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (env, kind, key, version, action, who.name, reason, ts, int(archived),
                 _dumps(stored)),
            )  # fmt: skip
            if kind != "metric":
                conn.execute(
                    "UPDATE environments SET revision = ? WHERE key = ?", (revision + 1, env)
                )
                self._revision_moved(conn, env, revision + 1)
            self._audit(conn, actor, action, env, kind, key, version, reason, details or {})
            return Resource(env, kind, key, version, archived, stored, ts, who.name)

    def _rollout_owns(
        self,
        conn: Any,
        env: str,
        key: str,
        old: dict[str, Any],
        new: dict[str, Any] | None,
        version: int,
        actor: Actor | str,
        reason: str | None,
    ) -> dict[str, Any] | None:
        """Hold a flag edit to its active rollout (``rollouts.ownership``); on a kill, end the
        rollout and return the body with the managed rule on the control."""
        row = conn.execute(
            "SELECT version, plan, state FROM rollouts WHERE env = ? AND flag = ?", (env, key)
        ).fetchone()
        if row is None:
            return None
        plan, state = json.loads(row[1]), json.loads(row[2])
        if state.get("status") not in ACTIVE_ROLLOUT:
            return None
        if check_flag_edit(env, key, plan, old, new) != "kill" or new is None:
            return None
        now = time.time()
        ended = {
            **state, "status": "aborted", "end_reason": "killed", "ended_at": now,
            "killed_flag_version": version, "stage_flag_version": version,
        }  # fmt: skip
        conn.execute(
            "UPDATE rollouts SET version = ?, state = ?, updated_at = ? WHERE env = ? AND flag = ?",
            (int(row[0]) + 1, _dumps(ended), now_iso(), env, key),
        )
        details = {"from_status": state.get("status"), "stage": state.get("stage"),
                   "cause": "killed", "flag_version": version}  # fmt: skip
        self._audit(
            conn, actor, "rollout.abort", env, "rollout", key, int(row[0]) + 1, reason, details
        )
        return {**with_control_weights(new, plan), "version": version}

    def _check_segment_not_managed(
        self,
        conn: Any,
        env: str,
        segment: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any] | None,
    ) -> None:
        """A segment that an active rollout's managed rule refers to is part of that rule's
        conditions: changing it would change who is in the rollout (``rollouts.ownership``)."""
        if new is not None and old.get("conditions") == new.get("conditions"):
            return  # a description changes nobody's membership
        for flag, plan, state, body in conn.execute(
            "SELECT r.flag, r.plan, r.state, f.body FROM rollouts AS r JOIN resources AS f"
            " ON f.env = r.env AND f.kind = 'flag' AND f.key = r.flag WHERE r.env = ?",
            (env,),
        ):
            if json.loads(state).get("status") not in ACTIVE_ROLLOUT:
                continue
            managed = json.loads(plan).get("rule")
            for rule in json.loads(body).get("rules", []):
                if rule.get("id") == managed and any(
                    c.get("segment") == segment for c in rule.get("conditions", [])
                ):
                    raise Conflict(
                        f"segment {segment!r} is part of the managed rule {managed!r} of flag "
                        f"{flag!r}, whose rollout in {env!r} is active: its conditions cannot "
                        "change until the rollout ends",
                        rollout={"env": env, "flag": flag},
                    )

    def _active_guardrail_flags(self, conn: Any, env: str, metric: str) -> list[str]:
        """The flags whose active rollout has a guardrail on ``metric``."""
        users = []
        for flag, plan, state in conn.execute(
            "SELECT flag, plan, state FROM rollouts WHERE env = ?", (env,)
        ):
            if json.loads(state).get("status") not in ACTIVE_ROLLOUT:
                continue
            if any(g.get("metric") == metric for g in json.loads(plan).get("guardrails", [])):
                users.append(flag)
        return sorted(users)

    def _check_metric_frozen(
        self,
        conn: Any,
        env: str,
        metric: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
    ) -> None:
        """How a guardrail's metric is read is frozen while its rollout is active (its
        description, unit and owner may change)."""
        fields = ("kind", "direction", "numerator", "denominator")
        if all(old.get(f) == new.get(f) for f in fields):
            return
        users = self._active_guardrail_flags(conn, env, metric)
        if users:
            raise Conflict(
                f"metric {metric!r} is a guardrail of the active rollouts of "
                f"{', '.join(users)}: its kind, direction, numerator and denominator cannot "
                "change until they end",
                flags=users,
            )

    def _check_metric_unused(self, conn: Any, env: str, metric: str) -> None:
        users = self._active_guardrail_flags(conn, env, metric)
        if users:
            raise Conflict(
                f"metric {metric!r} is a guardrail of the active rollouts of {', '.join(users)}",
                flags=users,
            )

    def _check_unreferenced(self, conn: Any, env: str, segment: str) -> None:
        users = []
        for key, body in conn.execute(
            "SELECT key, body FROM resources WHERE env = ? AND kind = 'flag' AND archived = 0",
            (env,),
        ):
            rules = json.loads(body).get("rules", [])
            if any(c.get("segment") == segment for r in rules for c in r.get("conditions", [])):
                users.append(key)
        if users:
            raise Conflict(
                f"segment {segment!r} is used by flags {', '.join(sorted(users))}",
                flags=sorted(users),
            )

    def history_versions(
        self,
        env: str,
        kind: Kind,
        key: str,
        *,
        before: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[int]:
        """The version numbers of a history page, oldest first: the newest ``limit`` below
        ``before`` (all by default), fewer if their bodies would pass ``max_bytes`` (always at
        least one). ``NotFound`` if the resource never existed."""
        conn = self._reader()
        self._require_env(conn, env)
        sizes = _newest_versions(conn, "version, length(body)", env, kind, key, before, limit)
        if not sizes and (
            conn.execute(
                "SELECT 1 FROM resource_versions WHERE env = ? AND kind = ? AND key = ? LIMIT 1",
                (env, kind, key),
            ).fetchone()
            is None
        ):
            raise NotFound(f"{kind} {key!r} does not exist in environment {env!r}")
        page: list[int] = []
        total = 0
        for version, size in sizes:
            total += size
            if page and max_bytes is not None and total > max_bytes:
                break
            page.append(int(version))
        return page[::-1]

    def history(
        self,
        env: str,
        kind: Kind,
        key: str,
        *,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[ResourceVersion]:
        """The versions below ``before`` (all by default), oldest first: the newest ``limit``."""
        conn = self._reader()
        self._require_env(conn, env)
        columns = "version, action, actor, reason, ts, archived, body"
        rows = _newest_versions(conn, columns, env, kind, key, before, limit)
        if not rows and before is None:
            raise NotFound(f"{kind} {key!r} does not exist in environment {env!r}")
        return [
            ResourceVersion(v, a, actor, r, ts, bool(arch), json.loads(b))
            for v, a, actor, r, ts, arch, b in reversed(rows)
        ]

    def rules_document(self, env: str) -> tuple[int, dict[str, Any]]:
        conn = self._reader()
        conn.execute(self._SQL_BEGIN_SNAPSHOT)  # one snapshot for the revision and the rows
        try:
            revision = self._require_env(conn, env)
            flags: dict[str, Any] = {}
            segments: dict[str, Any] = {}
            for kind, key, body in conn.execute(
                "SELECT kind, key, body FROM resources"
                " WHERE env = ? AND kind IN ('flag', 'segment') AND archived = 0 ORDER BY key",
                (env,),
            ):
                (flags if kind == "flag" else segments)[key] = json.loads(body)
        finally:
            conn.execute("COMMIT")
        for segment in segments.values():
            segment.pop("version", None)
        document = {
            "schema_version": schema_version_of(flags.values()),
            "environment": env,
            "revision": revision,
            "segments": segments,
            "flags": flags,
        }
        return revision, document

    # --- audit ---

    def _audit(
        self,
        conn: Any,
        actor: Actor | str,
        action: str,
        env: str | None,
        resource_type: str,
        resource_key: str | None,
        version: int | None,
        reason: str | None,
        details: Mapping[str, Any],
    ) -> AuditEntry:
        ts = now_iso()
        who = Actor.of(actor)
        cursor = conn.execute(
            "INSERT INTO audit (ts, actor, action, env, resource_type, resource_key, version,"
            " reason, details, owner, token_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            (ts, who.name, action, env, resource_type, resource_key, version, reason,
             _dumps(details), who.owner, who.token_id),
        )  # fmt: skip
        entry_id = int(cursor.fetchone()[0])
        return AuditEntry(
            entry_id, ts, who.name, action, env, resource_type, resource_key, version, reason,
            details, who.owner, who.token_id,
        )  # fmt: skip

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
    ) -> AuditEntry:
        with self.transaction() as conn:
            return self._audit(
                conn,
                actor,
                action,
                env,
                resource_type,
                resource_key,
                version,
                reason,
                details or {},
            )

    def audit(self, query: AuditQuery) -> list[AuditEntry]:
        clauses, params = [], []
        for column in ("env", "resource_type", "resource_key", "actor", "action"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        for column, values in (("env", query.envs), ("resource_type", query.resource_types)):
            if values is not None:
                clauses.append(
                    f"{column} IN ({', '.join('?' * len(values))})" if values else "1 = 0"
                )
                params.extend(values)
        if query.since is not None:
            clauses.append("ts >= ?")
            params.append(query.since)
        if query.until is not None:
            clauses.append("ts < ?")
            params.append(query.until)
        if query.before_id is not None:
            clauses.append("id < ?")
            params.append(query.before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._reader().execute(
            "SELECT id, ts, actor, action, env, resource_type, resource_key, version, reason,"
            f" details, owner, token_id FROM audit {where} ORDER BY id DESC LIMIT ?",
            (*params, query.limit),
        )
        return [
            AuditEntry(*row[:9], json.loads(row[9]), row[10], row[11])  # type: ignore[call-arg]
            for row in rows
        ]

    # --- tokens ---

    _GRANT_COLUMNS = (
        "SELECT id, name, role, env, created_at, created_by, revoked_at, owner, envs, expires_at"
    )
    _TOKEN = f"{_GRANT_COLUMNS} FROM tokens"

    @staticmethod
    def _token(row: Sequence[Any]) -> TokenRecord:
        envs = None if row[8] is None else tuple(json.loads(row[8]))
        return TokenRecord(*row[:8], envs, row[9])  # type: ignore[call-arg]

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
    ) -> TokenRecord:
        token_id = f"tok_{secrets.token_hex(6)}"
        owner = owner or name
        if env is not None:
            envs = (env,)
        scope = None if envs is None else tuple(envs)
        with self.transaction() as conn:
            for each in scope or ():
                self._require_env(conn, each)
            created = now_iso()
            conn.execute(
                "INSERT INTO tokens (id, name, role, env, secret_hash, created_at, created_by,"
                " owner, envs, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (token_id, name, role, env, secret_hash, created, Actor.of(actor).name, owner,
                 None if scope is None else json.dumps(list(scope)), expires_at),
            )  # fmt: skip
            details = {
                "name": name,
                "role": role,
                "token_env": env,
                "owner": owner,
                "envs": None if scope is None else list(scope),
                "expires_at": expires_at,
            }
            self._audit(conn, actor, "token.create", env, "token", token_id, None, None, details)
        return TokenRecord(
            token_id, name, role, env, created, Actor.of(actor).name, None, owner, scope,
            expires_at,
        )  # fmt: skip

    def tokens(self) -> list[TokenRecord]:
        rows = self._reader().execute(f"{self._TOKEN} ORDER BY created_at, id")
        return [self._token(row) for row in rows]

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        row = (
            self._reader()
            .execute(
                f"{self._GRANT_COLUMNS}, secret_hash FROM tokens WHERE secret_hash = ?",
                (secret_hash,),
            )
            .fetchone()
        )
        if row is None or not hmac.compare_digest(row[10], secret_hash):
            return None
        return self._token(row[:10])

    def tokens_ended(self, token_ids: Sequence[str], now: str) -> list[str]:
        """Which of ``token_ids`` are revoked, expired (at ``now``) or gone."""
        ids = list(dict.fromkeys(token_ids))
        if not ids:
            return []
        valid = {
            token_id
            for (token_id,) in self._reader().execute(
                f"SELECT id FROM tokens WHERE id IN ({', '.join('?' * len(ids))})"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                (*ids, now),
            )
        }
        return [token_id for token_id in ids if token_id not in valid]

    def revoke_token(self, token_id: str, *, actor: Actor | str) -> TokenRecord:
        with self.transaction() as conn:
            row = conn.execute(f"{self._TOKEN} WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise NotFound(f"token {token_id!r} does not exist")
            record = self._token(row)
            if record.revoked_at is not None:
                return record
            revoked = now_iso()
            conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (revoked, token_id))
            self._audit(
                conn, actor, "token.revoke", record.env, "token", token_id, None, None,
                {"name": record.name, "owner": record.owner},
            )  # fmt: skip
        return attrs.evolve(record, revoked_at=revoked)

    # --- rollouts ---

    def get_rollout(self, env: str, flag: str) -> RolloutRecord | None:
        row = (
            self._reader()
            .execute(
                "SELECT env, flag, version, plan, state, updated_at FROM rollouts"
                " WHERE env = ? AND flag = ?",
                (env, flag),
            )
            .fetchone()
        )
        if row is None:
            return None
        return RolloutRecord(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5])

    def active_rollouts(self) -> list[RolloutRecord]:
        rows = self._reader().execute(
            "SELECT env, flag, version, plan, state, updated_at FROM rollouts ORDER BY env, flag"
        )
        records = [
            RolloutRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5]) for r in rows
        ]
        return [r for r in records if r.state.get("status") in _CONTROLLED]

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
    ) -> RolloutRecord:
        """Store a rollout's plan and state, checking its version; optionally change the flag.

        ``flag_change`` (``{"body": ..., "expected_version": n}``) writes a new flag version in
        the same transaction: a stage change and the weights it sets are one change. The state
        fields named in ``stamp`` (``rolled_back_at``, ...) are set to the time of the write,
        inside the transaction, so they say when the change took effect.
        """
        with self.transaction() as conn:
            if stamp:
                moment = time.time()
                state = {**state, **dict.fromkeys(stamp, moment)}
            self._require_env(conn, env, lock=True)
            row = conn.execute(
                "SELECT version FROM rollouts WHERE env = ? AND flag = ?", (env, flag)
            ).fetchone()
            current = None if row is None else int(row[0])
            if expected_version is not None and (current or 0) != expected_version:
                raise VersionConflict(  # 0: there must be no rollout yet
                    f"the rollout of {flag!r} is at version {current or 0}, not {expected_version}",
                    current_version=current,
                )
            version = (current or 0) + 1
            ts = now_iso()
            conn.execute(
                "INSERT INTO rollouts (env, flag, version, plan, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (env, flag) DO UPDATE SET"
                " version = excluded.version, plan = excluded.plan, state = excluded.state,"
                " updated_at = excluded.updated_at",
                (env, flag, version, _dumps(plan), _dumps(state), ts),
            )
            self._audit(conn, actor, action, env, "rollout", flag, version, reason, details or {})
            if flag_change is not None:
                self._write_flag_in(conn, env, flag, flag_change, actor, action, reason, details)
        return RolloutRecord(env, flag, version, dict(plan), dict(state), ts)

    def _write_flag_in(
        self,
        conn: Any,
        env: str,
        key: str,
        change: Mapping[str, Any],
        actor: Actor | str,
        action: str,
        reason: str | None,
        details: Mapping[str, Any] | None,
    ) -> None:
        """The flag version a rollout step writes, with its own ``flag.rollout`` audit entry
        (actor and reason those of the step: the controller and its decision, or a person)."""
        row = conn.execute(
            "SELECT version FROM resources WHERE env = ? AND kind = 'flag' AND key = ?",
            (env, key),
        ).fetchone()
        if row is None or int(row[0]) != change["expected_version"]:
            raise Conflict(f"flag {key!r} changed meanwhile; the rollout step was not applied")
        version = int(row[0]) + 1
        body = {**change["body"], "version": version}
        ts = now_iso()
        name = Actor.of(actor).name
        conn.execute(
            "UPDATE resources SET version = ?, body = ?, updated_at = ?, updated_by = ?"
            " WHERE env = ? AND kind = 'flag' AND key = ?",
            (version, _dumps(body), ts, name, env, key),
        )
        conn.execute(
            "INSERT INTO resource_versions"
            " (env, kind, key, version, action, actor, reason, ts, archived, body)"
            " VALUES (?, 'flag', ?, ?, ?, ?, ?, ?, 0, ?)",
            (env, key, version, action, name, reason, ts, _dumps(body)),
        )
        (revision,) = conn.execute(
            "UPDATE environments SET revision = revision + 1 WHERE key = ? RETURNING revision",
            (env,),
        ).fetchone()
        self._revision_moved(conn, env, int(revision))
        step = {"rollout_action": action, **(details or {})}
        step.pop("evidence", None)
        self._audit(conn, actor, "flag.rollout", env, "flag", key, version, reason, step)

    def put_rollout_state(
        self, env: str, flag: str, state: Mapping[str, Any], *, expected_version: int
    ) -> bool:
        """Refresh a rollout's state (evidence between decisions): no new version, no audit.

        Only if the rollout is still at ``expected_version``: a decision made meanwhile (a
        kill, a person's pause) is never overwritten by an older reading. ``False`` if not."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE rollouts SET state = ?, updated_at = ?"
                " WHERE env = ? AND flag = ? AND version = ?",
                (_dumps(state), now_iso(), env, flag, expected_version),
            )
            return bool(cursor.rowcount == 1)

    # --- monitors ---

    _MONITOR = "SELECT env, flag, name, version, spec, state, updated_at FROM monitors"

    @staticmethod
    def _monitor(row: Sequence[Any]) -> MonitorRecord:
        return MonitorRecord(row[0], row[1], row[2], int(row[3]), json.loads(row[4]),
                             json.loads(row[5]), row[6])  # fmt: skip

    def monitors(self, env: str | None = None, flag: str | None = None) -> list[MonitorRecord]:
        clauses, params = [], []
        for column, value in (("env", env), ("flag", flag)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._reader().execute(f"{self._MONITOR}{where} ORDER BY env, flag, name", params)
        return [self._monitor(r) for r in rows]

    def get_monitor(self, env: str, flag: str, name: str) -> MonitorRecord | None:
        row = (
            self._reader()
            .execute(f"{self._MONITOR} WHERE env = ? AND flag = ? AND name = ?", (env, flag, name))
            .fetchone()
        )
        return None if row is None else self._monitor(row)

    def put_monitor(
        self, env: str, flag: str, name: str, spec: Mapping[str, Any] | None,
        state: Mapping[str, Any], *, expected_version: int | None, actor: Actor | str,
        action: str, reason: str | None, details: Mapping[str, Any] | None = None,
        expected_updated_at: str | None = None,
    ) -> MonitorRecord | None:  # fmt: skip
        """Create, replace (``expected_version``: the version read; ``None``: whatever is
        there) or delete (``spec=None``) a monitor, audited in the same transaction.
        ``expected_updated_at``: the state read must still be there (a check since would be
        overwritten: ``VersionConflict``)."""
        with self.transaction() as conn:
            self._require_env(conn, env, lock=True)
            row = conn.execute(
                "SELECT version, updated_at FROM monitors WHERE env = ? AND flag = ? AND name = ?",
                (env, flag, name),
            ).fetchone()
            current = 0 if row is None else int(row[0])
            if expected_updated_at is not None and (row is None or row[1] != expected_updated_at):
                raise VersionConflict(f"monitor {name!r} of {flag!r} was checked meanwhile",
                                      current_version=current)  # fmt: skip
            if expected_version is not None and current != expected_version:
                raise VersionConflict(
                    f"monitor {name!r} of {flag!r} is at version {current}, not "
                    f"{expected_version}",
                    current_version=current,
                )  # fmt: skip
            version = current + 1
            ts = now_iso()
            if spec is None:
                conn.execute("DELETE FROM monitors WHERE env = ? AND flag = ? AND name = ?",
                             (env, flag, name))  # fmt: skip
            else:
                conn.execute(
                    "INSERT INTO monitors (env, flag, name, version, spec, state, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (env, flag, name) DO UPDATE SET"
                    " version = excluded.version, spec = excluded.spec, state = excluded.state,"
                    " updated_at = excluded.updated_at",
                    (env, flag, name, version, _dumps(spec), _dumps(state), ts),
                )
            self._audit(conn, actor, action, env, "monitor", flag, version, reason,
                        {"monitor": name, **(details or {})})  # fmt: skip
        if spec is None:
            return None
        return MonitorRecord(env, flag, name, version, dict(spec), dict(state), ts)

    def put_monitor_state(
        self, env: str, flag: str, name: str, state: Mapping[str, Any], *, expected_version: int,
        expected_updated_at: str,
    ) -> bool:  # fmt: skip
        """The controller's state after a check: no new version, no audit; only if the monitor
        is still the one read (``expected_version`` and ``expected_updated_at``: a person's
        change, another check, or a monitor deleted and made again meanwhile wins)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE monitors SET state = ?, updated_at = ?"
                " WHERE env = ? AND flag = ? AND name = ? AND version = ? AND updated_at = ?",
                (_dumps(state), now_iso(), env, flag, name, expected_version,
                 expected_updated_at),
            )  # fmt: skip
            return bool(cursor.rowcount == 1)

    def seen_metrics(self, env: str) -> list[tuple[str, int, str]]:
        """Every metric with outcomes in ``env``: ``(metric, events, last event time)``.

        One index seek per distinct metric, then a count over that metric's index range."""
        conn = self._reader()
        self._require_env(conn, env)
        out: list[tuple[str, int, str]] = []
        after = ""
        while True:
            row = conn.execute(
                "SELECT metric FROM outcomes WHERE env = ? AND metric > ? ORDER BY metric LIMIT 1",
                (env, after),
            ).fetchone()
            if row is None:
                return out
            after = row[0]
            count, last = conn.execute(
                "SELECT count(*), max(ts) FROM outcomes WHERE env = ? AND metric = ?", (env, after)
            ).fetchone()
            out.append((after, int(count), str(last)))

    def all_rollouts(self) -> list[RolloutRecord]:
        rows = self._reader().execute(
            "SELECT env, flag, version, plan, state, updated_at FROM rollouts ORDER BY env, flag"
        )
        return [
            RolloutRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5]) for r in rows
        ]

    def lease_rollout(self, env: str, flag: str, owner: str, seconds: float) -> bool:
        """Take the rollout's lease (no other controller evaluates it meanwhile)."""
        now = time.time()
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE rollouts SET lease_owner = ?, lease_until = ?"
                " WHERE env = ? AND flag = ? AND (lease_until < ? OR lease_owner = ?)",
                (owner, now + seconds, env, flag, now, owner),
            )
            return bool(cursor.rowcount == 1)

    def release_rollout(self, env: str, flag: str, owner: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE rollouts SET lease_until = 0"
                " WHERE env = ? AND flag = ? AND lease_owner = ?",
                (env, flag, owner),
            )

    def release_leases(self, owner: str) -> None:
        """End every rollout lease held by a controller other than ``owner``: the new leader's
        fence. A leader killed while it evaluated left its lease; waiting it out would delay
        the next decision past two intervals. Each decision checks the rollout's version, so a
        controller still alive behind a released lease cannot decide twice."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE rollouts SET lease_until = 0 WHERE lease_owner <> ? AND lease_until > 0",
                (owner,),
            )

    def reader(self) -> Any:
        """A read-only connection of this thread, for analysis queries (``reduce_sql``)."""
        return self._reader()

    # --- events ---

    def ingest(
        self, table: Literal["exposures", "outcomes", "predictions"], rows: Sequence[EventRow]
    ) -> IngestCounts:
        """Insert a batch in one transaction; rows whose ``id`` exists already are skipped."""
        return self.ingest_many([(table, rows)])[0]

    def ingest_many(
        self,
        batches: Sequence[
            tuple[Literal["exposures", "outcomes", "predictions"], Sequence[EventRow]]
        ],
    ) -> list[IngestCounts]:
        """Insert several batches in one transaction (group commit); each batch's counts.
        Rows whose ``id`` exists already are skipped."""
        raise NotImplementedError

    def top_seq(self, table: Literal["exposures", "outcomes", "predictions"]) -> int:
        """The arrival number (``seq``) of the last event stored in ``table`` (0: none)."""
        if table not in COLUMNS:
            raise Invalid(f"unknown event table {table!r}")
        sql = f"SELECT coalesce(max(seq), 0) FROM {table}"
        return int(self._reader().execute(sql).fetchone()[0])

    def recent_exposures(
        self, env: str, flag: str, *, window: int, units: int
    ) -> list[tuple[str, str, str, str]]:
        """The newest exposure of each of the ``units`` units most recently exposed to a flag,
        ``(unit_type, unit, attrs, variant)``, newest first, looked for among the last
        ``window`` events stored: a bounded scan, whatever the table holds, that stops as soon
        as it has enough units (the console's blast radius)."""
        top = self.top_seq("exposures")
        cursor = self._reader().execute(
            f"SELECT unit_type, unit, attrs, variant FROM exposures{self._SQL_NOT_INDEXED}"
            " WHERE seq > ? AND env = ? AND flag = ? ORDER BY seq DESC",
            (top - window, env, flag),
        )
        seen: set[tuple[str, str]] = set()
        out: list[tuple[str, str, str, str]] = []
        try:
            while len(out) < units:
                rows = cursor.fetchmany(1000)
                if not rows:
                    break
                for unit_type, unit, attrs, variant in rows:
                    if (unit_type, unit) not in seen and len(out) < units:
                        seen.add((unit_type, unit))
                        out.append((unit_type, unit, attrs, variant))
        finally:
            cursor.close()
        return out

    def recent_traffic(self, env: str, flag: str, metric: str, *, window: int) -> dict[str, float]:
        """Among the last ``window`` events of each table: the flag's exposures (distinct units
        and the span of time they cover, in seconds) and the metric's outcomes (count, mean,
        variance): the plan editor's power calculation."""
        reader = self._reader()
        top = self.top_seq("exposures")
        units, first, last = reader.execute(
            "SELECT count(DISTINCT unit_type || ':' || unit), min(ts), max(ts)"
            f" FROM exposures{self._SQL_NOT_INDEXED} WHERE seq > ? AND env = ? AND flag = ?",
            (top - window, env, flag),
        ).fetchone()
        top = self.top_seq("outcomes")
        count, mean, square = reader.execute(
            "SELECT count(*), avg(value), avg(value * value)"
            f" FROM outcomes{self._SQL_NOT_INDEXED} WHERE seq > ? AND env = ? AND metric = ?",
            (top - window, env, metric),
        ).fetchone()
        span = 0.0
        earliest, latest = utc_moment(first or ""), utc_moment(last or "")
        if earliest is not None and latest is not None:  # stored times were checked on ingest
            span = (latest - earliest).total_seconds()
        variance = max(0.0, (square or 0.0) - (mean or 0.0) ** 2) if count else 0.0
        return {"units": float(units or 0), "span": span, "outcomes": float(count or 0),
                "mean": float(mean or 0.0), "variance": variance}  # fmt: skip

    def count_events(
        self, table: Literal["exposures", "outcomes", "predictions"], env: str | None = None
    ) -> int:
        if table not in COLUMNS:
            raise Invalid(f"unknown event table {table!r}")
        if env is None:
            row = self._reader().execute(f"SELECT count(*) FROM {table}").fetchone()
        else:
            row = (
                self._reader()
                .execute(f"SELECT count(*) FROM {table} WHERE env = ?", (env,))
                .fetchone()
            )
        return int(row[0])

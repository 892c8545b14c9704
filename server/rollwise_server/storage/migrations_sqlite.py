"""SQLite schema migrations, registered in order (sqlite-utils ``Migrations``)."""

from __future__ import annotations

import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

__all__ = ["migrations"]

migrations = Migrations("rollwise")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE environments (
            key TEXT PRIMARY KEY,
            revision INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE resources (
            env TEXT NOT NULL REFERENCES environments(key),
            kind TEXT NOT NULL CHECK (kind IN ('flag', 'segment')),
            key TEXT NOT NULL,
            version INTEGER NOT NULL,
            archived INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (env, kind, key)
        );
        CREATE TABLE resource_versions (
            env TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            version INTEGER NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT,
            ts TEXT NOT NULL,
            archived INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (env, kind, key, version)
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            env TEXT,
            resource_type TEXT NOT NULL,
            resource_key TEXT,
            version INTEGER,
            reason TEXT,
            details TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_env_resource ON audit (env, resource_type, resource_key, id);
        CREATE INDEX audit_actor ON audit (actor, id);
        CREATE INDEX audit_ts ON audit (ts);
        CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            env TEXT,
            secret_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE TABLE exposures (
            id TEXT PRIMARY KEY,
            env TEXT NOT NULL,
            ts TEXT NOT NULL,
            flag TEXT NOT NULL,
            flag_version INTEGER NOT NULL,
            variant TEXT NOT NULL,
            rule TEXT,
            unit_type TEXT NOT NULL,
            unit TEXT NOT NULL,
            attrs TEXT NOT NULL,
            received_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX exposures_flag_variant ON exposures (env, flag, variant, ts);
        CREATE INDEX exposures_flag_unit ON exposures (env, flag, unit_type, unit, ts);
        CREATE TABLE outcomes (
            id TEXT PRIMARY KEY,
            env TEXT NOT NULL,
            ts TEXT NOT NULL,
            metric TEXT NOT NULL,
            unit_type TEXT NOT NULL,
            unit TEXT NOT NULL,
            value REAL NOT NULL,
            attrs TEXT NOT NULL,
            received_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX outcomes_metric_unit ON outcomes (env, metric, unit_type, unit, ts);
        """
    )


@migrations()
def m002_rollouts(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE rollouts (
            env TEXT NOT NULL,
            flag TEXT NOT NULL,
            version INTEGER NOT NULL,
            plan TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            lease_owner TEXT,
            lease_until REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (env, flag)
        );
        """
    )


_EVENT_TABLES = {
    "exposures": (
        "id, env, ts, flag, flag_version, variant, rule, unit_type, unit, attrs, received_at",
        """
        id TEXT NOT NULL UNIQUE,
        env TEXT NOT NULL,
        ts TEXT NOT NULL,
        flag TEXT NOT NULL,
        flag_version INTEGER NOT NULL,
        variant TEXT NOT NULL,
        rule TEXT,
        unit_type TEXT NOT NULL,
        unit TEXT NOT NULL,
        attrs TEXT NOT NULL,
        received_at TEXT NOT NULL,
        seq INTEGER PRIMARY KEY
        """,
        "CREATE INDEX exposures_flag_unit ON exposures (env, flag, unit_type, unit, ts, variant)",
    ),
    "outcomes": (
        "id, env, ts, metric, unit_type, unit, value, attrs, received_at",
        """
        id TEXT NOT NULL UNIQUE,
        env TEXT NOT NULL,
        ts TEXT NOT NULL,
        metric TEXT NOT NULL,
        unit_type TEXT NOT NULL,
        unit TEXT NOT NULL,
        value REAL NOT NULL,
        attrs TEXT NOT NULL,
        received_at TEXT NOT NULL,
        seq INTEGER PRIMARY KEY
        """,
        "CREATE INDEX outcomes_metric_unit ON outcomes (env, metric, unit_type, unit, ts, value)",
    ),
}


@migrations()
def m003_event_tables_in_arrival_order(db: Database) -> None:
    """Events in rowid tables, in arrival order (``seq``), with a UNIQUE index on ``id``.

    A WITHOUT ROWID table keyed by a random UUID put every insert on a random page of the whole
    table; appending rows and keeping only the (time-ordered, for UUIDv7) ``id`` index and the
    analysis index costs a third of that. The ``exposures (env, flag, variant, ts)`` index had no
    reader and goes. Existing rows are copied in the order they arrived.
    """
    # One statement at a time: ``executescript`` would commit the migration's transaction first,
    # and a crash between DROP and RENAME would lose the table.
    for table, (columns, schema, index) in _EVENT_TABLES.items():
        db.execute(f"CREATE TABLE {table}_new ({schema})")
        db.execute(
            f"INSERT INTO {table}_new ({columns})"
            f" SELECT {columns} FROM {table} ORDER BY received_at, id"
        )
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
        db.execute(index)


@migrations()
def m004_rollout_tallies(db: Database) -> None:
    """The rollout controller's incremental state (``rollouts/tally.py``).

    ``rollout_units``: each unit's first counted exposure time and smallest and largest variant
    per rollout; ``rollout_version_units``: the units seen per flag version and variant (the
    SRM check's counts); ``rollout_tallies``: the running sums per guardrail and cohort and
    the watermarks up to which events are counted. The ``exposures (env, flag, ts)`` index
    finds the exposures that a look newly counts (those whose time passed the outcome delay);
    ``rollout_units (unit_type, unit, env)`` matches a round's new outcomes to the rollouts
    that count their units, once for all rollouts.
    """
    for statement in (
        """CREATE TABLE rollout_units (
            env TEXT NOT NULL, flag TEXT NOT NULL, unit_type TEXT NOT NULL, unit TEXT NOT NULL,
            t0 TEXT NOT NULL, lo TEXT NOT NULL, hi TEXT NOT NULL,
            PRIMARY KEY (env, flag, unit_type, unit)
        ) WITHOUT ROWID""",
        """CREATE TABLE rollout_version_units (
            env TEXT NOT NULL, flag TEXT NOT NULL, flag_version INTEGER NOT NULL,
            variant TEXT NOT NULL, unit_type TEXT NOT NULL, unit TEXT NOT NULL,
            PRIMARY KEY (env, flag, flag_version, variant, unit_type, unit)
        ) WITHOUT ROWID""",
        """CREATE TABLE rollout_tallies (
            env TEXT NOT NULL, flag TEXT NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (env, flag)
        )""",
        "CREATE INDEX rollout_units_by_unit ON rollout_units (unit_type, unit, env)",
        "CREATE INDEX exposures_flag_ts ON exposures (env, flag, ts)",
    ):
        db.execute(statement)


@migrations()
def m005_control_plane(db: Database) -> None:
    """Protected environments, token owners, environments and expiry, audit identity, the
    metric catalogue (a third resource kind), and stages counted from 1.

    Existing tokens get an owner equal to their name (and an ``sdk`` token its one
    environment); an existing environment named ``production`` becomes protected; a stored
    rollout's ``stage`` (and the stage of its approvals and SRM state) moves from 0-based to
    1-based, as the API and the messages count; a stored plan's guardrail tolerance becomes
    signed (negative where a decrease harms).
    """
    for statement in (
        "ALTER TABLE environments ADD COLUMN protected INTEGER NOT NULL DEFAULT 0",
        "UPDATE environments SET protected = 1 WHERE key = 'production'",
        "ALTER TABLE tokens ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "UPDATE tokens SET owner = name",
        "ALTER TABLE tokens ADD COLUMN envs TEXT",
        "UPDATE tokens SET envs = json_array(env) WHERE env IS NOT NULL",
        "ALTER TABLE tokens ADD COLUMN expires_at TEXT",
        "ALTER TABLE audit ADD COLUMN owner TEXT",
        "ALTER TABLE audit ADD COLUMN token_id TEXT",
        "CREATE INDEX audit_resource_key ON audit (resource_key, id)",
        """CREATE TABLE resources_new (
            env TEXT NOT NULL REFERENCES environments(key),
            kind TEXT NOT NULL CHECK (kind IN ('flag', 'segment', 'metric')),
            key TEXT NOT NULL,
            version INTEGER NOT NULL,
            archived INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (env, kind, key)
        )""",
        "INSERT INTO resources_new SELECT env, kind, key, version, archived, body, updated_at,"
        " updated_by FROM resources",
        "DROP TABLE resources",
        "ALTER TABLE resources_new RENAME TO resources",
    ):
        db.execute(statement)
    rows = db.execute("SELECT env, flag, plan, state FROM rollouts").fetchall()
    for env, flag, raw_plan, raw in rows:
        plan = json.loads(raw_plan)
        for guardrail in plan.get("guardrails", []):  # tolerances are now signed as the change
            if (
                guardrail.get("harm", "decrease") == "decrease"
                and guardrail.get("tolerance", 0) > 0
            ):
                guardrail["tolerance"] = -guardrail["tolerance"]
        state = json.loads(raw)
        if isinstance(state.get("stage"), int):
            state["stage"] += 1
        for approval in state.get("approvals", []):
            if isinstance(approval, dict) and isinstance(approval.get("stage"), int):
                approval["stage"] += 1
        srm = state.get("srm")
        if isinstance(srm, dict) and isinstance(srm.get("stage"), int):
            srm["stage"] += 1
        db.execute(
            "UPDATE rollouts SET plan = ?, state = ? WHERE env = ? AND flag = ?",
            (_dumps(plan), _dumps(state), env, flag),
        )


@migrations()
def m006_webhook_outbox(db: Database) -> None:
    """The webhook outbox (``webhooks/``): one row per event and endpoint, kept after delivery.

    ``state`` is ``pending`` until a 2xx answer (``delivered``) or until the retry budget is
    spent (``failed``); ``next_attempt`` (Unix time) orders the pending rows and doubles as the
    delivery worker's claim on a row it is sending. The endpoint is stored as its id and its
    ``scheme://host[:port]`` label: the URL (often a credential) stays in the settings.
    """
    for statement in (
        """CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            endpoint_label TEXT NOT NULL,
            event TEXT NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            created_at TEXT NOT NULL,
            next_attempt REAL,
            last_attempt_at TEXT,
            last_status INTEGER,
            last_error TEXT,
            finished_at TEXT,
            UNIQUE (message_id, endpoint)
        )""",
        "CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt)",
        "CREATE INDEX webhook_outbox_state ON webhook_outbox (state, id)",
    ):
        db.execute(statement)


@migrations()
def m007_console_sessions(db: Database) -> None:
    """Sessions of the web console (``ui/sessions.py``): server-side, so that logout, an idle or
    absolute timeout and a revoked token end them wherever the next request lands.

    Only the SHA-256 of the session id is stored; the token's secret never is (the session
    names the token by id, and every request checks that token is still valid).
    """
    db.execute(
        """CREATE TABLE console_sessions (
            id_hash TEXT PRIMARY KEY,
            token_id TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created REAL NOT NULL,
            last_seen REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX console_sessions_token ON console_sessions (token_id)")


@migrations()
def m008_predictions(db: Database) -> None:
    """Predictions of shadow runs (``client.shadow``): the live and the shadow model's answer
    for one unit, paired by ``run``; in arrival order (``seq``) like the other event tables."""
    db.execute(
        """CREATE TABLE predictions (
            id TEXT NOT NULL UNIQUE,
            env TEXT NOT NULL,
            ts TEXT NOT NULL,
            flag TEXT NOT NULL,
            flag_version INTEGER NOT NULL,
            variant TEXT NOT NULL,
            role TEXT NOT NULL,
            run TEXT NOT NULL,
            unit_type TEXT NOT NULL,
            unit TEXT NOT NULL,
            label TEXT,
            score REAL,
            latency_ms REAL NOT NULL,
            status TEXT NOT NULL,
            attrs TEXT NOT NULL,
            received_at TEXT NOT NULL,
            seq INTEGER PRIMARY KEY
        )"""
    )
    db.execute("CREATE INDEX predictions_flag_run ON predictions (env, flag, run)")
    db.execute("CREATE INDEX predictions_flag_unit ON predictions (env, flag, unit_type, unit, ts)")


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@migrations()
def m009_monitors(db: Database) -> None:
    """Monitors of flags after their rollouts (``monitoring/``): the spec a person put, and the
    state the controller keeps between checks (each stream's CUSUM, the alert)."""
    db.execute(
        """CREATE TABLE monitors (
            env TEXT NOT NULL,
            flag TEXT NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            spec TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (env, flag, name)
        )"""
    )

"""An SDK refuses a document over the limits from its server and keeps its last good rules
(issue 12, item 2). The server never writes one, so the test writes one into its database, as a
server older than the limits (or a hand-edited database) would have."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import rollwise
from rollwise import limits
from rollwise_server.testing import live_server
from tests.sdk.test_online import wait_for
from tests.server.conftest import EU_SEGMENT, example_flag


def _smuggle(db: str, key: str, body: dict[str, object]) -> None:
    """Store ``body`` as flag ``key`` past the API's checks and move the revision on."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO resources (env, kind, key, version, archived, body, updated_at,"
            " updated_by) VALUES ('production', 'flag', ?, 1, 0, ?, '2026-12-01T00:00:00Z', 'x')",
            (key, json.dumps(body)),
        )
        conn.execute("UPDATE environments SET revision = revision + 1 WHERE key = 'production'")


def test_a_document_over_a_limit_is_refused_and_the_last_good_kept(tmp_path: Path) -> None:
    with live_server(tmp_path / "server", revision_poll_seconds=0.1) as server:
        admin = server.session()
        base = f"{server.url}/api/v1/envs/production"
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
        client = rollwise.Client(
            server.url, server.token("sdk", env="production"), cache_dir=tmp_path / "cache"
        )
        try:
            assert client.wait_until_ready(10)
            good = client.rules
            assert good is not None
            rules = [{"id": f"r{i}", "conditions": [], "serve": {"variant": "a"}}
                     for i in range(limits.MAX_RULES + 1)]  # fmt: skip
            wide = {"version": 1, "variants": {"a": {}}, "off_variant": "a",
                    "default_variant": "a", "rules": rules}  # fmt: skip
            _smuggle(server.db, "too-wide", wide)
            assert wait_for(lambda: "max_rules" in (client.status().last_error or ""), 10)
            assert f"revision {good.revision + 1}" in (client.status().last_error or "")
            assert client.rules is good
            assert client.variant("too-wide", {"user_id": "u"}, default="none") == "none"
            assert client.variant("fraud-model", {"user_id": "u", "country": "US"}) is not None
        finally:
            client.close()

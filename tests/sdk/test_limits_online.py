"""An SDK refuses a document over the limits from its server and keeps its last good rules
(issue 12, item 2). The server never writes one, so the test writes one into its database, as a
server older than the limits (or a hand-edited database) would have."""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import rollwise
from rollwise import limits
from rollwise.config import ClientConfig
from rollwise.transport import RequestsTransport
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


class _Bomb(BaseHTTPRequestHandler):
    """A server answering the rules with 64 MB of gzip'd spaces (about 64 KB on the wire)."""

    body = gzip.compress(b" " * 64_000_000, 9)

    def do_GET(self) -> None:
        if not self.path.startswith("/api/v1/sdk/rules"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("ETag", '"1"')
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_gzip_bomb_is_read_no_further_than_the_document_limit(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bomb)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        transport = RequestsTransport(ClientConfig(url=url, sdk_key="key", cache_dir=None))
        try:
            answer = transport.fetch_rules(None)
        finally:
            transport.close()
        assert answer.body is not None
        assert len(answer.body) == limits.MAX_DOCUMENT_BYTES + 1  # not 64 MB
        client = rollwise.Client(url, "key", cache_dir=tmp_path / "cache", streaming=False)
        try:
            assert wait_for(lambda: "max_document_bytes" in (client.status().last_error or ""))
            assert client.rules is None
        finally:
            client.close()
    finally:
        server.shutdown()
        server.server_close()

"""Webhooks you can trust (issue 12, item 5): Standard Webhooks signatures checked by the
``standardwebhooks`` package, no redirects, no URL in the log, a durable outbox retried across
restarts, its state in the API, and no start without a secret.

Every receiver is a real HTTP server on 127.0.0.1; every event is a real rollout abort through
the API of a real server. Tests wait on conditions with a deadline, never on a bare sleep.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
from click.testing import CliRunner
from standardwebhooks import Webhook

from rollwise.errors import ConfigurationError
from rollwise_server.cli import main
from rollwise_server.openapi import openapi_document
from rollwise_server.settings import Settings
from rollwise_server.storage import open_store
from rollwise_server.storage.base import WebhookQuery
from rollwise_server.testing import LiveServer, free_port, live_server
from rollwise_server.webhooks import RetryPolicy, Webhooks, new_secret, redact
from tests.rollouts.test_plan import PLAN
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
DELIVERIES = "/api/v1/webhooks/deliveries"
PROD = "/api/v1/envs/production"


def _docs_verify() -> Callable[[str, bytes, dict[str, str]], Any]:
    """The ``verify`` function of docs/server.md's Webhooks section, executed as written."""
    text = (ROOT / "docs" / "server.md").read_text()
    section = text.split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/server.md#webhooks", "exec"), namespace)  # noqa: S102
    return namespace["verify"]  # type: ignore[no-any-return]


verify = _docs_verify()


# --- a receiver ---------------------------------------------------------------------------------


@attrs.frozen
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next of ``statuses`` (the
    last one repeats), with ``headers``, and records every request."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses or (204,))
        self.headers = headers or {}
        self.requests: list[Received] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.changed:
                    status = receiver.statuses[min(len(receiver.requests),
                                                   len(receiver.statuses) - 1)]  # fmt: skip
                    self.send_response(status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    receiver.requests.append(Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status,
                        time.monotonic(),
                    ))  # fmt: skip
                    receiver.changed.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"{len(self.requests)} requests arrived, not {count}"
            )
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*statuses: int, headers: dict[str, str] | None = None) -> Receiver:
        made.append(Receiver(*statuses, headers=headers))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


# --- helpers ------------------------------------------------------------------------------------


def hooked(directory: Path, *urls: str, **settings: Any) -> Any:
    """A live server whose webhooks go to ``urls``, retrying fast."""
    options = {"webhook_secret": SECRET, "webhook_retry_seconds": 0.05, **settings}
    return live_server(directory, webhook_urls=",".join(urls), **options)


def abort_a_rollout(server: LiveServer, key: str = "fraud-model") -> None:
    """Start a rollout of a new flag ``key`` and abort it: one ``rollout.aborted`` event."""
    admin = server.session()
    base = f"{server.url}{PROD}"
    if admin.get(f"{base}/segments/eu").status_code == 404:
        admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
        define_metrics(server)
    admin.post(f"{base}/flags", json={**example_flag(), "key": key}).raise_for_status()
    rollout = f"{base}/flags/{key}/rollout"
    admin.put(rollout, json=PLAN).raise_for_status()
    admin.post(f"{rollout}/start", json={"reason": "go"}).raise_for_status()
    admin.post(f"{rollout}/abort", json={"reason": "drill"}).raise_for_status()


def deliveries(server: LiveServer, **params: Any) -> list[dict[str, Any]]:
    response = server.session().get(f"{server.url}{DELIVERIES}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


def wait_until(
    server: LiveServer, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
) -> list[dict[str, Any]]:
    """Poll the deliveries API until ``done`` holds (or fail at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = deliveries(server)
        if done(rows):
            return rows
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {rows}"
        time.sleep(0.02)


def all_in(state: str, count: int = 1) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: len(rows) == count and all(r["state"] == state for r in rows)


# --- signatures ---------------------------------------------------------------------------------


def test_a_delivery_verifies_with_standard_webhooks(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(204)
    with hooked(tmp_path, receiver.url()) as server:
        before = time.time()
        abort_a_rollout(server)
        (request,) = receiver.wait_for(1)
        (row,) = wait_until(server, all_in("delivered"))
    event = verify(SECRET, request.body, request.headers)
    assert event is not None
    assert event["type"] == event["event"] == "rollout.aborted"
    assert (event["env"], event["flag"], event["reason"]) == ("production", "fraud-model", "drill")
    assert "ABORTED" in event["text"]
    assert request.headers["webhook-id"].startswith("msg_")
    assert before - 1 <= int(request.headers["webhook-timestamp"]) <= time.time() + 1
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert "x-rollwise-signature" not in request.headers
    # the package agrees, and the signature holds the id, the timestamp and the body together
    assert Webhook(SECRET).verify(request.body, request.headers) == event
    assert verify(SECRET, request.body.replace(b"drill", b"drilx"), request.headers) is None
    assert verify(new_secret(), request.body, request.headers) is None
    for name, value in (("webhook-id", "msg_other"), ("webhook-timestamp", str(int(before) - 1))):
        assert verify(SECRET, request.body, {**request.headers, name: value}) is None
    stale = {**request.headers, "webhook-timestamp": str(int(before) - 600)}
    assert verify(SECRET, request.body, stale) is None  # a replay ten minutes later
    assert row["message_id"] == request.headers["webhook-id"]
    assert (row["attempts"], row["last_status"], row["last_error"]) == (1, 204, None)
    assert row["body"] == event
    assert row["finished_at"] is not None
    assert row["next_attempt_at"] is None


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    tmp_path: Path, receivers: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = receivers(204)
    redirecting = receivers(307, headers={"Location": elsewhere.url("/internal")})
    caplog.set_level(logging.INFO, logger="rollwise.server")
    with hooked(tmp_path, redirecting.url(), webhook_max_attempts=2) as server:
        abort_a_rollout(server)
        (row,) = wait_until(server, all_in("failed"))
    assert [r.answered for r in redirecting.wait_for(2)] == [307, 307]
    assert elsewhere.requests == []  # the signed body never went where the 307 pointed
    assert (row["attempts"], row["last_status"]) == (2, 307)
    assert "a redirect, not followed" in row["last_error"]
    assert "attempt 1 failed: HTTP 307: a redirect, not followed" in caplog.text
    assert "failed for good after 2 attempts" in caplog.text


def test_a_failed_attempt_is_retried_and_the_event_delivered_once(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(500, 200)
    with hooked(tmp_path, receiver.url()) as server:
        abort_a_rollout(server)
        (row,) = wait_until(server, all_in("delivered"))
    first, second = receiver.wait_for(2)
    assert [first.answered, second.answered] == [500, 200]
    assert len(receiver.requests) == 2  # delivered is final: nothing more is sent
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == row["message_id"]
    assert first.body == second.body
    assert verify(SECRET, first.body, first.headers) == verify(SECRET, second.body, second.headers)
    assert (row["attempts"], row["last_status"], row["last_error"]) == (2, 200, None)


def test_retry_after_is_honoured(tmp_path: Path, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(429, 204, headers={"Retry-After": "1"})
    with hooked(tmp_path, receiver.url()) as server:
        abort_a_rollout(server)
        wait_until(server, all_in("delivered"))
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 0.95  # not the 0.05 s of the backoff


def test_a_410_stops_the_deliveries_at_once(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(410)
    with hooked(tmp_path, receiver.url()) as server:
        abort_a_rollout(server)
        (row,) = wait_until(server, all_in("failed"))
    assert len(receiver.wait_for(1)) == 1
    assert (row["attempts"], row["last_status"]) == (1, 410)
    assert "Gone" in row["last_error"]


# --- the outbox survives restarts ---------------------------------------------------------------


def test_a_pending_delivery_is_sent_by_the_next_server(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(503)
    with hooked(tmp_path, receiver.url(), webhook_max_attempts=1000) as server:
        abort_a_rollout(server)
        wait_until(server, lambda rows: len(rows) == 1 and rows[0]["attempts"] >= 1)
    # stopped; the receiver comes back, and another server opens the same database file
    with receiver.changed:
        refused = len(receiver.requests)
        receiver.statuses = [503] * refused + [204]
    (row,) = deliveries_of(tmp_path, receiver)
    arrived = receiver.wait_for(refused + 1)
    assert [r.answered for r in arrived] == [503] * refused + [204]
    assert {r.headers["webhook-id"] for r in arrived} == {row["message_id"]}
    assert row["attempts"] == refused + 1
    assert verify(SECRET, arrived[-1].body, arrived[-1].headers) is not None


def deliveries_of(directory: Path, receiver: Receiver) -> list[dict[str, Any]]:
    with hooked(directory, receiver.url()) as again:
        return wait_until(again, all_in("delivered"))


def test_a_url_taken_out_of_the_settings_gets_nothing_more(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    old, new = receivers(503), receivers(204)
    with hooked(tmp_path, old.url(), webhook_max_attempts=1000) as server:
        abort_a_rollout(server)
        wait_until(server, lambda rows: len(rows) == 1 and rows[0]["attempts"] >= 1)
    sent = len(old.requests)
    with hooked(tmp_path, new.url()) as server:
        (row,) = wait_until(server, all_in("failed"))
        abort_a_rollout(server, "fraud-model-2")
        delivered = wait_until(server, lambda rows: rows[0]["state"] == "delivered")[0]
    assert row["last_error"] == "its endpoint is no longer in ROLLWISE_WEBHOOK_URLS"
    assert len(old.requests) == sent
    assert [json.loads(r.body)["flag"] for r in new.wait_for(1)] == ["fraud-model-2"]
    assert delivered["endpoint"] == f"http://127.0.0.1:{new.port}"


# --- secrecy ------------------------------------------------------------------------------------


def test_the_log_and_the_api_never_show_a_urls_path_query_or_user(
    tmp_path: Path, receivers: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receivers(500)
    secret_parts = ["hookuser", "hookpass", "T0PSECRET-path", "Q-SECRET", "S3CRET-closed", "Q2-K"]
    answering = f"http://hookuser:hookpass@127.0.0.1:{receiver.port}/T0PSECRET-path?token=Q-SECRET"
    closed = free_port()
    refusing = f"http://127.0.0.1:{closed}/S3CRET-closed/x?k=Q2-K"
    caplog.set_level(logging.DEBUG, logger="rollwise")
    with hooked(tmp_path, answering, refusing, webhook_max_attempts=2) as server:
        abort_a_rollout(server)
        rows = wait_until(server, all_in("failed", 2))
        listed = CliRunner().invoke(
            main, ["webhooks", "list"],
            env={"ROLLWISE_URL": server.url, "ROLLWISE_TOKEN": server.admin_token},
        )  # fmt: skip
        raw = server.session().get(f"{server.url}{DELIVERIES}").text
    assert listed.exit_code == 0, listed.output
    assert receiver.wait_for(2)[0].path == "/T0PSECRET-path?token=Q-SECRET"  # the URL was used
    by_label = {r["endpoint"]: r for r in rows}
    assert set(by_label) == {f"http://127.0.0.1:{receiver.port}", f"http://127.0.0.1:{closed}"}
    assert by_label[f"http://127.0.0.1:{receiver.port}"]["last_error"] == "HTTP 500"
    assert by_label[f"http://127.0.0.1:{closed}"]["last_error"].startswith("connection failed")
    for label in by_label:
        assert label in caplog.text  # the failures were logged, by scheme, host and port
        assert label in listed.output
    for part in secret_parts:
        assert part not in caplog.text
        assert part not in raw
        assert part not in listed.output
    assert "failed for good" in caplog.text


def test_redact_keeps_only_scheme_host_and_port() -> None:
    assert (
        redact("https://u:p@Hooks.Example.com:8443/a/b?c=d#e") == "https://hooks.example.com:8443"
    )
    assert redact("http://[::1]:9/x") == "http://[::1]:9"
    assert redact("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com"


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "required when ROLLWISE_WEBHOOK_URLS is set"),
        ("s3cret-but-not-a-whsec", "must be a Standard Webhooks secret"),
        ("whsec_" + base64.b64encode(b"sixteen bytes!!!").decode(), "decodes to 16 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "decodes to 65 bytes"),
        ("whsec_not*base64*at*all", "is not base64"),
    ],
    ids=["empty", "not-whsec", "too-short", "too-long", "not-base64"],
)
def test_webhook_urls_need_a_valid_secret(secret: str, problem: str) -> None:
    environ = {
        "ROLLWISE_WEBHOOK_URLS": "https://hooks.example/x",
        "ROLLWISE_WEBHOOK_SECRET": secret,
    }
    with pytest.raises(ConfigurationError, match=r"^ROLLWISE_WEBHOOK_SECRET: ") as raised:
        Settings.from_env(environ)
    assert problem in str(raised.value)
    if secret:
        assert secret not in str(raised.value)  # a secret is never echoed


def test_the_accepted_secret_forms() -> None:
    urls = "https://hooks.example/x"
    for size in (24, 32, 64):
        key = bytes(range(size))
        padded = "whsec_" + base64.b64encode(key).decode()
        assert Settings(webhook_urls=urls, webhook_secret=padded).webhook_secret == padded
        Settings(webhook_urls=urls, webhook_secret=padded.rstrip("="))  # padding optional
    assert new_secret().startswith("whsec_")
    assert Settings(webhook_urls="", webhook_secret="").webhook_urls == ""  # no URLs: no secret
    with pytest.raises(ConfigurationError, match="ROLLWISE_WEBHOOK_SECRET"):
        Settings(webhook_secret="typo")  # noqa: S106 - checked even without URLs


@pytest.mark.parametrize(
    ("urls", "problem"),
    [
        ("ftp://u:pw@host/SECRET", "entry 1 (ftp://host) must start with http:// or https://"),
        ("https://ok.example/a, https:///SECRET", "entry 2 ((an unreadable URL)) has no host"),
        ("https://host/SEC RET", "entry 1 (https://host) has spaces or control characters"),
    ],
)
def test_bad_webhook_urls_are_named_without_their_secrets(urls: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^ROLLWISE_WEBHOOK_URLS: ") as raised:
        Settings(webhook_urls=urls, webhook_secret=SECRET)
    assert problem in str(raised.value)
    assert "SECRET" not in str(raised.value).replace("ROLLWISE_WEBHOOK", "")


def test_the_server_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    db = tmp_path / "rollwise.db"
    env = {"ROLLWISE_WEBHOOK_URLS": "https://hooks.example/x", "ROLLWISE_WEBHOOK_SECRET": "",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    refused = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "rollwise_server", "serve", "--port", "0", "--db", f"sqlite:///{db}"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("Error: ROLLWISE_WEBHOOK_SECRET: required when ")
    assert "Traceback" not in refused.stderr
    assert not db.exists()  # it stopped before opening the database


def test_retry_delays_double_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(first_delay=5.0, cap=3600.0)
    assert [policy.delay(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert [policy.delay(n, lambda: 0.0) for n in (1, 2, 3)] == [2.5, 5.0, 10.0]
    assert policy.delay(40, lambda: 1.0) == 3600.0
    assert policy.delay(10**6, lambda: 0.5) == 2700.0  # no overflow, however many attempts


# --- the API ------------------------------------------------------------------------------------


def test_the_deliveries_and_their_state_are_in_the_api(
    tmp_path: Path, receivers: Callable[..., Receiver]
) -> None:
    accepting, gone = receivers(204), receivers(410)
    with hooked(tmp_path, accepting.url(), gone.url()) as server:
        abort_a_rollout(server, "flag-a")
        abort_a_rollout(server, "flag-b")
        rows = wait_until(server, lambda rows: len(rows) == 4 and all(
            r["state"] != "pending" for r in rows))  # fmt: skip
        assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
        page = server.session().get(f"{server.url}{DELIVERIES}").json()
        document = openapi_document()
        schema = {"$ref": "#/components/schemas/WebhookDeliveryPage", **document}
        jsonschema.Draft202012Validator(schema).validate(page)  # the documented shape
        delivered = deliveries(server, state="delivered")
        failed = deliveries(server, state="failed")
        assert [r["endpoint"] for r in delivered] == [f"http://127.0.0.1:{accepting.port}"] * 2
        assert [r["body"]["flag"] for r in delivered] == ["flag-b", "flag-a"]
        assert [r["last_status"] for r in failed] == [410, 410]
        assert deliveries(server, state="pending") == []
        assert len(deliveries(server, event="rollout.aborted")) == 4
        assert deliveries(server, event="rollout.rollback") == []
        # one message per event, delivered to each endpoint under the same webhook-id
        assert {r["message_id"] for r in delivered} == {r["message_id"] for r in failed}
        seen, before = [], None
        while True:  # pages of one, newest first
            page = (
                server.session()
                .get(f"{server.url}{DELIVERIES}", params={"limit": 1, "before": before})
                .json()
            )
            seen += [r["id"] for r in page["deliveries"]]
            before = page["next_before"]
            if before is None:
                break
        assert seen == [r["id"] for r in rows]
        for params, name in (({"state": "lost"}, "state"), ({"limit": 0}, "limit"),
                             ({"limit": "x"}, "limit"), ({"before": -1}, "before")):  # fmt: skip
            bad = server.session().get(f"{server.url}{DELIVERIES}", params=params)
            assert bad.status_code == 400, params
            assert bad.json()["detail"].startswith(f"{name}: ")
        for role in ("editor", "approver", "viewer"):
            denied = server.session(server.token(role)).get(f"{server.url}{DELIVERIES}")
            assert denied.status_code == 403, role
        env = {"ROLLWISE_URL": server.url, "ROLLWISE_TOKEN": server.admin_token}
        listed = CliRunner().invoke(main, ["webhooks", "list", "--state", "failed"], env=env)
        as_json = CliRunner().invoke(main, ["webhooks", "list", "--json", "--limit", "1"], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("410 Gone") == 2
    assert f"http://127.0.0.1:{gone.port}" in listed.output
    assert "delivered" not in listed.output
    assert json.loads(as_json.output)["next_before"] == rows[0]["id"]


def test_rollwise_webhooks_secret_prints_a_usable_secret() -> None:
    result = CliRunner().invoke(main, ["webhooks", "secret"])
    assert result.exit_code == 0
    secret = result.output.strip()
    assert Settings(webhook_urls="https://hooks.example/x", webhook_secret=secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_notify_has_written_the_event_when_it_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No worker, no server: the rows are on disk before ``notify`` returns, one per URL."""
    db = str(tmp_path / "rollwise.db")
    store = open_store(db)
    webhooks = Webhooks(store, "https://a.example/x?k=1, https://b.example/y")
    message_id = webhooks.notify("rollout.pause", "paused", {"env": "production", "flag": "f"})
    store.close()
    reopened = open_store(db)  # another connection, as a restarted server would open
    try:
        rows = reopened.webhook_deliveries(WebhookQuery())
    finally:
        reopened.close()
    assert [(r.endpoint_label, r.state, r.attempts) for r in rows] == [
        ("https://b.example", "pending", 0),
        ("https://a.example", "pending", 0),
    ]
    assert {r.message_id for r in rows} == {message_id}
    assert json.loads(rows[0].body)["type"] == "rollout.pause"
    # a store that cannot be written: nothing raises, the loss is logged
    assert webhooks.notify("rollout.pause", "paused", {}) is None
    assert "could not be queued" in caplog.text
    assert Webhooks(store).notify("rollout.pause", "paused", {}) is None  # no URL: no row

"""The online client's connection: truthful ``status().connection``, one log line per state
change, the server's ``retry:`` field, and "not ready yet" apart from "unknown flag".

Real servers on 127.0.0.1: the real one (in a thread, or a child process that can be killed),
or ``FaultServer`` where a stream must carry a ``retry:`` field or end on cue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

import rollwise
from rollwise.config import ClientConfig
from rollwise.sse import SSEEvent
from rollwise.sync import reconnect_delay
from rollwise.transport import RequestsTransport, Stream
from rollwise_server.testing import LiveServer, ServerProcess, free_port
from tests.sdk.faultserver import FaultServer
from tests.sdk.test_online import set_enabled, wait_for
from tests.server.conftest import EU_SEGMENT, example_flag

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"
QA = {"user_id": "u1"}


class Transports:
    """A ``transport=`` factory: the real ``RequestsTransport``, counting its rules fetches.

    ``gate`` holds every fetch back until it is set (it starts set); ``broken_streams`` makes
    the streams it opens fail the way the stream code failed on urllib3 1.26 (a bug, which no
    real server can provoke).
    """

    def __init__(self, *, broken_streams: bool = False) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fetches = 0
        self.broken_streams = broken_streams

    def __call__(self, config: ClientConfig) -> RequestsTransport:
        transport = RequestsTransport(config)
        fetch_rules, open_stream = transport.fetch_rules, transport.open_stream

        def fetch(etag: str | None) -> Any:
            self.gate.wait(30)
            self.fetches += 1
            return fetch_rules(etag)

        def stream(last_event_id: str | None) -> Stream:
            opened = open_stream(last_event_id)
            return _BrokenStream(opened) if self.broken_streams else opened

        transport.fetch_rules = fetch  # type: ignore[method-assign]
        transport.open_stream = stream  # type: ignore[method-assign]
        return transport


class _BrokenStream:
    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def events(self) -> Iterator[SSEEvent]:
        raise AttributeError("'HTTPResponse' object has no attribute 'read1'")

    def close(self) -> None:
        self._stream.close()


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rollwise" and r.levelno >= level]


def urllib3_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]


def sdk_key(server: LiveServer) -> str:
    return server.token("sdk", env="production")


def _document(revision: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    doc["revision"] = revision
    return doc


# --- the stream on any urllib3 ---


def test_the_stream_works_without_urllib3_read1(
    server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """urllib3 1.26 (which requests>=2.32 allows), 2.0 and 2.1 have no ``HTTPResponse.read1``."""
    monkeypatch.delattr(urllib3.response.HTTPResponse, "read1")
    monkeypatch.delattr(urllib3.response.BaseHTTPResponse, "read1")
    caplog.set_level(logging.INFO)
    with rollwise.Client(
        server.url, sdk_key(server), cache_dir=tmp_path, poll_interval=600, max_backoff=0.2
    ) as client:
        assert client.wait_until_ready(10)
        assert wait_for(lambda: client.status().connection == "streaming")
        set_enabled(server, False)  # with polling every 10 minutes, only the stream can bring it
        assert wait_for(lambda: client.variant("fraud-model", QA) == "v1", 10)
        assert client.status().connection == "streaming"
    assert messages(caplog, logging.WARNING) == []


def test_a_stream_that_keeps_failing_is_not_called_streaming(
    server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transports = Transports(broken_streams=True)
    caplog.set_level(logging.INFO)
    with rollwise.Client(
        server.url, sdk_key(server), cache_dir=tmp_path, transport=transports,
        poll_interval=0.2, max_backoff=0.1,
    ) as client:  # fmt: skip
        assert wait_for(lambda: client.status().connection == "polling")
        assert "read1" in (client.status().last_error or "")
        fetches = transports.fetches
        assert wait_for(lambda: transports.fetches >= fetches + 6)  # more polls, more attempts
        assert wait_for(lambda: client.status().connection == "polling")
    failures = [r for r in caplog.records if r.name == "rollwise" and r.exc_info]
    assert len(failures) == 1  # the traceback once, not once per attempt
    assert "restarting" not in caplog.text
    polling = [m for m in messages(caplog) if "polling" in m]
    assert len(polling) == 1, messages(caplog)
    assert "read1" in polling[0]


def test_without_read1_a_stream_that_is_not_chunked_is_polled_instead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """Before 2.2, urllib3 cannot read an unchunked stream as it arrives: the client says so."""
    monkeypatch.delattr(urllib3.response.HTTPResponse, "read1")
    monkeypatch.delattr(urllib3.response.BaseHTTPResponse, "read1")
    caplog.set_level(logging.INFO)
    with (
        FaultServer(_document(1)) as server,  # its streams end with the connection, unchunked
        rollwise.Client(
            server.url, "rw_key", cache_dir=tmp_path, poll_interval=0.1, max_backoff=0.1
        ) as client,
    ):
        assert wait_for(lambda: client.status().connection == "polling")
        assert "install urllib3>=2" in (client.status().last_error or "")
    (polling,) = [m for m in messages(caplog) if "polling" in m]
    assert "install urllib3>=2" in polling
    assert not [r for r in caplog.records if r.exc_info]


def test_a_stream_that_ends_quickly_falls_back_to_polling_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """Tries of the stream while polling say nothing until one has lasted (60 s; 1 s here)."""
    monkeypatch.setattr(rollwise.sync, "_STREAM_WORKED", 1.0)
    caplog.set_level(logging.INFO)
    with FaultServer(_document(1)) as server:
        server.stream_once = True
        server.heartbeats = True

        def streams() -> int:
            return sum(1 for _, path in server.arrivals if path.startswith("/api/v1/sdk/stream"))

        with rollwise.Client(
            server.url, "rw_key", cache_dir=tmp_path, poll_interval=0.1, max_backoff=0.1
        ) as client:
            assert wait_for(lambda: client.status().connection == "polling")
            tried = streams()
            assert wait_for(lambda: streams() >= tried + 3)  # three more tries, each cut short
            assert [m for m in messages(caplog) if "streaming" in m][1:] == []
            server.stream_once = False  # the next try lasts, with a heartbeat every 0.2 s
            assert wait_for(lambda: len([m for m in messages(caplog) if "streaming" in m]) == 2)
            assert client.status().connection == "streaming"
    lines = messages(caplog)
    assert len([m for m in lines if "polling" in m]) == 1, lines
    assert len([m for m in lines if "streaming" in m]) == 2, lines


def test_close_wakes_a_reader_of_a_stream_that_is_not_chunked(tmp_path: Path) -> None:
    """Such a response has taken the socket from its connection: close() still finds it."""
    with FaultServer(_document(1)) as server:  # its streams are unchunked and stay open 30 s
        client = rollwise.Client(server.url, "rw_key", cache_dir=tmp_path)
        assert client.wait_until_ready(10)
        fetched = client.status().last_sync
        # the stream's first event read: the sync thread then waits in a read for the next
        assert wait_for(lambda: client.status().last_sync != fetched)
        started = time.monotonic()
        client.close()  # the server would keep the stream open another 30 s
        assert time.monotonic() - started < 5
        assert "rollwise-rules-sync" not in {t.name for t in threading.enumerate()}


# --- one log line per state change ---


def _prepare(process: ServerProcess) -> str:
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {process.admin_token}"
    base = f"{process.url}/api/v1/envs/production"
    admin.post(f"{base}/segments", json=EU_SEGMENT).raise_for_status()
    admin.post(f"{base}/flags", json=example_flag()).raise_for_status()
    response = admin.post(
        f"{process.url}/api/v1/tokens", json={"name": "app", "role": "sdk", "env": "production"}
    )
    return str(response.json()["token"])


def test_an_outage_is_one_warning_and_the_recovery_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    process = ServerProcess(tmp_path / "server")
    process.start()
    transports = Transports()
    caplog.set_level(logging.INFO)
    try:
        key = _prepare(process)
        with rollwise.Client(
            process.url, key, cache_dir=tmp_path / "cache", transport=transports,
            max_backoff=0.2, connect_timeout=0.5,
        ) as client:  # fmt: skip
            assert wait_for(lambda: client.status().connection == "streaming")
            process.kill()
            assert wait_for(lambda: client.status().connection == "disconnected")
            fetches = transports.fetches
            assert wait_for(lambda: transports.fetches >= fetches + 5)  # five more attempts
            assert client.status().connection == "disconnected"
            assert "unreachable" in (client.status().last_error or "")
            for i in range(3):  # three attempts to send events: one line too
                client.track("clicked", f"user-{i}", 1)
                assert not client.flush(0.3)
            assert urllib3_records(caplog) == []  # no "Retrying (Retry(total=1...))" lines
            warnings = messages(caplog, logging.WARNING)
            assert len(warnings) == 2, warnings
            assert "serving rules revision 2 received from the server" in warnings[0]
            assert "events are kept until it is back" in warnings[1]
            process.start()
            assert wait_for(lambda: client.status().connection == "streaming", 15)
            assert client.flush(10)
    finally:
        process.stop()
    streaming = [m for m in messages(caplog) if "streaming" in m]
    assert len(streaming) == 2, messages(caplog)  # connected, then connected again
    assert "after" in streaming[1]
    assert "rollwise: the flag server takes events again" in messages(caplog)
    assert len(messages(caplog, logging.WARNING)) == 2


def test_an_unreachable_server_without_rules_says_defaults_are_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transports = Transports()
    caplog.set_level(logging.INFO)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with rollwise.Client(
        url, "rw_key", cache_dir=None, transport=transports, max_backoff=0.1, connect_timeout=0.5
    ) as client:
        assert wait_for(lambda: client.status().connection == "disconnected")
        assert wait_for(lambda: transports.fetches >= 5)
    assert urllib3_records(caplog) == []
    (warning,) = messages(caplog, logging.WARNING)
    assert "unreachable" in warning
    assert "no rules yet: every flag serves the caller's default" in warning
    assert "last good" not in caplog.text


def test_a_rejected_key_without_rules_says_defaults_are_served(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    transports = Transports()
    caplog.set_level(logging.INFO)
    with rollwise.Client(
        server.url, "rw_wrong", cache_dir=None, transport=transports, poll_interval=0.1
    ) as client:
        assert wait_for(lambda: client.status().connection == "unauthorized")
        assert wait_for(lambda: transports.fetches >= 4)
        assert client.status().connection == "unauthorized"
        assert "401" in (client.status().last_error or "")
    (line,) = messages(caplog, logging.WARNING)
    assert "rejected the SDK key" in line
    assert "no rules yet: every flag serves the caller's default" in line
    assert "last good" not in caplog.text


def test_a_revoked_key_with_a_disk_cache_says_what_it_serves(
    server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    admin = server.session()
    created = admin.post(
        f"{server.url}/api/v1/tokens", json={"name": "app", "role": "sdk", "env": "production"}
    ).json()
    key, token_id = created["token"], created["id"]
    with rollwise.Client(server.url, key, cache_dir=tmp_path) as client:
        assert client.wait_until_ready(10)
    admin.delete(f"{server.url}/api/v1/tokens/{token_id}").raise_for_status()
    caplog.set_level(logging.INFO)
    with rollwise.Client(server.url, key, cache_dir=tmp_path, poll_interval=0.1) as client:
        assert wait_for(lambda: client.status().connection == "unauthorized")
        assert client.variant("fraud-model", QA) == "v2"
    (line,) = messages(caplog, logging.WARNING)
    assert "rejected the SDK key" in line
    assert "serving rules revision 2 from the disk cache" in line


# --- "not ready yet" is not "unknown flag" ---


def test_before_the_first_rules_a_flag_is_not_ready_not_unknown(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    transports = Transports()
    transports.gate.clear()  # the first fetch waits
    caplog.set_level(logging.INFO)
    with rollwise.Client(server.url, sdk_key(server), cache_dir=None, transport=transports) as c:
        assert c.status().connection == "connecting"
        for _ in range(100):
            result = c.evaluate("fraud-model", QA, default="safe")
            assert (result.variant, result.reason, result.error_code) == (
                "safe", rollwise.Reason.ERROR, rollwise.ErrorCode.PROVIDER_NOT_READY,
            )  # fmt: skip
            assert c.variant("fraud-model", QA, default="safe") == "safe"
        (line,) = messages(caplog)
        assert "no rules yet" in line
        assert "unknown" not in caplog.text
        transports.gate.set()
        assert c.wait_until_ready(10)
        assert c.evaluate("fraud-model", QA).reason is rollwise.Reason.TARGETING_MATCH
        missing = c.evaluate("no-such-flag", QA)
        assert missing.error_code is rollwise.ErrorCode.FLAG_NOT_FOUND
        c.evaluate("no-such-flag", QA)
    assert [m for m in messages(caplog) if "unknown flag" in m] == [
        "rollwise: unknown flag 'no-such-flag'; serving the default None"
    ]


def test_an_unknown_flag_before_the_server_answers_says_so(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With bootstrap rules that lack the flag, the server may still have it: the line says so."""
    transports = Transports()
    transports.gate.clear()
    caplog.set_level(logging.INFO)
    with rollwise.Client(
        server.url, sdk_key(server), cache_dir=None, transport=transports, bootstrap=EXAMPLE
    ) as client:
        assert client.evaluate("ranker", QA).error_code is rollwise.ErrorCode.FLAG_NOT_FOUND
        (line,) = messages(caplog)
        assert "unknown flag 'ranker' in rules revision 12 from the bootstrap document" in line
        assert "the server has not answered yet" in line
        transports.gate.set()
        assert client.wait_until_ready(10)
        client.evaluate("ranker", QA)
    assert "rollwise: unknown flag 'ranker'; serving the default None" in messages(caplog)


# --- the server's retry: field ---


def _gap_after_first_stream(server: FaultServer) -> float:
    """Seconds from the server ending the first stream to the client's next request."""
    assert wait_for(lambda: len(server.streams_ended) >= 1 and len(server.arrivals) >= 3, 15)
    ended = server.streams_ended[0]
    return min(at for at, _ in server.arrivals if at > ended) - ended


def test_the_servers_retry_field_sets_the_reconnection_delay(tmp_path: Path) -> None:
    with FaultServer(_document(1)) as server:
        server.retry_ms = 1500
        server.stream_once = True
        with rollwise.Client(server.url, "rw_key", cache_dir=tmp_path, max_backoff=30):
            gap = _gap_after_first_stream(server)
    # at least what the server asked for, at most 50% more (the jitter), plus scheduling slack
    assert 1.5 <= gap < 1.5 * 1.5 + 2.0


def test_a_retry_field_beyond_max_backoff_is_capped(tmp_path: Path) -> None:
    with FaultServer(_document(1)) as server:
        server.retry_ms = 3_600_000  # an hour
        server.stream_once = True
        with rollwise.Client(server.url, "rw_key", cache_dir=tmp_path, max_backoff=0.5):
            gap = _gap_after_first_stream(server)
    assert gap < 0.5 + 2.0  # not an hour


def test_the_reconnection_delay() -> None:
    def low() -> float:
        return 0.0

    def high() -> float:
        return 0.999999

    # the first retry waits the base (the server's retry:, or 0.5 s), up to 50% more
    assert reconnect_delay(0, base=1.5, cap=30, rng=low) == 1.5
    assert reconnect_delay(0, base=1.5, cap=30, rng=high) == pytest.approx(2.25)
    # each further failure doubles it, never past the cap
    assert [reconnect_delay(n, base=0.5, cap=30, rng=low) for n in range(8)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0,
    ]  # fmt: skip
    assert reconnect_delay(10_000, base=0.5, cap=30, rng=high) == 30.0
    # a base beyond the cap is the cap
    assert reconnect_delay(0, base=3600, cap=30, rng=low) == 30.0

"""``rollwise.aio.AsyncClient`` against a real server: ready, streamed changes, events stored
once, a server down at start, a clean close, and an event loop that never stalls."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import requests

import rollwise
from rollwise.aio import AsyncClient
from rollwise_server.testing import LiveServer, ServerProcess, bootstrap_token, connect
from tests.sdk.test_online import QA, set_enabled
from tests.server.conftest import EU_SEGMENT, example_flag

BOOTSTRAP = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fraud-model.json"


def run(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a test's coroutine on a fresh event loop (no asyncio plugin for pytest needed)."""
    asyncio.run(coroutine())


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds (checked every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def make_client(server: LiveServer, tmp_path: Path, **options: Any) -> AsyncClient:
    key = server.token("sdk", env="production")
    options.setdefault("cache_dir", tmp_path / "cache")
    options.setdefault("flush_interval", 0.05)
    return AsyncClient(server.url, key, **options)


def test_ready_after_start_then_a_change_arrives_over_the_stream(
    server: LiveServer, tmp_path: Path
) -> None:
    async def main() -> None:
        client = make_client(server, tmp_path)
        assert client.status().connection == "connecting"  # built: no I/O, no task yet
        assert client.variant("fraud-model", QA, default="safe") == "safe"
        async with client:
            assert await client.wait_until_ready(10)
            assert client.variant("fraud-model", QA) == "v2"
            assert (client.status().origin, client.status().revision) == ("server", 2)
            assert await until(lambda: client.status().connection == "streaming")
            loop = asyncio.get_running_loop()
            changed = asyncio.Event()
            client.on_change(lambda change: loop.call_soon_threadsafe(changed.set))
            revision = await asyncio.to_thread(set_enabled, server, False)
            await asyncio.wait_for(changed.wait(), 10)
            assert client.variant("fraud-model", QA) == "v1"
            assert client.evaluate("fraud-model", QA).reason is rollwise.Reason.DISABLED
            assert client.status().revision == revision
            assert client.status().connection == "streaming"  # no poll: the stream brought it

    run(main)


def test_polling_when_streaming_is_off(server: LiveServer, tmp_path: Path) -> None:
    async def main() -> None:
        async with make_client(server, tmp_path, streaming=False, poll_interval=0.1) as client:
            assert await client.wait_until_ready(10)
            await asyncio.to_thread(set_enabled, server, False)
            assert await until(lambda: client.variant("fraud-model", QA) == "v1")
            assert client.status().connection == "polling"

    run(main)


def test_exposures_and_outcomes_reach_the_server_exactly_once(
    server: LiveServer, tmp_path: Path
) -> None:
    async def main() -> dict[str, Any]:
        async with make_client(server, tmp_path) as client:
            assert await client.wait_until_ready(10)
            for i in range(2000):
                context = {"user_id": f"user-{i}", "country": "DE", "amount": 100}
                client.variant("fraud-model", context)
                client.variant("fraud-model", context)  # a repeat: de-duplicated
                client.track("fraud_caught", f"user-{i}", i % 4 == 0, attrs={"country": "DE"})
            client.track("latency_ms", "user-1", float("nan"))  # invalid: ignored, never raises
            assert await client.flush(20)
            stats = client.stats()
            assert await client.flush(1)  # nothing left: a second flush sends nothing again
        return stats

    stats = asyncio.run(main())
    with connect(server.db) as db:
        exposures = db.execute("SELECT count(*), count(DISTINCT unit) FROM exposures").fetchone()
        outcomes = db.execute("SELECT count(*), sum(value) FROM outcomes").fetchone()
    assert exposures == (2000, 2000)
    assert outcomes == (2000, 500)
    assert (stats["exposures_sent"], stats["exposures_duplicated"]) == (2000, 2000)
    assert (stats["outcomes_sent"], stats["outcomes_tracked"]) == (2000, 2000)
    assert stats["events_duplicates_at_server"] == 0
    assert stats["evaluations"] == 4000


def test_a_client_closed_without_starting_still_sends_its_events(
    server: LiveServer, tmp_path: Path
) -> None:
    """Evaluation works before ``start()``: what it exposed is not lost at ``close()``."""

    async def main() -> None:
        client = make_client(server, tmp_path, bootstrap=BOOTSTRAP)
        for i in range(50):
            client.variant("fraud-model", {"user_id": f"u-{i}", "country": "DE", "amount": 10})
        assert client.stats()["exposures_queued"] > 0
        await client.close()
        assert client.stats()["exposures_queued"] == 0

    run(main)
    with connect(server.db) as db:
        stored = db.execute("SELECT count(*) FROM exposures").fetchone()[0]
    bootstrap = rollwise.Client.offline(BOOTSTRAP)
    exposed = sum(
        bootstrap.evaluate(
            "fraud-model", {"user_id": f"u-{i}", "country": "DE", "amount": 10}
        ).reason
        is rollwise.Reason.SPLIT
        for i in range(50)
    )
    assert stored == exposed > 0


def test_a_cancelled_close_is_not_swallowed(server: LiveServer, tmp_path: Path) -> None:
    """A timeout around ``close()`` cancels it, even while it waits for a sender that is slow
    to end: the cancellation reaches the caller instead of being taken for the sender's."""

    async def main() -> None:
        client = make_client(server, tmp_path, close_timeout=0.2)
        await client.start()
        assert await client.wait_until_ready(10)
        gate = asyncio.Event()

        async def slow_to_stop(step: Any) -> Any:
            while not gate.is_set():  # a send that outlives one cancellation, as a slow
                try:  # network call's cleanup can
                    await gate.wait()
                except asyncio.CancelledError:
                    continue
            return None

        client._online.sender._perform = slow_to_stop  # type: ignore[method-assign]
        client.variant("fraud-model", {"user_id": "u-1", "country": "DE", "amount": 10})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.close(), 1.0)
        gate.set()  # let the sender end, so that the loop closes cleanly

    run(main)


def test_server_down_at_start_serves_defaults_then_becomes_ready(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "server")  # its database and port, not running yet
    key = bootstrap_token(process.db, role="sdk", name="app", env="production")

    async def main() -> None:
        options: dict[str, Any] = {"connect_timeout": 0.5, "max_backoff": 0.5}
        async with AsyncClient(process.url, key, cache_dir=tmp_path / "cache", **options) as c:
            assert c.variant("fraud-model", QA, default="safe") == "safe"
            result = c.evaluate("fraud-model", QA, default="safe")
            assert result.error_code is rollwise.ErrorCode.PROVIDER_NOT_READY
            assert await until(lambda: c.status().connection == "disconnected")
            assert "unreachable" in (c.status().last_error or "")
            assert not await c.wait_until_ready(0.1)
            await asyncio.to_thread(process.start)
            admin = requests.Session()
            admin.headers["Authorization"] = f"Bearer {process.admin_token}"
            base = f"{process.url}/api/v1/envs/production"
            for path, body in (("segments", EU_SEGMENT), ("flags", example_flag())):
                response = await asyncio.to_thread(admin.post, f"{base}/{path}", json=body)
                response.raise_for_status()
            assert await c.wait_until_ready(15)
            assert await until(lambda: c.variant("fraud-model", QA) == "v2", 15)
            assert c.status().origin == "server"

    try:
        run(main)
    finally:
        process.stop()


def test_bootstrap_serves_before_the_first_answer() -> None:
    async def main() -> None:
        client = AsyncClient(
            "http://127.0.0.1:9", "rw_nothing", bootstrap=BOOTSTRAP, cache_dir=None
        )
        async with client:
            assert client.variant("fraud-model", QA) == "v2"
            status = client.status()
            assert (status.origin, status.revision, status.ready) == ("bootstrap", 12, False)

    run(main)


def test_close_is_idempotent_and_leaves_no_task(server: LiveServer, tmp_path: Path) -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        client = await make_client(server, tmp_path).start()
        assert await client.start() is client  # a second start is a no-op
        assert await client.wait_until_ready(10)
        assert await until(lambda: client.status().connection == "streaming")
        tasks = {task.get_name() for task in asyncio.all_tasks() - before}
        assert tasks == {"rollwise-rules-sync", "rollwise-event-sender"}
        client.track("clicked", "u1", 1)
        await asyncio.gather(client.close(), client.close())  # concurrent closes: one close
        await client.close()
        assert asyncio.all_tasks() == before
        assert client.status().connection == "closed"
        assert client.stats()["outcomes_sent"] == 1  # close() flushed
        assert client.variant("fraud-model", QA) == "v2"  # evaluation keeps working
        with pytest.raises(rollwise.RollwiseError, match="closed"):
            await client.start()

    run(main)


def test_a_bad_sdk_key_is_reported(server: LiveServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, "rw_wrong", cache_dir=None) as client:
            started = time.monotonic()
            assert not await client.wait_until_ready(60)  # refused: no waiting in vain
            assert time.monotonic() - started < 30
            assert client.status().connection == "unauthorized"
            assert "401" in (client.status().last_error or "")
            assert client.variant("fraud-model", QA, default="safe") == "safe"

    run(main)


def test_the_event_loop_never_waits_for_the_client(server: LiveServer, tmp_path: Path) -> None:
    """A coroutine that ticks every 5 ms keeps ticking while the client connects, streams a
    change and sends 6,000 events; the sync client waiting on the loop stalls it (so the check
    can fail)."""

    async def longest_stall(work: Callable[[], Coroutine[Any, Any, None]]) -> float:
        gaps = [0.0]
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)  # ticking
        try:
            await work()
        finally:
            done.set()
            await ticking
        return max(gaps)

    async def asynchronous() -> None:
        async with make_client(server, tmp_path, flush_interval=0.01) as client:
            assert await client.wait_until_ready(10)
            changed = asyncio.Event()
            loop = asyncio.get_running_loop()
            client.on_change(lambda change: loop.call_soon_threadsafe(changed.set))
            await asyncio.to_thread(set_enabled, server, False)
            await asyncio.wait_for(changed.wait(), 10)
            for i in range(3000):
                client.variant("fraud-model", {"user_id": f"a-{i}", "country": "DE", "amount": 1})
                client.track("clicked", f"a-{i}", 1)
                if i % 100 == 0:
                    await asyncio.sleep(0)  # a request handler yields now and then
            assert await client.flush(20)

    async def blocking() -> None:  # what the issue saw: the sync client called on the loop
        with rollwise.Client("http://127.0.0.1:9", "rw_nothing", cache_dir=None) as client:
            assert not client.wait_until_ready(0.3)  # the loop stands still meanwhile

    async def main() -> tuple[float, float]:
        return await longest_stall(asynchronous), await longest_stall(blocking)

    asynchronous_stall, blocking_stall = asyncio.run(main())
    assert asynchronous_stall < 0.25, asynchronous_stall
    assert blocking_stall >= 0.3, blocking_stall


def test_importing_rollwise_aio_without_httpx_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "try:\n    import rollwise.aio\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    output = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'rollwise[aio]'" in output


def test_evaluation_is_the_sync_clients_code() -> None:
    assert AsyncClient.variant is rollwise.Client.variant
    assert AsyncClient.evaluate is rollwise.Client.evaluate
    assert not any(
        inspect.iscoroutinefunction(getattr(AsyncClient, name))
        for name in ("variant", "evaluate", "shadow", "track", "status", "stats")
    )


def test_from_env_reads_the_variables(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLWISE_URL", server.url)
    monkeypatch.setenv("ROLLWISE_SDK_KEY", server.token("sdk", env="production"))
    monkeypatch.setenv("ROLLWISE_STREAMING", "off")

    async def main() -> None:
        async with AsyncClient.from_env(cache_dir=tmp_path, poll_interval=0.1) as client:
            assert await client.wait_until_ready(10)
            assert client.status().connection == "polling"  # the variable, read
            assert client.variant("fraud-model", QA) == "v2"

    run(main)

"""Benchmark of change delivery to many SSE streams (``GET /api/v1/sdk/stream``, issue 3).

What it measures: ``--streams`` (500) SDK streams are connected to the server (a child process,
``python -m rollwise_server serve`` on a fresh SQLite database with ``--flags`` flags); then the
admin API changes one flag ``--changes`` (20) times, one change at a time. For each change and
each stream, the delivery latency is the time from the admin write to that stream having
received the complete ``rules`` event carrying the new revision. Two clocks bracket it:

- *from the write returning* (the issue's definition): the admin ``PUT`` answered; can be
  negative, since the server wakes the streams before it answers the ``PUT``;
- *from the write sent*: the ``PUT`` sent; includes the write's own transaction, an upper bound.

Reported: p50/p99/max over all deliveries (streams x changes), and per change the time until the
last stream had it (the fan-out's duration). Target (issue 3): p99 delivery < 500 ms.

How: the streams live in one separate process (uvloop when installed), each a keep-alive
connection on a raw asyncio socket that decodes the chunked body and splits SSE events itself
(cheaper than an HTTP client library, so the generator disturbs the figures less); the admin
writes come from this process, with ``requests``. Times are ``time.perf_counter()``
(CLOCK_MONOTONIC, shared by the processes of one machine). One change is made only after every
stream has the previous one (or ``--settle-timeout`` passed), so each change is timed alone.
The stream process handles the 500 events of one change one after another: its own share of the
latency is reported (its CPU time, and the spread of deliveries within a change). One stream's
events are checked in full (JSON parsed: the revision and the changed flag's description).

Run: ``.venv/bin/python benchmarks/bench_server_sse.py [--streams 500] [--changes 20]
[--json] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import requests

from bench_server_common import (
    ENV,
    CpuMeter,
    MachineMeter,
    add_run_arguments,
    admin_session,
    bench_flag,
    machine_meta,
    metric_value,
    percentiles,
    raise_nofile,
    running_server,
    sdk_token,
    seed_flags,
    server_env,
    wait_for_quiet,
)

STREAM = "/api/v1/sdk/stream"
TARGET_P99_MS = 500.0
FLAG = "bench-0"


class StreamClient:
    """The stream side, in its own process: ``count`` SSE connections on one event loop."""

    def __init__(self, host: str, port: int, token: str, count: int, pipe: Connection) -> None:
        self.host, self.port, self.count, self.pipe = host, port, count, pipe
        self.request = (
            f"GET {STREAM} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        self.received: dict[int, list[float]] = {}  # revision -> arrival times
        self.have: dict[int, int] = {}  # revision -> streams that received it
        self.first_revision: int | None = None
        self.expected_last: int | None = None
        self.checked: list[dict[str, Any]] = []  # stream 0's events, parsed
        self.problems: list[str] = []
        self.connected = 0
        self.cpu_at_ready: float | None = None
        self.done = asyncio.Event()

    def _arrived(self, index: int, revision: int, data: bytes, at: float) -> None:
        self.received.setdefault(revision, []).append(at)
        have = self.have[revision] = self.have.get(revision, 0) + 1
        if index == 0:
            event = json.loads(data)
            flag = event["document"]["flags"].get(FLAG, {})
            self.checked.append(
                {
                    "revision": event["revision"],
                    "document_revision": event["document"]["revision"],
                    "description": flag.get("description"),
                }
            )
        if have == self.count:
            if self.cpu_at_ready is None:
                times = os.times()
                self.cpu_at_ready = times.user + times.system
            self.pipe.send(("complete", revision))
            if self.expected_last is not None and revision >= self.expected_last:
                self.done.set()

    async def _stream(self, index: int, ready: asyncio.Semaphore) -> None:
        async with ready:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**22)
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        if status != b"200" or b"chunked" not in head.lower():
            self.problems.append(f"stream {index}: {head[:200]!r}")
            writer.close()
            return
        self.connected += 1
        clock = time.perf_counter
        buffer = b""
        try:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.problems.append(f"stream {index}: the server ended the stream")
                    return
                chunk = await reader.readexactly(size + 2)
                at = clock()
                buffer += chunk[:-2]
                while b"\r\n\r\n" in buffer:
                    block, buffer = buffer.split(b"\r\n\r\n", 1)
                    if block.startswith(b":"):  # a heartbeat comment
                        continue
                    revision, data = None, b""
                    for line in block.split(b"\r\n"):
                        if line.startswith(b"id: "):
                            revision = int(line[4:])
                        elif line.startswith(b"data: "):
                            data = line[6:]
                    if revision is None or not data.startswith(b'{"revision":%d,' % revision):
                        self.problems.append(f"stream {index}: unexpected event {block[:120]!r}")
                        continue
                    self._arrived(index, revision, data, at)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.problems.append(f"stream {index}: {exc!r}")
        finally:
            writer.close()

    async def run(self, deadline: float) -> None:
        ready = asyncio.Semaphore(50)  # connect in waves, not 500 SYNs at once
        tasks = [asyncio.create_task(self._stream(i, ready)) for i in range(self.count)]
        loop = asyncio.get_running_loop()
        # the parent sends the revision of its last change once the streams are all connected
        loop.add_reader(self.pipe.fileno(), self._from_parent)
        try:
            await asyncio.wait_for(self.done.wait(), max(0.0, deadline - time.perf_counter()))
        except TimeoutError:
            self.problems.append("the stream process timed out")
        finally:
            loop.remove_reader(self.pipe.fileno())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _from_parent(self) -> None:
        message, value = self.pipe.recv()
        if message == "last":
            self.expected_last = value
            if self.have.get(value, 0) == self.count:
                self.done.set()
        elif message == "stop":
            self.done.set()


def stream_process(url: str, token: str, count: int, pipe: Connection, seconds: float) -> None:
    parts = urlsplit(url)
    client = StreamClient(parts.hostname or "127.0.0.1", parts.port or 80, token, count, pipe)
    raise_nofile(count * 2 + 256)
    deadline = time.perf_counter() + seconds
    try:
        import uvloop

        uvloop.run(client.run(deadline))
        loop_name = "uvloop"
    except ImportError:
        asyncio.run(client.run(deadline))
        loop_name = "asyncio"
    times = os.times()
    pipe.send(
        (
            "result",
            {
                "received": client.received,
                "checked": client.checked,
                "problems": client.problems[:50],
                "problem_count": len(client.problems),
                "connected": client.connected,
                "cpu_seconds": round(times.user + times.system, 2),
                "cpu_seconds_connecting": round(client.cpu_at_ready or 0.0, 2),
                "loop": loop_name,
            },
        )
    )


def wait_for(pipe: Connection, message: str, value: int | None, timeout: float) -> Any:
    """Read ``pipe`` until ``message`` (with ``value``, unless None) arrives: its value, or None
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not pipe.poll(left):
            return None
        got, got_value = pipe.recv()
        if got == message and (value is None or got_value == value):
            return got_value
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--flags", type=int, default=20, help="flags in the rules document")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--settle-timeout", type=float, default=15.0, help="per change, seconds")
    add_run_arguments(parser, "the changes")
    args = parser.parse_args()
    if not 0 < args.streams <= 5000 or not 0 < args.changes <= 200:
        parser.error("--streams must be in 1..5000 and --changes in 1..200")

    nofile = raise_nofile(args.streams * 2 + 256)  # the server inherits it too
    meta = machine_meta()
    meta["server_env"] = server_env(args.server_env)
    meta["nofile"] = nofile
    with running_server(**server_env(args.server_env)) as server:
        assert server.process is not None  # noqa: S101 - started by running_server
        token = sdk_token(server)
        seed_flags(server, args.flags)
        admin = admin_session(server)
        flag_url = f"{server.url}/api/v1/envs/{ENV}/flags/{FLAG}"
        start_revision = int(
            requests.get(
                f"{server.url}/api/v1/sdk/rules",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ).json()["revision"]
        )
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        budget = 60 + args.changes * (args.settle_timeout + args.gap) + args.streams * 0.05
        child = multiprocessing.get_context("spawn").Process(
            target=stream_process, args=(server.url, token, args.streams, theirs, budget)
        )
        child.start()
        connect_start = time.perf_counter()
        if not wait_for(ours, "complete", start_revision, 60 + args.streams * 0.05):
            child.terminate()
            raise SystemExit("the streams did not all connect and receive the first event")
        connect_seconds = time.perf_counter() - connect_start
        streams_seen = metric_value(server, "rollwise_sse_streams")
        last_revision = start_revision + args.changes
        ours.send(("last", last_revision))

        writes: list[dict[str, Any]] = []
        quiet = wait_for_quiet(max_wait=args.quiet_wait) if args.quiet_wait else None
        cpu, machine = CpuMeter(server.process.pid).start(), MachineMeter().start()
        version = admin.get(flag_url, timeout=30).json()["version"]
        for change in range(1, args.changes + 1):
            body = bench_flag(FLAG, description=f"sse change {change}")
            sent = time.perf_counter()
            response = admin.put(flag_url, json=body, headers={"If-Match": f'"{version}"'})
            returned = time.perf_counter()
            if response.status_code != 200:
                child.terminate()
                raise SystemExit(f"change {change}: {response.status_code} {response.text}")
            version = response.json()["version"]
            revision = start_revision + change
            settled = wait_for(ours, "complete", revision, args.settle_timeout)
            writes.append(
                {
                    "change": change,
                    "revision": revision,
                    "sent": sent,
                    "returned": returned,
                    "write_ms": round((returned - sent) * 1000, 2),
                    "settled": settled,
                }
            )
            time.sleep(args.gap)
        server_cpu, machine_busy = cpu.stop(), machine.stop()
        streams = wait_for(ours, "result", None, 60)
        child.join(timeout=30)
        if child.is_alive():
            child.terminate()
    if streams is None:
        raise SystemExit("the stream process did not report")
    meta["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result = summarize(args, start_revision, writes, streams)
    result["meta"] = meta
    result["connect_seconds"] = round(connect_seconds, 2)
    result["server_streams_gauge"] = streams_seen
    result["server_cpu_during_changes"] = server_cpu
    result["server_cpu_ms_per_change"] = round(
        server_cpu["cpu_seconds"] * 1000 / max(1, len(writes)), 1
    )
    result["machine_cores_busy"] = machine_busy
    result["machine_cores_busy_before"] = quiet
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_summary(result)
    if result["failures"]:
        print("FAILED: " + "; ".join(result["failures"]), file=sys.stderr)
        sys.exit(1)


def summarize(
    args: argparse.Namespace,
    start_revision: int,
    writes: list[dict[str, Any]],
    streams: dict[str, Any],
) -> dict[str, Any]:
    received: dict[int, list[float]] = streams["received"]
    from_returned: list[float] = []
    from_sent: list[float] = []
    per_change = []
    for write in writes:
        arrivals = sorted(received.get(write["revision"], []))
        to_ret = [(at - write["returned"]) * 1000 for at in arrivals]
        to_sent = [(at - write["sent"]) * 1000 for at in arrivals]
        from_returned += to_ret
        from_sent += to_sent
        per_change.append(
            {
                "change": write["change"],
                "revision": write["revision"],
                "write_ms": write["write_ms"],
                "deliveries": len(arrivals),
                "first_ms": round(to_ret[0], 2) if arrivals else None,
                "last_ms": round(to_ret[-1], 2) if arrivals else None,
                "p99_ms": round(percentiles(to_ret)["p99"], 2) if arrivals else None,
                "fanout_ms": round(to_ret[-1] - to_ret[0], 2) if arrivals else None,
            }
        )
    expected = args.streams * len(writes)
    failures = []
    if len(from_sent) != expected:
        failures.append(f"{expected - len(from_sent)} of {expected} deliveries missing")
    if streams["problem_count"]:
        failures.append(f"{streams['problem_count']} stream problems: {streams['problems'][:3]}")
    want = [(start_revision, "benchmark flag bench-0")] + [
        (start_revision + w["change"], f"sse change {w['change']}") for w in writes
    ]
    got = [(c["revision"], c["description"]) for c in streams["checked"]]
    if got != want or any(c["revision"] != c["document_revision"] for c in streams["checked"]):
        failures.append(f"stream 0's events are not the changes made: {got[:5]}...")

    def rounded(spread: dict[str, Any]) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in spread.items()}

    from_ret_spread = rounded(percentiles(from_returned))
    return {
        "benchmark": "sse-fanout",
        "streams": args.streams,
        "changes": len(writes),
        "flags": args.flags,
        "deliveries": len(from_sent),
        "deliveries_expected": expected,
        "latency_from_write_returned_ms": from_ret_spread,
        "latency_from_write_sent_ms": rounded(percentiles(from_sent)),
        "write_ms": rounded(percentiles([w["write_ms"] for w in writes])),
        "per_change": per_change,
        "generator": {
            "process": "1 process, raw asyncio sockets",
            "loop": streams["loop"],
            "cpu_seconds": streams["cpu_seconds"],
            "cpu_seconds_connecting": streams["cpu_seconds_connecting"],
            "cpu_ms_per_delivery": round(
                (streams["cpu_seconds"] - streams["cpu_seconds_connecting"])
                * 1000
                / max(1, len(from_sent) - args.streams * 0),
                3,
            ),
        },
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": not failures
        and percentiles(from_sent).get("p99", float("inf")) < TARGET_P99_MS,
        "failures": failures,
    }


def print_summary(result: dict[str, Any]) -> None:
    print(
        f"{result['streams']} streams, {result['changes']} changes, "
        f"{result['deliveries']}/{result['deliveries_expected']} deliveries, "
        f"connected in {result['connect_seconds']} s "
        f"(server gauge {result['server_streams_gauge']})"
    )
    print(f"{'change':>6} {'write':>8} {'first':>8} {'p99':>8} {'last':>8} {'fan-out':>8}  (ms)")
    for row in result["per_change"]:
        print(
            f"{row['change']:>6} {row['write_ms']:>8} {row['first_ms']:>8} {row['p99_ms']:>8} "
            f"{row['last_ms']:>8} {row['fanout_ms']:>8}"
        )
    for name in ("latency_from_write_returned_ms", "latency_from_write_sent_ms"):
        spread = result[name]
        print(
            f"{name}: p50 {spread.get('p50')}  p90 {spread.get('p90')}  p99 {spread.get('p99')}"
            f"  max {spread.get('max')}"
        )
    print(
        f"server during the changes: {result['server_cpu_during_changes']}, whole machine "
        f"{result['machine_cores_busy']} cores; server CPU per change "
        f"{result['server_cpu_ms_per_change']} ms; stream process "
        f"{result['generator']['cpu_seconds']} CPU s ({result['generator']['loop']}), "
        f"{result['generator']['cpu_ms_per_delivery']} ms per delivery; "
        f"target p99 < {TARGET_P99_MS:g} ms: {'met' if result['meets_target'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

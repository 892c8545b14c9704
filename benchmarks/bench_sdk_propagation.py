"""Benchmark: how fast an admin's change reaches ``variant()`` in another process (issue 4).

Three processes on one machine, all on 127.0.0.1:

- the flag server (``rollwise_server.testing.ServerProcess``, a fresh SQLite database);
- a child process running an online ``rollwise.Client`` whose main thread calls
  ``client.variant()`` in a tight loop and writes ``<CLOCK_MONOTONIC ns> <variant>`` to its
  stdout each time the answer changes;
- this process, which makes ``--changes`` changes through the admin API (``PUT`` of the flag,
  alternating ``enabled`` true/false: the flag serves ``v2`` when enabled, its ``off_variant``
  ``v1`` when disabled) and, for each, takes ``time.monotonic_ns()`` as soon as the ``PUT``
  has returned 200.

The propagation time of a change is the child's timestamp minus the parent's. Both read
``CLOCK_MONOTONIC``, which on Linux is one system-wide clock (not per process), so the two are
directly comparable on the same machine. A change can be seen *before* the ``PUT``'s response
reaches the parent (the server publishes the new revision before it answers), so a small
negative time is possible and is kept as measured.

Between changes the parent waits a random 0.1-0.3 s (streaming) or a random fraction of the
poll interval (polling), so changes land at random phases of the polling cycle.

Where the time goes (``stages_ms``): the child wraps its transport (``Client(transport=...)``)
and ``Client._install`` to note when each document reached its sync thread and when it was
installed; with streaming, a second, idle stream reader in the parent notes when the server
pushed the event. ``--child-sleep`` makes the child sleep after each call (releasing the GIL),
to compare with the tight loop.

Run: ``cd benchmarks && python bench_sdk_propagation.py [--changes 100] [--mode both]
[--poll-interval 1.0] [--json]``. Targets: p99 ≤ 1 s streaming; p99 ≤ poll interval + 1 s
polling.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import rollwise
from bench_sdk_common import (
    ENV,
    TIMEOUT,
    admin_session,
    machine_meta,
    percentiles,
    running_server,
    sdk_token,
)
from rollwise.config import ClientConfig
from rollwise.errors import RollwiseError
from rollwise.transport import RequestsTransport

FLAG = "propagation-probe"
SEED = 20261125
CHANGE_TIMEOUT_S = 15.0

PROBE = {
    "key": FLAG,
    "enabled": True,
    "salt": FLAG,
    "description": "propagation benchmark: v2 when enabled, v1 (off_variant) when disabled",
    "variants": {"v1": {}, "v2": {}},
    "off_variant": "v1",
    "default_variant": "v2",
    "rules": [],
}


# --- the child: an application process with an online client ---


class _TracedStream:
    """A rules stream that notes when each event reached the sync thread."""

    def __init__(self, stream: Any, trace: deque[str]) -> None:
        self._stream, self._trace = stream, trace

    def events(self) -> Iterator[Any]:
        for event in self._stream.events():
            if event.event == "rules":  # not the heartbeats the stream also yields
                self._trace.append(f"received {time.monotonic_ns()}")
            yield event

    def close(self) -> None:
        self._stream.close()


def _traced_transport(trace: deque[str]) -> Any:
    """A transport factory (``Client(transport=...)``): the real one, with arrival times."""

    def make(config: Any) -> Any:
        transport = RequestsTransport(config)
        fetch_rules, open_stream = transport.fetch_rules, transport.open_stream

        def fetch(etag: str | None) -> Any:
            response = fetch_rules(etag)
            if response.status == 200:
                trace.append(f"received {time.monotonic_ns()}")
            return response

        transport.fetch_rules = fetch  # type: ignore[method-assign]
        transport.open_stream = lambda last: _TracedStream(open_stream(last), trace)  # type: ignore[method-assign]
        return transport

    return make


def child(args: argparse.Namespace) -> None:
    """Call ``variant()`` in a tight loop; report every change of the answer on stdout.

    Before each ``seen <ns> <variant>`` line it writes the trace of the sync thread since the
    last one: ``received <ns>`` (a document arrived: an SSE event, or a 200 to a poll) and
    ``installed <start ns> <end ns>`` (``Client._install``: compile and swap).
    """
    options: dict[str, Any] = {
        "cache_dir": args.cache_dir,
        "streaming": args.mode == "streaming",
        "poll_interval": args.poll_interval,
    }
    trace: deque[str] = deque()
    out = sys.stdout
    with rollwise.Client(
        args.url, args.key, transport=_traced_transport(trace), **options
    ) as client:
        install = client._install

        def traced_install(document: Any) -> Any:
            started = time.monotonic_ns()
            compiled = install(document)
            trace.append(f"installed {started} {time.monotonic_ns()}")
            return compiled

        client._install = traced_install  # type: ignore[method-assign]
        if not client.wait_until_ready(30):
            out.write("error not ready\n")
            out.flush()
            return
        wanted = "streaming" if args.mode == "streaming" else "polling"
        deadline = time.monotonic() + 30
        while client.status().connection != wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        variant = client.variant
        context = {"user_id": "probe-user"}
        clock = time.monotonic_ns
        last = variant(FLAG, context)
        trace.clear()
        out.write(f"ready {last} {client.status().connection}\n")
        out.flush()
        stdin = sys.stdin
        sleep = args.child_sleep
        end = clock() + int(args.max_seconds * 1e9)
        while clock() < end:
            for _ in range(2048):
                now = variant(FLAG, context)
                if now != last:
                    seen = clock()
                    last = now
                    while trace:
                        out.write(trace.popleft() + "\n")
                    out.write(f"seen {seen} {now}\n")
                    out.flush()
                if sleep:
                    time.sleep(sleep)
            readable, _, _ = select.select([stdin], [], [], 0)
            if readable and not stdin.readline():  # the parent closed our stdin: stop
                break


# --- the parent: the admin making changes ---


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put("eof")


def _listen(url: str, key: str, arrivals: queue.Queue[int], stop: threading.Event) -> None:
    """A second, idle stream reader (in this process): when the server pushed each event."""
    transport = RequestsTransport(ClientConfig(url=url, sdk_key=key, stream_timeout=3600))
    stream = transport.open_stream(None)
    try:
        for event in stream.events():
            if stop.is_set():
                return
            if event.event == "rules":
                arrivals.put(time.monotonic_ns())
    except RollwiseError:
        return
    finally:
        stream.close()
        transport.close()


def run_mode(
    mode: str, server: Any, key: str, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    admin = admin_session(server)
    url = f"{server.url}/api/v1/envs/{ENV}/flags/{FLAG}"
    current = admin.get(url, timeout=TIMEOUT)
    current.raise_for_status()
    version = int(current.json()["version"])
    enabled = bool(current.json()["enabled"])
    command = [
        sys.executable, __file__, "--child", "--url", server.url, "--key", key, "--mode", mode,
        "--poll-interval", str(args.poll_interval), "--cache-dir", str(tmp / f"cache-{mode}"),
        "--child-sleep", str(args.child_sleep), "--max-seconds", str(args.max_seconds),
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    if process.stdout is None or process.stdin is None:
        raise RuntimeError("the child's pipes are missing")
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    arrivals: queue.Queue[int] = queue.Queue()
    stop_listening = threading.Event()
    if mode == "streaming":
        threading.Thread(
            target=_listen, args=(server.url, key, arrivals, stop_listening), daemon=True
        ).start()
    rng = random.Random(SEED)
    latencies: list[float] = []
    write_times: list[float] = []
    stages: list[dict[str, float | None]] = []
    missed = 0
    try:
        ready = lines.get(timeout=60).split()
        if ready[0] != "ready":
            raise RuntimeError(f"the child failed: {ready}")
        connection = ready[2]
        for _ in range(args.changes):
            if mode == "streaming":
                time.sleep(rng.uniform(0.1, 0.3))
            else:
                time.sleep(rng.uniform(0.0, args.poll_interval))
            while not arrivals.empty():  # the connection's first event, or a late one
                arrivals.get_nowait()
            enabled = not enabled
            expected = "v2" if enabled else "v1"
            body = {**PROBE, "enabled": enabled}
            started = time.monotonic_ns()
            response = admin.put(
                url, json=body, headers={"If-Match": f'"{version}"'}, timeout=TIMEOUT
            )
            written = time.monotonic_ns()
            response.raise_for_status()
            version = int(response.json()["version"])
            write_times.append((written - started) / 1e6)
            deadline = time.monotonic() + CHANGE_TIMEOUT_S
            marks: dict[str, list[int]] = {}
            while True:
                remaining = deadline - time.monotonic()
                try:
                    line = lines.get(timeout=max(0.001, remaining))
                except queue.Empty:
                    missed += 1
                    break
                kind, *values = line.split()
                if kind != "seen":
                    marks[kind] = [int(v) for v in values]
                    continue
                if values[1] == expected:
                    seen_ns = int(values[0])
                    if mode == "streaming":
                        with contextlib.suppress(queue.Empty):
                            marks["pushed"] = [arrivals.get(timeout=CHANGE_TIMEOUT_S)]
                    latencies.append((seen_ns - written) / 1e6)
                    stages.append(_stages(written, seen_ns, marks))
                    break
    finally:
        stop_listening.set()
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    result: dict[str, Any] = {
        "mode": mode,
        "connection": connection,
        "poll_interval_s": args.poll_interval if mode == "polling" else None,
        "changes": args.changes,
        "missed": missed,
        "child_sleep_s": args.child_sleep,
        "propagation_ms": _rounded(percentiles(latencies)),
        "admin_put_ms": _rounded(percentiles(write_times)),
        "stages_ms": {
            name: _rounded(percentiles([s[name] for s in stages if s[name] is not None]))
            for name in STAGES
        },
        "samples_ms": [round(x, 2) for x in latencies],
        "slowest": sorted(stages, key=lambda s: -(s["total"] or 0))[:5],
    }
    target = 1000.0 if mode == "streaming" else (args.poll_interval + 1.0) * 1000
    result["target_p99_ms"] = target
    result["met"] = missed == 0 and result["propagation_ms"].get("p99", float("inf")) <= target
    return result


STAGES = ("total", "pushed", "to_child", "parse", "install", "notice")


def _stages(written: int, seen: int, marks: dict[str, list[int]]) -> dict[str, float | None]:
    """Where the time of one change went, in ms: ``to_child`` = the ``PUT`` returned to the
    document reaching the child's sync thread; ``parse`` = to ``Client._install`` starting;
    ``install`` = compile and swap; ``notice`` = to the main thread's ``variant()`` seeing it;
    ``pushed`` (streaming) = the ``PUT`` returned to the event reaching an idle stream reader
    in the parent process (what the server and the kernel take, without the child's GIL)."""
    received = marks.get("received", [None])[0]
    pushed = marks.get("pushed", [None])[0]
    start, end = marks.get("installed", [None, None])

    def ms(a: int | None, b: int | None) -> float | None:
        return None if a is None or b is None else round((b - a) / 1e6, 2)

    return {
        "total": ms(written, seen),
        "pushed": ms(written, pushed),
        "to_child": ms(written, received),
        "parse": ms(received, start),
        "install": ms(start, end),
        "notice": ms(end, seen),
    }


def _rounded(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "n" else round(v, 2) for k, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--mode", choices=("streaming", "polling", "both"), default="both")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument(
        "--child-sleep",
        type=float,
        default=0.0,
        help="seconds the child sleeps after each variant() call (0: a tight loop)",
    )
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="child's time limit")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    meta = machine_meta()
    modes = ("streaming", "polling") if args.mode == "both" else (args.mode,)
    rows = []
    with running_server() as (server, _), tempfile.TemporaryDirectory() as scratch:
        admin = admin_session(server)
        admin.post(
            f"{server.url}/api/v1/envs/{ENV}/flags", json=PROBE, timeout=TIMEOUT
        ).raise_for_status()
        key = sdk_token(server)
        for mode in modes:
            rows.append(run_mode(mode, server, key, Path(scratch), args))
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(
        f"python {meta['python']} on {meta['machine']} x{meta['cpus']}, "
        f"load {meta['loadavg_at_start']}"
    )
    print(f"{'mode':10} {'n':>4} {'miss':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'min ms':>8} {'PUT p50':>8} {'target':>8} met")  # fmt: skip
    for row in rows:
        p, w = row["propagation_ms"], row["admin_put_ms"]
        print(
            f"{row['mode']:10} {p['n']:>4} {row['missed']:>4} {p.get('p50', '-'):>8} "
            f"{p.get('p90', '-'):>8} {p.get('p99', '-'):>8} {p.get('max', '-'):>8} "
            f"{p.get('min', '-'):>8} {w.get('p50', '-'):>8} {row['target_p99_ms']:>8} {row['met']}"
        )
    print("stages, ms (p50 / p99 / max):")
    for row in rows:
        parts = [
            f"{name} {st.get('p50', '-')} / {st.get('p99', '-')} / {st.get('max', '-')}"
            for name, st in row["stages_ms"].items()
        ]
        print(f"  {row['mode']:10} " + "; ".join(parts))


if __name__ == "__main__":
    main()

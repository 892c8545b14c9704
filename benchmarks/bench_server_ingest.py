"""Benchmark of exposure ingestion, ``POST /api/v1/sdk/exposures`` into SQLite (issue 3).

What it measures: end-to-end accepted events per second when SDKs post batches of ``--batch``
(1,000) valid exposures, each to a fresh server (``python -m rollwise_server serve``, a child
process, fresh SQLite database) per mode: ``plain`` JSON and ``gzip`` (``Content-Encoding:
gzip``). Batches are generated and encoded (and compressed) before the clock starts: distinct
ids (``--ids``: UUIDv7 by default, as the SDK makes them; ``uuid4`` for random ones), RFC 3339
timestamps, 20 flags, 2 variants, 100,000 units, two cohort attributes.
``--connections`` threads each hold one keep-alive ``http.client`` connection and post the next
unsent batch until all ``--events`` are sent; the rate is accepted events / wall time from the
first request to the last answer. Target (issue 3): >= 50,000 events/s.

Checks (the run fails, exit 1, if one does not hold): every answer is 200 with ``accepted`` =
batch size and no duplicate or rejected event; afterwards the database (read directly, beside
the running server) holds exactly the ids sent, no more, no fewer; a batch sent again is
answered all duplicates and changes nothing.

Run: ``.venv/bin/python benchmarks/bench_server_ingest.py [--events 200000] [--connections 4]
[--modes plain,gzip] [--json] [--out FILE]``. With
``ROLLWISE_TEST_DATABASE=postgresql://postgres@127.0.0.1:5432/test`` the server runs on
PostgreSQL, in a schema of its own (``rollwise_server.testing.new_database``; issue 15's
target there: >= 100,000 events/s); ``db_bytes`` is then the size of the whole database.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import http.client
import json
import os
import random
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench_server_common import (
    CpuMeter,
    MachineMeter,
    add_run_arguments,
    machine_meta,
    percentiles,
    running_server,
    sdk_token,
    server_env,
    wait_for_quiet,
)
from rollwise_server.testing import connect

PATH = "/api/v1/sdk/exposures"
TARGET_EPS = 50_000
SEED = 20261125
COUNTRIES = ["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "BR", "IN"]


def event_id(rng: random.Random, moment: datetime.datetime, kind: str) -> str:
    """A random UUID (version 4) or a time-ordered one (version 7, as the SDK makes them:
    48 bits of Unix milliseconds first, so ids made later sort later)."""
    if kind == "uuid4":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    millis = int(moment.timestamp() * 1000)
    value = (millis << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64)
    value |= (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def make_batches(
    events: int, size: int, seed: int, ids_kind: str = "uuid4"
) -> tuple[list[list[str]], list[bytes]]:
    """``events`` exposures in batches of ``size``: the ids of each batch and its JSON body."""
    rng = random.Random(seed)
    start = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
    ids: list[list[str]] = []
    bodies: list[bytes] = []
    for b in range((events + size - 1) // size):
        batch = []
        for i in range(min(size, events - b * size)):
            n = b * size + i
            moment = start + datetime.timedelta(milliseconds=n * 7)
            flag = rng.randrange(20)
            variant = "v2" if rng.random() < 0.1 else "v1"
            batch.append(
                {
                    "id": event_id(rng, moment, ids_kind),
                    "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "flag": f"bench-{flag}",
                    "flag_version": 1 + flag % 3,
                    "variant": variant,
                    "rule": "eu-small",
                    "unit_type": "user_id",
                    "unit": f"user-{rng.randrange(100_000):06d}",
                    "attrs": {
                        "country": rng.choice(COUNTRIES),
                        "amount": round(rng.uniform(0, 500), 2),
                    },
                }
            )
        ids.append([e["id"] for e in batch])
        bodies.append(json.dumps({"events": batch}, separators=(",", ":")).encode())
    return ids, bodies


class Sender:
    """``connections`` threads posting the batches in order, each on a keep-alive connection."""

    def __init__(self, port: int, token: str, bodies: list[bytes], gzipped: bool) -> None:
        self.port, self.bodies = port, bodies
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if gzipped:
            self.headers["Content-Encoding"] = "gzip"
        self.next = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.answers: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def _take(self) -> int | None:
        with self.lock:
            if self.next >= len(self.bodies) or self.failures:
                return None
            self.next += 1
            return self.next - 1

    def _work(self, deadline: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while time.monotonic() < deadline and (index := self._take()) is not None:
                start = time.perf_counter()
                conn.request("POST", PATH, body=self.bodies[index], headers=self.headers)
                response = conn.getresponse()
                raw = response.read()
                elapsed = time.perf_counter() - start
                if response.status != 200:
                    self.failures.append(f"batch {index}: {response.status} {raw[:300]!r}")
                    return
                with self.lock:
                    self.latencies.append(elapsed)
                    self.answers.append(json.loads(raw))
        except (OSError, http.client.HTTPException) as exc:
            self.failures.append(f"connection error: {exc!r}")
        finally:
            conn.close()

    def run(self, connections: int, timeout: float) -> float:
        """Send everything; the wall time in seconds."""
        deadline = time.monotonic() + timeout
        threads = [
            threading.Thread(target=self._work, args=(deadline,), daemon=True)
            for _ in range(connections)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 30)
        return time.perf_counter() - start


def post(port: int, token: str, body: bytes, gzipped: bool) -> dict[str, Any]:
    sender = Sender(port, token, [body], gzipped)
    sender.run(1, 60)
    if sender.failures or not sender.answers:
        raise SystemExit(f"posting a batch failed: {sender.failures}")
    return sender.answers[0]


def stored_ids(db: str) -> tuple[int, set[str]]:
    """The exposures' row count and ids, read from the database beside the running server."""
    if db.startswith("postgresql://"):
        rows = connect(db)
        (count,) = rows.execute("SELECT count(*) FROM exposures").fetchone() or (0,)
        return int(count), {row[0] for row in rows.execute("SELECT id FROM exposures")}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        count = conn.execute("SELECT count(*) FROM exposures").fetchone()[0]
        ids = {row[0] for row in conn.execute("SELECT id FROM exposures")}
    finally:
        conn.close()
    return int(count), ids


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    gzipped = mode == "gzip"
    ids, bodies = make_batches(args.events + args.batch, args.batch, SEED, args.ids)
    warm_ids, warm_body = ids.pop(0), bodies.pop(0)  # one batch to warm the server up
    if gzipped:
        warm_body = gzip.compress(warm_body, 6)
        plain_bytes = sum(len(b) for b in bodies)
        bodies = [gzip.compress(b, 6) for b in bodies]
    else:
        plain_bytes = sum(len(b) for b in bodies)
    sent = args.events
    failures: list[str] = []
    with running_server(args.db_dir, **server_env(args.server_env)) as server:
        assert server.process is not None  # noqa: S101 - started by running_server
        port = int(server.url.rsplit(":", 1)[1])
        token = sdk_token(server)
        warm = post(port, token, warm_body, gzipped)
        if warm["accepted"] != len(warm_ids):
            failures.append(f"warm-up batch: {warm}")
        sender = Sender(port, token, bodies, gzipped)
        quiet = wait_for_quiet(max_wait=args.quiet_wait) if args.quiet_wait else None
        cpu, machine = CpuMeter(server.process.pid).start(), MachineMeter().start()
        me = os.times()
        seconds = sender.run(args.connections, args.timeout)
        me_after = os.times()
        server_cpu, machine_busy = cpu.stop(), machine.stop()
        failures += sender.failures
        accepted = sum(a["accepted"] for a in sender.answers)
        duplicates = sum(a["duplicates"] for a in sender.answers)
        rejected = sum(a["rejected"] for a in sender.answers)
        if len(sender.answers) != len(bodies):
            failures.append(f"{len(bodies) - len(sender.answers)} batches not answered")
        if (accepted, duplicates, rejected) != (sent, 0, 0):
            failures.append(f"answers: accepted {accepted}, dup {duplicates}, rejected {rejected}")

        expected = {i for batch in ids for i in batch} | set(warm_ids)
        count, found = stored_ids(server.db)
        lost, extra = len(expected - found), len(found - expected)
        if count != len(expected) or lost or extra:
            failures.append(
                f"database: {count} rows, {len(expected)} sent, {lost} lost, {extra} more"
            )

        again = post(port, token, bodies[len(bodies) // 2], gzipped)
        count_after, _ = stored_ids(server.db)
        resend_ok = (again["accepted"], again["duplicates"], again["rejected"]) == (
            0,
            len(ids[len(ids) // 2]),
            0,
        ) and count_after == count
        if not resend_ok:
            failures.append(f"re-sent batch: {again}, rows {count} -> {count_after}")
        db_bytes = (
            connect(server.db).execute("SELECT pg_database_size(current_database())").fetchone()[0]
            if server.db.startswith("postgresql://")
            else sum(
                p.stat().st_size for p in Path(server.db).parent.glob(Path(server.db).name + "*")
            )
        )

    rate = accepted / seconds if seconds else 0.0
    return {
        "mode": mode,
        "db_dir": args.db_dir or "system temporary directory",
        "ids": args.ids,
        "events": sent,
        "batch": args.batch,
        "batches": len(bodies),
        "connections": args.connections,
        "seconds": round(seconds, 2),
        "events_per_s": round(rate),
        "batch_ms": {k: round(v * 1000, 1) for k, v in percentiles(sender.latencies).items()},
        "body_kib_mean": round(sum(len(b) for b in bodies) / len(bodies) / 1024, 1),
        "plain_kib_mean": round(plain_bytes / len(bodies) / 1024, 1),
        "server": server_cpu,
        "generator_cores_busy": round(
            (me_after.user + me_after.system - me.user - me.system) / max(seconds, 1e-9), 2
        ),
        "server_cpu_us_per_event": round(server_cpu["cpu_seconds"] * 1e6 / max(1, sent), 1),
        "machine_cores_busy": machine_busy,
        "machine_cores_busy_before": quiet,
        "db_rows": count,
        "db_mib": round(db_bytes / 2**20, 1),
        "lost": lost,
        "extra": extra,
        "resend": {k: again[k] for k in ("accepted", "duplicates", "rejected")},
        "meets_target": not failures and rate >= TARGET_EPS,
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="events per mode")
    parser.add_argument("--batch", type=int, default=1_000, help="events per batch")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections")
    parser.add_argument("--modes", default="plain,gzip", help="comma-separated: plain, gzip")
    parser.add_argument(
        "--ids",
        choices=("uuid4", "uuid7"),
        default="uuid7",
        help="event ids: time-ordered (uuid7, what the SDK sends) or random (uuid4)",
    )
    parser.add_argument(
        "--db-dir", help="directory for the server's database (e.g. /dev/shm: no disk writes)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mode, at most")
    add_run_arguments(parser, "each mode")
    args = parser.parse_args()
    if not 0 < args.events <= 5_000_000 or not 0 < args.batch <= 10_000:
        parser.error("--events must be in 1..5,000,000 and --batch in 1..10,000")
    modes = args.modes.split(",")
    if not set(modes) <= {"plain", "gzip"}:
        parser.error("--modes: plain and/or gzip")

    meta = machine_meta()
    meta["server_env"] = server_env(args.server_env)
    rows = []
    for mode in modes:
        row = run_mode(mode, args)
        rows.append(row)
        if not args.json:
            print(
                f"{mode:>5} ({args.ids}): {row['events']} events in {row['seconds']} s = "
                f"{row['events_per_s']:,} events/s; batch p50 {row['batch_ms']['p50']} "
                f"p99 {row['batch_ms']['p99']} ms; body {row['body_kib_mean']} KiB; "
                f"server {row['server']['cores_busy']} cores "
                f"({row['server_cpu_us_per_event']} us CPU/event), generator "
                f"{row['generator_cores_busy']}, machine {row['machine_cores_busy']}; "
                f"db {row['db_rows']} rows, lost {row['lost']}, "
                f"extra {row['extra']}; re-sent batch {row['resend']}"
                f"{'; FAILED: ' + '; '.join(row['failures']) if row['failures'] else ''}",
                flush=True,
            )
    meta["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result = {"benchmark": "ingest", "meta": meta, "target_events_per_s": TARGET_EPS, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    if any(r["failures"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()

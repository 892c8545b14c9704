"""Benchmarks of several server replicas on one PostgreSQL database (issue 15).

``propagation``: ``--replicas`` (3) ``rollwise serve`` processes on one database (a new schema
of ``--postgresql``); an SDK stream (``GET /api/v1/sdk/stream``) is open on every replica but
the first. ``--changes`` (100) changes are made through the first replica (``PUT`` of a flag,
``enabled`` toggled, a random 0.1-0.3 s apart); for each change and each other replica, the
time from the ``PUT``'s answer to that replica's stream event carrying the new revision (both
read with ``time.monotonic`` in this process; an event may arrive before the answer: a negative
time is kept). The server's revision poll is set to an hour, so every event came by
``NOTIFY``. Target: p99 <= 1 s.

``failover``: ``--replicas`` processes with ``ROLLWISE_CONTROLLER_INTERVAL=--interval`` (1 s).
For each of ``--trials`` (20): a rollout of a new flag in ``staging`` is started whose 20 stages
have no minimum duration (the controller advances it one stage at every round); once it has
advanced twice, the replica that leads (``rollwise_controller_leader`` 1) is killed with SIGKILL
at a random phase of its interval. Measured: the time from the kill to the end of the next
controller round anywhere else (``rollwise_controller_last_round_timestamp_seconds``) and to the
next decision (the rollout's next ``rollout.advance`` in the audit log); then the killed replica
is started again. Checks: never two leaders at once (each poll, every 20 ms); no decision twice
(each rollout's audit entries have distinct versions, one ``rollout.advance`` per stage); each
next decision within 2 intervals of the kill (the target).

``exactly-once``: 3 replicas A, B, C; two SDK clients (``rollwise.Client`` in this process, each
on a thread of its own), the first given A then B, C (``fallback_urls``), the second B then C, A;
each evaluates ``--events`` / 2 distinct units (100,000 each by default: one exposure each).
After a third of them, A is killed (SIGKILL; the first client moves to B) and started again;
after two thirds, B is killed (both clients move on). Then both flush, and the database must
hold exactly ``--events`` exposures with as many distinct ids.

``rules304``: for 1, 2 and 3 replicas (``--replica-counts``), ``--connections`` (16) keep-alive
connections in all, spread evenly, one ``wrk -t1`` per replica (``bench_server_rules.run_wrk``:
``If-None-Match`` of the current revision), ``--duration`` (10) s: answers per second summed over
the replicas, the worst replica's p99, and the servers' CPU per answer (``/proc``), so that a
bigger machine can be sized.

Run: ``cd benchmarks && ../.venv/bin/python bench_replicas.py
propagation|failover|exactly-once|rules304 [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench_server_common import bench_flag, machine_meta, percentiles, server_code
from rollwise_server.testing import DEFAULT_POSTGRESQL, ServerProcess, connect, new_database

FLAG_URL = "/api/v1/envs/production/flags/bench-flag"


def flag(enabled: bool) -> dict[str, Any]:
    return {**bench_flag("bench-flag"), "enabled": enabled, "reason": "bench"}


def start(directory: Path, count: int, postgresql: str, **env: str) -> list[ServerProcess]:
    directory.mkdir(exist_ok=True)
    db = new_database(directory, postgresql)
    servers = []
    for i in range(count):
        (directory / f"r{i}").mkdir()
        servers.append(ServerProcess(directory / f"r{i}", db=db, **env))
    for server in servers:
        server.start()
    return servers


def gauge(server: ServerProcess, name: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class StreamWatcher(threading.Thread):
    """Reads one replica's SDK stream; notes ``time.monotonic()`` of each revision's event."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.response = requests.get(
            f"{url}/api/v1/sdk/stream",
            headers={"Authorization": f"Bearer {token}"},
            stream=True,
            timeout=60,
        )
        self.seen: dict[int, float] = {}
        self.changed = threading.Condition()

    def run(self) -> None:
        for line in self.response.iter_lines(decode_unicode=True):
            if line and line.startswith("id: "):
                with self.changed:
                    self.seen[int(line[4:])] = time.monotonic()
                    self.changed.notify_all()

    def wait_for(self, revision: int, timeout: float = 10.0) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: revision in self.seen, timeout)
            return self.seen.get(revision)


def propagation(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    servers = start(directory, args.replicas, args.postgresql,
                    ROLLWISE_REVISION_POLL_SECONDS="3600")  # fmt: skip
    try:
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {servers[0].admin_token}"
        first = servers[0].url
        admin.post(f"{first}/api/v1/envs/production/flags", json=flag(True)).raise_for_status()
        token = admin.post(
            f"{first}/api/v1/tokens", json={"name": "bench", "role": "sdk", "env": "production"}
        ).json()["token"]
        watchers = [StreamWatcher(s.url, token) for s in servers[1:]]
        for watcher in watchers:
            watcher.start()
        rng = random.Random(15)
        samples: dict[str, list[float]] = {s.url: [] for s in servers[1:]}
        missed = 0
        version = 1
        for i in range(args.changes):
            time.sleep(rng.uniform(0.1, 0.3))
            response = admin.put(f"{first}{FLAG_URL}", json=flag(i % 2 == 1),
                                 headers={"If-Match": f'"{version}"'})  # fmt: skip
            answered = time.monotonic()
            response.raise_for_status()
            version = response.json()["version"]
            revision = int(admin.get(f"{first}/api/v1/envs/production").json()["revision"])
            for server, watcher in zip(servers[1:], watchers, strict=True):
                seen = watcher.wait_for(revision)
                if seen is None:
                    missed += 1
                else:
                    samples[server.url].append((seen - answered) * 1000)
        every = [x for values in samples.values() for x in values]
        return {
            "replicas": args.replicas,
            "changes": args.changes,
            "missed": missed,
            "ms_all": percentiles(every, (50, 90, 99)),
            "ms_by_replica": {url: percentiles(v, (50, 99)) for url, v in samples.items()},
            "meets_target": missed == 0 and percentiles(every, (99,))["p99"] <= 1000,
        }
    finally:
        for server in servers:
            server.stop()


def _advances(server: ServerProcess, admin: requests.Session, key: str) -> list[dict[str, Any]]:
    entries = admin.get(
        f"{server.url}/api/v1/audit", params={"flag": key, "env": "staging", "limit": 1000},
        timeout=10,
    ).json()["entries"]  # fmt: skip
    return [e for e in entries if e["action"] == "rollout.advance"]


def _moment(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def failover(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    servers = start(directory, args.replicas, args.postgresql,
                    ROLLWISE_CONTROLLER_INTERVAL=str(args.interval))  # fmt: skip
    rng = random.Random(16)
    handovers: list[float] = []
    decisions: list[float] = []
    double = 0
    doubled_decisions = 0
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {servers[0].admin_token}"
    stages = [{"share": round((i + 1) / 20, 2), "min_duration": 0} for i in range(20)]
    plan = {"control": "v1", "candidate": "v2", "rule": "eu-small", "reason": "bench",
            "stages": stages}  # fmt: skip
    try:
        for trial in range(args.trials):
            alive = [s for s in servers if s.process is not None]
            via = alive[0]
            key = f"failover-{trial}"
            base = f"{via.url}/api/v1/envs/staging/flags"
            admin.post(base, json=bench_flag(key)).raise_for_status()
            admin.put(f"{base}/{key}/rollout", json=plan).raise_for_status()
            admin.post(f"{base}/{key}/rollout/start", json={"reason": "bench"}).raise_for_status()
            deadline = time.monotonic() + 20 * args.interval
            while len(_advances(via, admin, key)) < 2:
                if time.monotonic() > deadline:
                    raise SystemExit("the rollout does not advance")
                time.sleep(0.05)
            while True:
                leaders = [s for s in servers if gauge(s, "rollwise_controller_leader") == 1.0]
                double += len(leaders) > 1
                if len(leaders) == 1:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("no replica leads")
                time.sleep(0.02)
            leader = leaders[0]
            time.sleep(rng.uniform(0, args.interval))
            killed_at = time.time()
            leader.kill()
            others = [s for s in servers if s is not leader]
            round_done = None
            while True:
                leading = [s for s in others if gauge(s, "rollwise_controller_leader") == 1.0]
                double += len(leading) > 1
                if round_done is None:
                    rounds = [gauge(s, "rollwise_controller_last_round_timestamp_seconds")
                              for s in others]  # fmt: skip
                    if max(rounds) > killed_at:
                        round_done = max(rounds) - killed_at
                later = [_moment(e["ts"]) for e in _advances(others[0], admin, key)
                         if _moment(e["ts"]) > killed_at]  # fmt: skip
                if round_done is not None and later:
                    handovers.append(round_done)
                    decisions.append(min(later) - killed_at)
                    break
                if time.time() - killed_at > 30 * args.interval:
                    raise SystemExit("no decision after the kill")
                time.sleep(0.02)
            leader.start()
        for trial in range(args.trials):  # every decision once
            entries = admin.get(
                f"{servers[0].url}/api/v1/audit",
                params={"flag": f"failover-{trial}", "env": "staging", "limit": 1000}, timeout=10,
            ).json()["entries"]  # fmt: skip
            versions = [e["version"] for e in entries if e["resource_type"] == "rollout"]
            doubled_decisions += len(versions) - len(set(versions))
    finally:
        for server in servers:
            server.stop()
    return {
        "replicas": args.replicas,
        "interval_s": args.interval,
        "trials": len(decisions),
        "kill_to_round_s": percentiles(handovers, (50, 90, 99)),
        "kill_to_decision_s": percentiles(decisions, (50, 90, 99)),
        "max_decision_s": max(decisions),
        "within_2_intervals": sum(d <= 2 * args.interval for d in decisions),
        "two_leaders_seen": double,
        "decisions_twice": doubled_decisions,
        "meets_target": double == 0
        and doubled_decisions == 0
        and max(decisions) <= 2 * args.interval,
    }


def exactly_once(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    import rollwise

    servers = start(directory, 3, args.postgresql)
    a, b, c = servers
    try:
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {a.admin_token}"
        admin.post(f"{a.url}/api/v1/envs/production/flags", json=flag(True)).raise_for_status()
        token = admin.post(
            f"{a.url}/api/v1/tokens", json={"name": "bench", "role": "sdk", "env": "production"}
        ).json()["token"]
        each = args.events // 2
        progress = [0, 0]
        clients = [
            rollwise.Client(first.url, token, fallback_urls=[x.url for x in rest],
                            cache_dir=directory / f"cache{i}", max_backoff=0.5,
                            connect_timeout=1.0, flush_interval=0.05, max_queue=each + 1000)
            for i, (first, *rest) in enumerate([(a, b, c), (b, c, a)])
        ]  # fmt: skip
        for client in clients:
            if not client.wait_until_ready(10):
                raise SystemExit("a client did not get its rules")

        def evaluate(index: int) -> None:
            client = clients[index]
            for i in range(each):
                client.variant("bench-flag", {"user_id": f"c{index}-{i}", "country": "DE",
                                              "amount": 100})  # fmt: skip
                progress[index] = i + 1
                if i % 1000 == 0:
                    time.sleep(0.01)  # spread over the kills

        threads = [threading.Thread(target=evaluate, args=(i,)) for i in range(2)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        kills = []
        for victim, share in ((a, 1 / 3), (b, 2 / 3)):
            while min(progress) < share * each:
                time.sleep(0.01)
            victim.kill()
            kills.append({"replica": victim.url, "at_events": sum(progress)})
            if victim is a:
                victim.start()
        for thread in threads:
            thread.join()
        flushed = [client.flush(120) for client in clients]
        seconds = time.monotonic() - started
        stats = [client.stats() for client in clients]
        for client in clients:
            client.close()
        count, distinct = (
            connect(a.db).execute("SELECT count(*), count(DISTINCT id) FROM exposures").fetchone()
        )
    finally:
        for server in servers:
            server.stop()
    return {
        "events": args.events,
        "kills": kills,
        "flushed": flushed,
        "seconds": round(seconds, 1),
        "stored": count,
        "distinct_ids": distinct,
        "duplicates_answered": sum(s["events_duplicates_at_server"] for s in stats),
        "exposures_recorded": sum(s["exposures_recorded"] for s in stats),
        "meets_target": all(flushed) and count == distinct == args.events,
    }


def rules304(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from bench_server_common import CpuMeter, MachineMeter, seed_flags
    from bench_server_rules import run_wrk

    rows = []
    for count in [int(x) for x in args.replica_counts.split(",")]:
        servers = start(directory / f"n{count}", count, args.postgresql)
        try:
            seed_flags(servers[0], 20)
            admin = requests.Session()
            admin.headers["Authorization"] = f"Bearer {servers[0].admin_token}"
            token = admin.post(
                f"{servers[0].url}/api/v1/tokens",
                json={"name": "bench", "role": "sdk", "env": "production"},
            ).json()["token"]
            etag = requests.get(
                f"{servers[0].url}/api/v1/sdk/rules",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).headers["ETag"]
            share = max(1, args.connections // count)
            meters = [CpuMeter(s.process.pid).start() for s in servers if s.process]
            machine = MachineMeter().start()
            with ThreadPoolExecutor(count) as pool:
                futures = [
                    pool.submit(run_wrk, s.url, token, etag, share, args.duration) for s in servers
                ]
                runs = [future.result() for future in futures]
            busy = machine.stop()
            cpu = sum(m.stop()["cpu_seconds"] for m in meters)
            answers = sum(r["answers"] for r in runs)
            rows.append({
                "replicas": count,
                "connections": share * count,
                "answers_per_s": round(sum(r["rps"] for r in runs)),
                "p99_ms_worst": max(r["p99_ms"] for r in runs),
                "p50_ms_worst": max(r["p50_ms"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "server_cpu_us_per_answer": round(cpu / max(answers, 1) * 1e6),
                "servers_cores_busy": round(cpu / args.duration, 2),
                "machine_cores_busy": busy,
            })  # fmt: skip
        finally:
            for server in servers:
                server.stop()
    return {"runs": rows, "meets_target": all(r["errors"] == 0 for r in rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["propagation", "failover", "exactly-once", "rules304"])
    parser.add_argument("--replica-counts", default="1,2,3")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--postgresql", default=DEFAULT_POSTGRESQL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="rollwise-replicas-") as tmp:
        run = {"propagation": propagation, "failover": failover,
               "exactly-once": exactly_once, "rules304": rules304}[args.what]  # fmt: skip
        result = {"benchmark": args.what, **run(args, Path(tmp)), "machine": machine_meta(),
                  "code": server_code()}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key not in ("machine", "code"):
                print(f"{key}: {value}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

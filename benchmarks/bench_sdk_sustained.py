"""Benchmark: 8 application threads evaluating and tracking against a live server (issue 4).

The flag server runs as a child process (a fresh SQLite database) with the reference flag of
issue 2 (``bench_variant.REFERENCE``). One online ``rollwise.Client`` (SSE streaming, exposure
logging on, default batch size and flush interval) is shared by ``--threads`` threads that, for
``--duration`` seconds, each loop over new units: build a context (country and amount drawn
from the issue-2 distribution, so 7.5% of calls go through the 10% split and record an
exposure), call ``variant()``, and every ``--track-every`` calls ``track()`` an outcome for that
unit. With ``--rate`` the threads are paced to that many evaluations per second in total;
without it they run flat out.

Reported:
- evaluations per second (counted by the threads themselves);
- events per second delivered: accepted by the server during the run, and in total once
  ``flush()`` has emptied the queues (then divided by the run + flush time);
- lost: after ``flush()``, the distinct exposures the client recorded plus the ``track()``
  calls the threads made, minus the exposures and outcomes the server stored (``SELECT
  count(*)`` on its database); ``lost_unaccounted`` is the same against the client's own
  counts of what it accepted (``exposures_recorded + outcomes_tracked``), so events the client
  dropped and counted (queue or spool full, in ``dropped``) are lost but not unaccounted; and
  the largest queue backlog seen (sampled every second);
- the sender thread's CPU: user + system time of its native thread id from
  ``/proc/self/task/<tid>/stat``, as a share of one core over the run and as a share of the
  whole process's CPU time; the same for the rules-sync thread.

Run: ``cd benchmarks && python bench_sdk_sustained.py [--duration 60] [--threads 8]
[--rate 0] [--track-every 1] [--spool-first] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import threading
import time
from typing import Any

import rollwise
from bench_sdk_common import (
    ENV,
    TIMEOUT,
    admin_session,
    api_flag,
    db_counts,
    machine_meta,
    pid_cpu_seconds,
    running_server,
    sdk_token,
    thread_cpu_seconds,
)
from bench_variant import COUNTRIES, REFERENCE, SEED

FLAG = "fraud-model"


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(
    client: rollwise.Client,
    index: int,
    stop: threading.Event,
    per_thread_rate: float,
    track_every: int,
    counts: list[int],
) -> None:
    rng = random.Random(SEED + index)
    countries = [rng.choice(COUNTRIES) for _ in range(4096)]
    amounts = [rng.uniform(0.0, 2000.0) for _ in range(4096)]
    variant, track = client.variant, client.track
    prefix = f"t{index}-"
    started = time.perf_counter()
    j = 0
    tracked = 0
    while not stop.is_set():
        for _ in range(256):
            unit = prefix + str(j)
            k = j & 4095
            served = variant(FLAG, {"user_id": unit, "country": countries[k], "amount": amounts[k]})
            if j % track_every == 0:
                track("fraud_caught", unit, served == "v2")
                tracked += 1
            j += 1
        if per_thread_rate > 0:
            ahead = j / per_thread_rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    counts[index] = j
    counts[index + len(counts) // 2] = tracked


def run(server: Any, args: argparse.Namespace, cache: Any) -> dict[str, Any]:
    client = rollwise.Client(
        server.url, sdk_token(server), cache_dir=cache, spool_first=args.spool_first
    )
    try:
        if not client.wait_until_ready(30):
            raise RuntimeError("the online client did not become ready")
        deadline = time.monotonic() + 30
        while client.status().connection != "streaming" and time.monotonic() < deadline:
            time.sleep(0.01)
        online = client._online  # private: the threads' ids and the queues are measured
        sender_thread = None if online is None else online.sender._thread
        sync_thread = None if online is None else online.sync._thread
        sender_tid = None if sender_thread is None else sender_thread.native_id
        sync_tid = None if sync_thread is None else sync_thread.native_id
        if online is None or sender_tid is None or sync_tid is None:
            raise RuntimeError("the client's sender and sync threads are not running")
        baseline = db_counts(server.db)
        stop = threading.Event()
        counts = [0] * (2 * args.threads)
        per_thread = args.rate / args.threads if args.rate else 0.0
        workers = [
            threading.Thread(
                target=worker,
                args=(client, i, stop, per_thread, args.track_every, counts),
                name=f"app-{i}",
            )
            for i in range(args.threads)
        ]
        server_pid = server.process.pid
        cpu0, sender0 = process_cpu_seconds(), thread_cpu_seconds(sender_tid)
        sync0, server0 = thread_cpu_seconds(sync_tid), pid_cpu_seconds(server_pid)
        started = time.perf_counter()
        for thread in workers:
            thread.start()
        backlog: list[dict[str, int]] = []
        end = started + args.duration
        while (now := time.perf_counter()) < end:
            time.sleep(min(1.0, end - now))
            backlog.append(
                {
                    "t": round(time.perf_counter() - started),
                    "exposure_queue": len(online.exposures),
                    "outcome_queue": len(online.outcomes),
                    "spool": 0 if online.spool is None else len(online.spool),
                    "sent": sum(online.sender.stats.sent.values()),
                }
            )
        stop.set()
        for thread in workers:
            thread.join()
        wall = time.perf_counter() - started
        cpu = process_cpu_seconds() - cpu0
        sender_cpu = thread_cpu_seconds(sender_tid) - sender0
        sync_cpu = thread_cpu_seconds(sync_tid) - sync0
        server_cpu = pid_cpu_seconds(server_pid) - server0
        sent_in_run = sum(online.sender.stats.sent.values())
        flush_started = time.perf_counter()
        flushed = client.flush(600)
        flush_seconds = time.perf_counter() - flush_started
        sender_cpu_total = thread_cpu_seconds(sender_tid) - sender0
        stats = client.stats()
    finally:
        client.close()
    stored = db_counts(server.db)
    stored_exposures = stored["exposures"] - baseline["exposures"]
    stored_outcomes = stored["outcomes"] - baseline["outcomes"]
    evaluations = sum(counts[: args.threads])
    tracked = sum(counts[args.threads :])
    recorded = stats["exposures_recorded"]
    client_events = recorded + stats["outcomes_tracked"]
    stored_events = stored_exposures + stored_outcomes
    return {
        "threads": args.threads,
        "duration_s": round(wall, 2),
        "rate_limit_per_s": args.rate or None,
        "track_every": args.track_every,
        "evaluations": evaluations,
        "evaluations_per_s": round(evaluations / wall),
        "track_calls": tracked,
        "exposures_recorded": recorded,
        "exposures_duplicated": stats["exposures_duplicated"],
        "outcomes_tracked": stats["outcomes_tracked"],
        "events_offered_per_s": round((recorded + tracked) / wall),
        "events_delivered_in_run": sent_in_run,
        "events_delivered_per_s_in_run": round(sent_in_run / wall),
        "flushed": flushed,
        "flush_seconds": round(flush_seconds, 2),
        "events_delivered_per_s_incl_flush": round(stored_events / (wall + flush_seconds)),
        "server_exposures": stored_exposures,
        "server_outcomes": stored_outcomes,
        "server_exposure_units": stored["exposure_units"] - baseline["exposure_units"],
        "lost_exposures": recorded - stored_exposures,
        "lost_outcomes": tracked - stored_outcomes,
        "lost": recorded + tracked - stored_events,
        "lost_unaccounted": client_events - stored_events,
        "dropped": {
            "exposures_at_queue": stats["exposures_dropped"],
            "outcomes_at_queue": stats["outcomes_dropped"],
            "at_spool_cap": stats["events_dropped_at_spool_cap"],
            "unspoolable": stats["events_dropped_unspoolable"],
            "rejected": stats["exposures_rejected"] + stats["outcomes_rejected"],
        },
        "spooled": stats["events_spooled"],
        "replayed": stats["events_replayed"],
        "max_backlog": {
            "exposure_queue": max((b["exposure_queue"] for b in backlog), default=0),
            "outcome_queue": max((b["outcome_queue"] for b in backlog), default=0),
            "spool": max((b["spool"] for b in backlog), default=0),
        },
        "process_cpu_s": round(cpu, 2),
        "process_cores_busy": round(cpu / wall, 2),
        "sender_cpu_s": round(sender_cpu, 2),
        "sender_share_of_core": round(sender_cpu / wall, 3),
        "sender_share_of_process": round(sender_cpu / cpu, 3) if cpu else None,
        "sender_cpu_s_incl_flush": round(sender_cpu_total, 2),
        "sync_cpu_s": round(sync_cpu, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cores_busy": round(server_cpu / wall, 2),
        "timeline": backlog,
        "last_error": stats["last_error"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0, help="evaluations/s in total (0: max)")
    parser.add_argument("--track-every", type=int, default=1, help="track() every N evaluations")
    parser.add_argument(
        "--spool-first", action="store_true", help="spool_first=True: every event through the spool"
    )
    args = parser.parse_args()
    meta = machine_meta()
    with running_server() as (server, tmp):
        flag = api_flag(FLAG, REFERENCE["flags"][FLAG])  # type: ignore[index]
        admin_session(server).post(
            f"{server.url}/api/v1/envs/{ENV}/flags", json=flag, timeout=TIMEOUT
        ).raise_for_status()
        row = run(server, args, tmp / "cache")
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"meta": meta, "row": row}, indent=2))
        return
    print(
        f"python {meta['python']} on {meta['machine']} x{meta['cpus']}, load "
        f"{meta['loadavg_at_start']} -> {meta['loadavg_at_end']}"
    )
    for key, value in row.items():
        if key != "timeline":
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()

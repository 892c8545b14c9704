"""Soak: the server's memory under sustained load (issue 15: "memory that stays flat").

One server (``rollwise serve`` as a child process, on SQLite by default; on PostgreSQL with
``ROLLWISE_TEST_DATABASE``) with 20 flags gets ``--rate`` (1,000) requests per second for
``--minutes`` (30), from ``--threads`` (4) paced threads of keep-alive ``requests`` sessions, in
a fixed mix per 100 requests: 90 ``GET /api/v1/sdk/rules`` answered 304, 5 ``POST
/api/v1/sdk/exposures`` of 20 new exposures each, 4 ``GET /api/v1/envs/production/flags``
(admin) and 1 ``GET /metrics``. The server's RSS (``/proc/<pid>/status``) is read every 10 s.

Result: the RSS after ``--warmup`` (5) minutes: first, last, min, max, and the growth of the
last 5 minutes' mean over the 5 minutes after warm-up; the target is every reading within 5%
of the first reading after warm-up. Also the requests answered per status and the rate held.

Run: ``cd benchmarks && ../.venv/bin/python bench_soak.py [--minutes 30] [--rate 1000] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

from bench_server_common import admin_session, machine_meta, running_server, sdk_token, seed_flags


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with running_server() as server:
        assert server.process is not None  # noqa: S101
        seed_flags(server, 20)
        token = sdk_token(server)
        admin = admin_session(server)
        etag = requests.get(
            f"{server.url}/api/v1/sdk/rules",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).headers["ETag"]
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        stop = threading.Event()
        end = time.monotonic() + args.minutes * 60

        def work(index: int) -> None:
            sdk = requests.Session()
            sdk.headers.update({"Authorization": f"Bearer {token}", "If-None-Match": etag})
            interval = args.threads / args.rate
            due = time.monotonic()
            n = index
            while not stop.is_set() and time.monotonic() < end:
                slot = n % 100
                if slot < 90:
                    response = sdk.get(f"{server.url}/api/v1/sdk/rules", timeout=10)
                elif slot < 95:
                    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
                    events = [
                        {"id": str(uuid.uuid4()), "ts": now, "flag": "bench-0",
                         "flag_version": 1, "variant": "v2", "unit_type": "user_id",
                         "unit": f"u{n}-{i}", "attrs": {"country": "DE"}}
                        for i in range(20)
                    ]  # fmt: skip
                    response = sdk.post(f"{server.url}/api/v1/sdk/exposures",
                                        json={"events": events}, timeout=10)  # fmt: skip
                elif slot < 99:
                    response = admin.get(f"{server.url}/api/v1/envs/production/flags", timeout=10)
                else:
                    response = admin.get(f"{server.url}/metrics", timeout=10)
                with lock:
                    statuses[response.status_code] += 1
                n += args.threads
                due += interval
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)

        threads = [
            threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.threads)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        samples: list[tuple[float, float]] = []
        while time.monotonic() < end:
            samples.append(
                (round((time.monotonic() - started) / 60, 2), rss_mib(server.process.pid))
            )
            time.sleep(10)
        stop.set()
        for thread in threads:
            thread.join(30)
        seconds = time.monotonic() - started
    after = [mib for minute, mib in samples if minute >= args.warmup]
    first = after[0]
    early = [mib for minute, mib in samples if args.warmup <= minute < args.warmup + 5]
    late = [mib for minute, mib in samples if minute >= args.minutes - 5]
    answered = sum(statuses.values())
    result = {
        "minutes": args.minutes,
        "rate_asked": args.rate,
        "rate_held": round(answered / seconds),
        "statuses": dict(statuses),
        "rss_mib": {
            "start": samples[0][1],
            "after_warmup": first,
            "last": after[-1],
            "min_after_warmup": min(after),
            "max_after_warmup": max(after),
        },
        "late_vs_early_percent": round(
            (sum(late) / len(late) / (sum(early) / len(early)) - 1) * 100, 2
        ),
        "worst_deviation_percent": round(max(abs(m - first) for m in after) / first * 100, 2),
        "samples": samples,
        "machine": machine_meta(),
    }
    result["meets_target"] = result["worst_deviation_percent"] <= 5.0
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    printed = {k: v for k, v in result.items() if k not in ("samples", "machine")}
    print(json.dumps(printed if not args.json else result, indent=2))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Console pages, rendered by a server holding 1,000 flags and 10,000 history entries (issue 14).

Setup, all through the admin API of a fresh server process (``ServerProcess``: ``python -m
rollwise_server serve`` on 127.0.0.1, a fresh SQLite database), so every write is audited as a
person's would be: segment ``eu``, the metric ``fraud_caught``, ``--flags`` flags
``model-0000``... in the shape of ``docs/examples/fraud-model.json``. An environment holds at
most ``rollwise.limits.MAX_FLAGS`` (500) flags, so 1,000 flags are 500 in ``production`` and
the same 500 keys in ``staging``. Then ``PUT``s with ``If-Match`` change a description until
the flags' histories hold ``--history`` versions in all, ``--big`` of them on ``model-0000`` in
production (its page must page its history) and the rest spread over the other flags; a
rollout plan on ``model-0000``, and ``--exposures`` exposures of it through the SDK ingest API
(the revert preview replays them: its blast radius).

Then one client (``requests``, keep-alive) signs in to the console with the admin token
(``POST /ui/sign-in``: the session cookie), checks that every page answers 200 with HTML, and
times each page: ``--warmup`` requests, then ``--requests`` in sequence. Latency is taken on
the client with ``time.perf_counter`` around each request, on loopback: an upper bound of the
server's time (it includes the client's HTTP work and the loopback round trip). The server's
own CPU time per request (``/proc/<pid>/stat`` over the page's requests) is shown beside it.
Figures: p50, p95, p99 and max in milliseconds; the target is p95 < 100 ms for every page
(exit status 1 if a page misses it, or a check fails).

    ../.venv/bin/python bench_console.py [--flags 1000] [--history 10000] [--big 1000]
        [--exposures 20000] [--requests 200] [--warmup 5] [--quiet-wait 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench_server_common import (
    CpuMeter,
    MachineMeter,
    machine_meta,
    percentiles,
    running_server,
    sdk_token,
    wait_for_quiet,
)
from rollwise.limits import MAX_FLAGS

ENV = "production"
ENVS = ("production", "staging")
TARGET_P95_MS = 100.0
TIMEOUT = 60
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "fraud-model.json"
SEGMENT = {
    "key": "eu",
    "description": "Customers in the euro-area pilot countries",
    "conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR", "NL"]}],
}
METRIC = {"key": "fraud_caught", "kind": "binary", "direction": "higher_is_better"}
PLAN = {"control": "v1", "candidate": "v2", "rule": "eu-small",
        "stages": [{"share": 0.1}, {"share": 1.0}],
        "guardrails": [{"metric": "fraud_caught", "cohorts": ["country"]}]}  # fmt: skip
COUNTRIES = ["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "BR", "IN"]
SEED = 20261214
EXAMPLE_FLAG: dict[str, Any] = json.loads(EXAMPLE.read_text())["flags"]["fraud-model"]


def example_flag(key: str, description: str) -> dict[str, Any]:
    """The documentation's example flag under another key (it uses segment ``eu``)."""
    flag = {k: v for k, v in EXAMPLE_FLAG.items() if k != "version"}
    return {**flag, "key": key, "salt": key, "description": description}


def flag_key(index: int) -> str:
    return f"model-{index:04d}"


def placement(flags: int) -> list[tuple[str, str]]:
    """Where the flags go: ``(environment, key)``, each environment filled up to the server's
    limit of ``MAX_FLAGS`` (500) flags before the next, with the same keys in each."""
    return [(ENVS[i // MAX_FLAGS], flag_key(i % MAX_FLAGS)) for i in range(flags)]


def seed(server: Any, args: argparse.Namespace) -> dict[str, float]:
    """Segment, metric, flags and their versions, plan, exposures; seconds spent on each."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.admin_token}"
    api = f"{server.url}/api/v1"
    seconds: dict[str, float] = {}

    def ok(answer: requests.Response, status: int, what: str) -> requests.Response:
        if answer.status_code != status:
            raise SystemExit(f"setup, {what}: {answer.status_code} {answer.text[:300]}")
        return answer

    started = time.perf_counter()
    flags = placement(args.flags)
    for env in sorted({env for env, _ in flags}):
        ok(session.post(f"{api}/envs/{env}/segments", json=SEGMENT, timeout=TIMEOUT), 201, "eu")
    ok(session.post(f"{api}/envs/{ENV}/metrics", json=METRIC, timeout=TIMEOUT), 201, "metric")
    bodies = {}
    for env, key in flags:
        bodies[env, key] = example_flag(key, f"Fraud model {key}, version 1")
        answer = session.post(f"{api}/envs/{env}/flags", json=bodies[env, key], timeout=TIMEOUT)
        ok(answer, 201, f"{env} {key}")
    seconds["flags"] = time.perf_counter() - started

    started = time.perf_counter()
    updates = max(0, args.history - args.flags)
    big = min(updates, max(0, args.big - 1))  # model-0000's versions after its first
    others = flags[1:] or flags
    order = [flags[0]] * big + [others[n % len(others)] for n in range(updates - big)]
    versions = dict.fromkeys(bodies, 1)
    for env, key in order:
        version = versions[env, key] = versions[env, key] + 1
        body = {**bodies[env, key], "description": f"Fraud model {key}, version {version}"}
        headers = {"If-Match": f'"{version - 1}"'}
        url = f"{api}/envs/{env}/flags/{key}"
        ok(session.put(url, json=body, headers=headers, timeout=TIMEOUT), 200, f"{env} {key}")
    seconds["versions"] = time.perf_counter() - started

    started = time.perf_counter()
    plan = f"{api}/envs/{ENV}/flags/{flag_key(0)}/rollout"
    ok(session.put(plan, json={**PLAN, "reason": "benchmark"}, timeout=TIMEOUT), 200, "plan")
    post_exposures(server, args.exposures, flag_key(0), versions[flags[0]])
    seconds["plan and exposures"] = time.perf_counter() - started
    history = sum(versions.values())
    if history != max(args.history, args.flags) or versions[flags[0]] != 1 + big:
        raise SystemExit(f"setup: {history} versions written, {args.history} wanted")
    return seconds


def post_exposures(server: Any, count: int, flag: str, version: int) -> None:
    """``count`` exposures of ``flag`` over 10,000 users (country and amount attributes)."""
    if count <= 0:
        return
    rng = random.Random(SEED)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sdk_token(server, ENV)}"
    now = time.time()
    for start in range(0, count, 1000):
        events = []
        for n in range(start, min(count, start + 1000)):
            moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - (count - n) * 0.01))
            events.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "ts": f"{moment}Z",
                    "flag": flag,
                    "flag_version": version,
                    "variant": "v2" if rng.random() < 0.01 else "v1",
                    "rule": "eu-small",
                    "unit_type": "user_id",
                    "unit": f"user-{rng.randrange(10_000):05d}",
                    "attrs": {
                        "country": rng.choice(COUNTRIES),
                        "amount": round(rng.uniform(0, 2000), 2),
                    },
                }
            )
        answer = session.post(
            f"{server.url}/api/v1/sdk/exposures", json={"events": events}, timeout=TIMEOUT
        )
        if answer.status_code != 200 or answer.json().get("accepted") != len(events):
            raise SystemExit(f"setup, exposures: {answer.status_code} {answer.text[:300]}")


def pages(args: argparse.Namespace) -> dict[str, str]:
    """Each page timed: its name and path (``model-0000`` is the flag with the long history)."""
    env = f"/ui/envs/{ENV}"
    here = min(args.flags, MAX_FLAGS)  # the flags of production
    big, small = f"{env}/flags/{flag_key(0)}", f"{env}/flags/{flag_key(here // 2)}"
    return {
        "flags, page 1": f"{env}/flags",
        "flags, last page": f"{env}/flags?page={max(1, -(-here // 100))}",
        "flags, search": f"{env}/flags?q=model-01",
        "flag, long history": big,
        "flag, long history, older page": f"{big}?before={max(2, args.big // 2)}",
        "flag, short history": small,
        "edit": f"{big}/edit",
        "rollout": f"{big}/rollout",
        "rollout plan": f"{big}/rollout/plan",
        "revert preview": f"{big}/revert?to=1",
        "promote preview": f"{big}/promote?to=staging",
        "kill confirmation": f"{big}/kill",
        "segments": f"{env}/segments",
        "segment eu": f"{env}/segments/eu",
        "metrics": f"{env}/metrics",
        "audit": "/ui/audit",
        "tokens": "/ui/tokens",
    }


def sign_in(server: Any) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"{server.url}/ui/sign-in",
        data={"token": server.admin_token, "next": "/ui"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    if answer.status_code != 303 or "rollwise_session" not in session.cookies:
        raise SystemExit(f"sign-in: {answer.status_code} {answer.text[:300]}")
    return session


def check(session: requests.Session, url: str, name: str) -> int:
    """The page answers 200 with HTML (no redirect to the sign-in page); its size."""
    answer = session.get(url, allow_redirects=False, timeout=TIMEOUT)
    kind = answer.headers.get("content-type", "")
    if answer.status_code != 200 or not kind.startswith("text/html"):
        raise SystemExit(f"{name}: {answer.status_code} {kind} {answer.text[:300]}")
    return len(answer.content)


def time_page(
    session: requests.Session, url: str, name: str, args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    for _ in range(args.warmup):
        check(session, url, name)
    samples = []
    cpu = CpuMeter(pid).start()
    for _ in range(args.requests):
        start = time.perf_counter()
        answer = session.get(url, allow_redirects=False, timeout=TIMEOUT)
        samples.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
    server_cpu = cpu.stop()["cpu_seconds"]
    figures = percentiles(samples, (50, 95, 99))
    figures["server_cpu_ms"] = server_cpu * 1000 / max(1, args.requests)
    figures["met"] = figures["p95"] < TARGET_P95_MS
    return figures


def print_table(results: dict[str, Any]) -> None:
    """The figures as a Markdown table (RESULTS.md's form)."""
    print("| page | KiB | p50 ms | p95 ms | p99 ms | max ms | server CPU ms/request | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, f in results.items():
        met = "met" if f["met"] else "**missed**"
        print(f"| {name} | {f['bytes'] / 1024:.0f} | {f['p50']:.1f} | {f['p95']:.1f} | "
              f"{f['p99']:.1f} | {f['max']:.1f} | {f['server_cpu_ms']:.1f} | {met} |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=1000)
    parser.add_argument("--history", type=int, default=10_000, help="versions of all flags")
    parser.add_argument("--big", type=int, default=1000, help="versions of model-0000")
    parser.add_argument("--exposures", type=int, default=20_000, help="of model-0000")
    parser.add_argument("--requests", type=int, default=200, help="timed, per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before timing, wait up to this many seconds for an idle machine (0: don't)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not 1 <= args.flags <= MAX_FLAGS * len(ENVS) or args.requests < 1:
        parser.error(f"--flags: 1 to {MAX_FLAGS * len(ENVS)}; --requests: at least 1")
    meta = machine_meta()
    results: dict[str, Any] = {}
    with running_server() as server:
        began = time.perf_counter()
        setup = seed(server, args)
        setup["total"] = time.perf_counter() - began
        session = sign_in(server)
        urls = {name: f"{server.url}{path}" for name, path in pages(args).items()}
        sizes = {name: check(session, url, name) for name, url in urls.items()}
        busy_before = wait_for_quiet(max_wait=args.quiet_wait) if args.quiet_wait > 0 else None
        machine = MachineMeter().start()
        pid = server.process.pid if server.process is not None else 0
        for name, url in urls.items():
            results[name] = {**time_page(session, url, name, args, pid), "bytes": sizes[name]}
        busy = machine.stop()
    missed = [name for name, figures in results.items() if not figures["met"]]
    if args.json:
        print(json.dumps({"benchmark": "console", "meta": meta, "args": vars(args),
                          "setup_seconds": setup, "machine_busy_before": busy_before,
                          "machine_busy": busy, "pages": results}, indent=2))  # fmt: skip
    else:
        print(f"{args.flags} flags, {args.history} versions ({args.big} of model-0000), "
              f"{args.exposures} exposures; {args.requests} requests per page")  # fmt: skip
        print("setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()))
        cpus = os.cpu_count()
        print(f"machine busy: {busy_before} cores before timing, {busy} during (of {cpus})")
        print_table(results)
    if missed:
        print(f"target missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

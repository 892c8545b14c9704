"""Benchmark and correctness check: concurrent editors of one flag with ``If-Match`` (issue 3).

What it does: ``--editors`` (20) editors, each with its own ``editor`` token (a thread with its
own keep-alive ``requests`` session), make ``--edits`` (50) edits each to the same flag of a
server in a child process (``python -m rollwise_server serve``, fresh SQLite database). An edit
reads the flag (``GET``: body and version), increments the counter kept in its
``description`` (``count=N``), tags the attempt (editor, edit, attempt) and writes it with
``PUT`` and ``If-Match: "<version>"``. A ``409`` (someone else wrote first) is counted as a
rejection and the editor reads again and retries, until its edit is accepted.

Invariants checked (exit 1 if one fails): every write is answered 200 or 409, nothing else;
every edit is accepted in the end; the history holds versions 1..1+accepted without a gap,
each accepted attempt's tag exactly once, at the version its ``PUT`` returned and with its
editor as the actor, and no rejected attempt's tag; no update is lost (the edit accepted as
version v carries count v-1, so the final count is the number of accepted edits); the final
flag (admin API and SDK rules document) equals the last accepted edit.

Reported: accepted and rejected (409) counts, accepted edits per second over the run, and the
latency of the writes (p50/p99/max; accepted and rejected separately).

Run: ``.venv/bin/python benchmarks/bench_server_editors.py [--editors 20] [--edits 50]
[--json] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from typing import Any

import requests

from bench_server_common import (
    ENV,
    CpuMeter,
    MachineMeter,
    add_run_arguments,
    admin_session,
    bench_flag,
    machine_meta,
    percentiles,
    running_server,
    server_env,
    wait_for_quiet,
)

FLAG = "contested"
_COUNT = re.compile(r"^count=(\d+) ")
META = ("key", "version", "archived", "updated_at", "updated_by")


def editor_tokens(server: Any, count: int) -> list[str]:
    admin = admin_session(server)
    secrets = []
    for i in range(count):
        response = admin.post(
            f"{server.url}/api/v1/tokens",
            json={"role": "editor", "name": f"editor-{i}"},
            timeout=30,
        )
        response.raise_for_status()
        secrets.append(response.json()["token"])
    return secrets


class Editor(threading.Thread):
    """One editor: ``edits`` edits, each retried on 409 until accepted (bounded)."""

    def __init__(
        self, index: int, url: str, token: str, edits: int, deadline: float, max_attempts: int
    ) -> None:
        super().__init__(name=f"editor-{index}", daemon=True)
        self.index, self.url, self.edits = index, url, edits
        self.deadline, self.max_attempts = deadline, max_attempts
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.reads: list[float] = []
        self.failures: list[str] = []

    def _read(self) -> dict[str, Any] | None:
        start = time.perf_counter()
        response = self.session.get(self.url, timeout=60)
        self.reads.append(time.perf_counter() - start)
        if response.status_code != 200 or response.headers.get("ETag") != (
            f'"{response.json().get("version")}"'
        ):
            self.failures.append(f"GET: {response.status_code} {response.text[:200]}")
            return None
        body: dict[str, Any] = response.json()
        return body

    def run(self) -> None:
        try:
            self._edit_all()
        except requests.RequestException as exc:
            self.failures.append(f"editor {self.index}: {exc!r}")

    def _edit_all(self) -> None:
        current = self._read()
        for edit in range(self.edits):
            for attempt in range(self.max_attempts):
                if current is None or time.monotonic() > self.deadline:
                    self.failures.append(f"editor {self.index}: gave up at edit {edit}")
                    return
                match = _COUNT.match(current.get("description", ""))
                if match is None:
                    self.failures.append(f"unexpected description {current.get('description')!r}")
                    return
                count = int(match.group(1)) + 1
                tag = f"e{self.index}-i{edit}-a{attempt}"
                body = {k: v for k, v in current.items() if k not in META}
                body["description"] = f"count={count} by={tag}"
                body["reason"] = f"edit {tag}"
                headers = {"If-Match": f'"{current["version"]}"'}
                start = time.perf_counter()
                response = self.session.put(self.url, json=body, headers=headers, timeout=60)
                elapsed = time.perf_counter() - start
                if response.status_code == 200:
                    answer = response.json()
                    self.accepted.append(
                        {
                            "tag": tag,
                            "count": count,
                            "based_on": current["version"],
                            "version": answer["version"],
                            "seconds": elapsed,
                            "body": answer,
                        }
                    )
                    current = answer  # the next edit starts from what was written
                    break
                if response.status_code == 409:
                    self.rejected.append(
                        {
                            "tag": tag,
                            "based_on": current["version"],
                            "current_version": response.json().get("current_version"),
                            "seconds": elapsed,
                        }
                    )
                    current = self._read()
                    continue
                self.failures.append(f"PUT {tag}: {response.status_code} {response.text[:300]}")
                return
            else:
                self.failures.append(f"editor {self.index}: edit {edit} never accepted")
                return


def verify(
    server: Any, editors: list[Editor], history: list[dict[str, Any]], final: dict[str, Any]
) -> list[str]:
    """The invariants of the module docstring; the list of those that fail."""
    problems: list[str] = []
    accepted = [a | {"editor": e.index} for e in editors for a in e.accepted]
    rejected = [r for e in editors for r in e.rejected]
    expected_edits = sum(e.edits for e in editors)
    if len(accepted) != expected_edits:
        problems.append(f"{len(accepted)} edits accepted, {expected_edits} made")
    versions = [h["version"] for h in history]
    if versions != list(range(1, 2 + len(accepted))):
        problems.append(f"history versions are not 1..{1 + len(accepted)} (got {len(versions)})")
    tags_in_history: dict[str, list[int]] = {}
    for entry in history[1:]:
        match = re.search(r"by=(\S+)$", entry["body"].get("description", ""))
        if match:
            tags_in_history.setdefault(match.group(1), []).append(entry["version"])
    by_version = {h["version"]: h for h in history}
    for edit in accepted:
        found = tags_in_history.get(edit["tag"], [])
        if found != [edit["version"]]:
            problems.append(f"accepted {edit['tag']} at version {edit['version']}: history {found}")
            continue
        entry = by_version[edit["version"]]
        if entry["actor"] != f"editor-{edit['editor']}" or entry["reason"] != f"edit {edit['tag']}":
            problems.append(f"version {edit['version']}: actor/reason {entry['actor']!r}")
        if edit["count"] != edit["version"] - 1 or edit["based_on"] != edit["version"] - 1:
            problems.append(
                f"lost update: {edit['tag']} is version {edit['version']} with count "
                f"{edit['count']}, based on version {edit['based_on']}"
            )
    leaked = [r["tag"] for r in rejected if r["tag"] in tags_in_history]
    if leaked:
        problems.append(f"{len(leaked)} rejected edits are in the history: {leaked[:5]}")
    stale = [r for r in rejected if r["current_version"] == r["based_on"]]
    if stale:
        problems.append(f"{len(stale)} 409s named the version they were based on")
    if accepted:
        last = max(accepted, key=lambda a: a["version"])
        strip = {k: v for k, v in final["flag"].items() if k not in ("updated_at",)}
        want = {k: v for k, v in last["body"].items() if k not in ("updated_at",)}
        if strip != want:
            problems.append(f"final flag differs from the last accepted edit {last['tag']}")
        document_flag = final["document"]["flags"].get(FLAG, {})
        if (
            document_flag.get("description") != last["body"]["description"]
            or document_flag.get("version") != last["version"]
        ):
            problems.append("the SDK rules document does not hold the last accepted edit")
        if history[-1]["body"].get("description") != last["body"]["description"]:
            problems.append("the last history entry is not the last accepted edit")
        if final["flag"]["description"] != f"count={len(accepted)} by={last['tag']}":
            problems.append(f"final count is {final['flag']['description']!r}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--editors", type=int, default=20)
    parser.add_argument("--edits", type=int, default=50, help="edits per editor")
    parser.add_argument("--max-attempts", type=int, default=2_000, help="per edit, at most")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the run, at most")
    add_run_arguments(parser, "the run")
    args = parser.parse_args()
    if not 0 < args.editors <= 200 or not 0 < args.edits <= 1000:
        parser.error("--editors must be in 1..200 and --edits in 1..1000")

    meta = machine_meta()
    meta["server_env"] = server_env(args.server_env)
    with running_server(**server_env(args.server_env)) as server:
        assert server.process is not None  # noqa: S101 - started by running_server
        tokens = editor_tokens(server, args.editors)
        admin = admin_session(server)
        url = f"{server.url}/api/v1/envs/{ENV}/flags/{FLAG}"
        created = admin.post(
            f"{server.url}/api/v1/envs/{ENV}/flags", json=bench_flag(FLAG, "count=0 by=create")
        )
        created.raise_for_status()
        if args.quiet_wait:
            meta["machine_cores_busy_before"] = wait_for_quiet(max_wait=args.quiet_wait)
        deadline = time.monotonic() + args.timeout
        editors = [
            Editor(i, url, tokens[i], args.edits, deadline, args.max_attempts)
            for i in range(args.editors)
        ]
        cpu, machine = CpuMeter(server.process.pid).start(), MachineMeter().start()
        me = os.times()
        start = time.perf_counter()
        for editor in editors:
            editor.start()
        for editor in editors:
            editor.join(max(0.0, deadline - time.monotonic()) + 30)
        seconds = time.perf_counter() - start
        me_after = os.times()
        server_cpu, machine_busy = cpu.stop(), machine.stop()
        history = admin.get(f"{url}/history", timeout=60).json()["versions"]
        flag = admin.get(url, timeout=60).json()
        sdk = admin.post(
            f"{server.url}/api/v1/tokens",
            json={"role": "sdk", "name": "check", "env": ENV},
            timeout=30,
        ).json()["token"]
        document = requests.get(
            f"{server.url}/api/v1/sdk/rules", headers={"Authorization": f"Bearer {sdk}"}, timeout=30
        ).json()

    failures = [f for e in editors for f in e.failures]
    if any(e.is_alive() for e in editors):
        failures.append("an editor did not finish in time")
    failures += verify(server, editors, history, {"flag": flag, "document": document})
    accepted = [a["seconds"] * 1000 for e in editors for a in e.accepted]
    rejected = [r["seconds"] * 1000 for e in editors for r in e.rejected]
    reads = [s * 1000 for e in editors for s in e.reads]

    def spread(values: list[float]) -> dict[str, Any]:
        return {
            k: (round(v, 2) if isinstance(v, float) else v) for k, v in percentiles(values).items()
        }

    generator_cpu = me_after.user + me_after.system - me.user - me.system
    result = {
        "benchmark": "editors",
        "meta": meta | {"loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "editors": args.editors,
        "edits_per_editor": args.edits,
        "accepted": len(accepted),
        "rejected_409": len(rejected),
        "writes": len(accepted) + len(rejected),
        "reads": len(reads),
        "seconds": round(seconds, 2),
        "accepted_per_s": round(len(accepted) / seconds, 1),
        "writes_per_s": round((len(accepted) + len(rejected)) / seconds, 1),
        "write_ms": spread(accepted + rejected),
        "accepted_write_ms": spread(accepted),
        "rejected_write_ms": spread(rejected),
        "read_ms": spread(reads),
        "history_versions": len(history),
        "server": server_cpu,
        "server_cpu_ms_per_request": round(
            server_cpu["cpu_seconds"] * 1000 / max(1, len(accepted) + len(rejected) + len(reads)), 2
        ),
        "generator_cores_busy": round(generator_cpu / seconds, 2),
        "machine_cores_busy": machine_busy,
        "invariants_hold": not failures,
        "failures": failures[:50],
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.editors} editors x {args.edits} edits: {len(accepted)} accepted, "
            f"{len(rejected)} rejected (409), {len(reads)} reads in {seconds:.1f} s = "
            f"{result['accepted_per_s']} accepted edits/s ({result['writes_per_s']} writes/s)"
        )
        for name in ("write_ms", "accepted_write_ms", "rejected_write_ms", "read_ms"):
            s = result[name]
            print(f"  {name:18} p50 {s.get('p50')}  p99 {s.get('p99')}  max {s.get('max')}")
        print(
            f"  server {server_cpu['cores_busy']} cores "
            f"({result['server_cpu_ms_per_request']} ms CPU/request), generator "
            f"{result['generator_cores_busy']}, whole machine {machine_busy}; history "
            f"{len(history)} versions; invariants {'hold' if not failures else 'FAIL'}"
        )
        for failure in failures[:20]:
            print(f"  FAILED: {failure}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()

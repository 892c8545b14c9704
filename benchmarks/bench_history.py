"""``/healthz`` latency while viewers read the largest allowed flag history in a loop.

A flag as large as the limits allow (``rollwise.limits``: variants with payloads of
``MAX_PAYLOAD_BYTES``, up to the document's size) is written ``--versions`` times; then
``--readers`` clients fetch its history pages (100 versions asked, as many as the page's byte
bound lets through) in a loop, walking to older pages and back, while one client probes
``/healthz``. Issue 12 asks for a p99 under 50 ms with four readers.

    ../.venv/bin/python bench_history.py [--versions 30] [--readers 4] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from multiprocessing.queues import Queue
from typing import Any

import requests

from bench_server_common import percentiles, running_server
from rollwise import limits


def large_flag(key: str, step: int) -> dict[str, Any]:
    """About ``MAX_DOCUMENT_BYTES`` of JSON: payloads of many small objects (the costly shape
    for a JSON Patch diff); each step changes a weight and one element of each payload."""
    per_item = len(json.dumps({"id": 100000, "w": 0.123}))
    items = (limits.MAX_PAYLOAD_BYTES - 100) // (per_item + 2)
    count = (limits.MAX_DOCUMENT_BYTES - 20_000) // limits.MAX_PAYLOAD_BYTES
    variants = {}
    for v in range(count):
        payload = [{"id": 100000 + i, "w": round((i * 7 % 1000) / 1000, 3)} for i in range(items)]
        payload[step % items] = {"id": step, "w": 0.5}
        variants[f"v{v}"] = {"payload": payload}
    split = [{"variant": name, "weight": 1 + (step if i == 0 else 0)}
             for i, name in enumerate(variants)]  # fmt: skip
    return {"key": key, "variants": variants, "off_variant": "v0", "default_variant": "v0",
            "rules": [{"id": "all", "conditions": [], "serve": {"split": split}}]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=30)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with running_server() as server:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {server.admin_token}"
        base = f"{server.url}/api/v1/envs/staging/flags"
        first = large_flag("big", 0)
        size = len(json.dumps(first))
        session.post(base, json=first, timeout=60).raise_for_status()
        for version in range(1, args.versions):
            headers = {"If-Match": f'"{version}"'}
            body = large_flag("big", version)
            session.put(f"{base}/big", json=body, headers=headers, timeout=60).raise_for_status()
        url = f"{base}/big/history"
        baseline = [probe(session, server.url) for _ in range(200)]
        stop = multiprocessing.Event()
        results: Queue[tuple[float, int] | str] = multiprocessing.Queue()
        readers = [
            multiprocessing.Process(target=read, args=(url, server.admin_token, stop, results))
            for _ in range(args.readers)
        ]  # processes: a reader's own work must not delay this process's probes
        for process in readers:
            process.start()
        first_page = checked(results.get(timeout=300))  # the readers are in their loops
        probes = []
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            probes.append(probe(session, server.url))
            time.sleep(0.02)
        stop.set()
        for process in readers:
            process.join(300)
        pages = [first_page]
        while not results.empty():
            pages.append(checked(results.get()))
    loaded = percentiles([p * 1000 for p in probes])
    idle = percentiles([p * 1000 for p in baseline])
    print(f"flag body {size / 1024:.0f} KiB, {args.versions} versions, {args.readers} readers")
    seconds, sizes = sorted(p[0] for p in pages), sorted(p[1] for p in pages)
    print(f"history pages: {len(pages)} read, median {seconds[len(pages) // 2] * 1000:.0f} ms, "
          f"median {sizes[len(pages) // 2] / 1e6:.1f} MB")  # fmt: skip
    print(f"/healthz idle:   p50 {idle['p50']:.1f} ms  p99 {idle['p99']:.1f} ms  (n={idle['n']})")
    print(f"/healthz loaded: p50 {loaded['p50']:.1f} ms  p99 {loaded['p99']:.1f} ms  "
          f"max {loaded['max']:.1f} ms  (n={loaded['n']})")  # fmt: skip


def read(url: str, token: str, stop: Any, results: Queue[tuple[float, int] | str]) -> None:
    """Fetch pages in a loop, older and older, then from the newest again. A failure is put on
    the queue as text, so the run stops with it instead of waiting for pages that never come."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    before: str | None = None
    try:
        while not stop.is_set():
            start = time.perf_counter()
            answer = session.get(url, params={"limit": 100, "before": before}, timeout=300)
            answer.raise_for_status()
            results.put((time.perf_counter() - start, len(answer.content)))
            tail = answer.content[-40:].decode().rsplit('"next_before":', 1)[1].rstrip("}")
            before = None if tail == "null" else tail
    except Exception as error:  # noqa: BLE001 - reported by the parent process
        results.put(f"reader failed at before={before}: {error!r}")


def checked(result: tuple[float, int] | str) -> tuple[float, int]:
    if isinstance(result, str):
        raise SystemExit(result)
    return result


def probe(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    session.get(f"{url}/healthz", timeout=30).raise_for_status()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

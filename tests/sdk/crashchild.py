"""An application process for the crash test: an online client recording exposures at a fixed
rate until it is killed.

``python -m tests.sdk.crashchild URL KEY CACHE_DIR RATE [OPTION=VALUE ...]`` evaluates a split
flag for ``user-0``, ``user-1``, ... (each a new exposure) at ``RATE`` per second, and writes
each index to stdout right after its evaluation returned: the last complete line is the last
exposure surely recorded when the parent kills it with SIGKILL.
"""

from __future__ import annotations

import json
import os
import sys
import time

import rollwise


def main(argv: list[str]) -> None:
    url, key, cache_dir, rate = argv[0], argv[1], argv[2], float(argv[3])
    options = {name: json.loads(value) for name, value in (a.split("=", 1) for a in argv[4:])}
    client = rollwise.Client(url, key, cache_dir=cache_dir, **options)
    if not client.wait_until_ready(30):
        sys.exit("the server did not answer")
    os.write(1, b"ready\n")
    due = time.monotonic()
    i = 0
    while True:
        client.variant("fraud-model", {"user_id": f"user-{i}", "country": "FR", "amount": 10})
        os.write(1, b"%d\n" % i)
        i += 1
        # at most RATE a second over any stretch: a stall is not made up with a burst
        now = time.monotonic()
        due = max(due + 1 / rate, now - 0.01)
        if due - now > 0.005:
            time.sleep(due - now)


if __name__ == "__main__":
    main(sys.argv[1:])

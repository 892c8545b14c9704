"""Benchmark: decay monitors by simulation (issue 16, item 6).

What it measures, with ``rollwise.analysis.monitoring.simulate_decay`` (the CUSUM recursion the
server's monitors run, on ``--runs`` simulated monitors at once, fixed seeds):

- false alarms: the share of monitors that fire within 30 days of checks every 10 minutes
  (4,320 checks) when nothing changes;
- detection: checks (10 minutes each) from the start of a 10% relative decay of the metric to
  the alarm, median / 95th percentile / maximum, with the share detected within the run;
- which stream fired first: overall, or the decayed cohort.

Traffic: a binary metric at 20%, 12,000 units an hour (2,000 a check), split over countries DE
30%, FR 30%, NL 20%, ES 20%, or over amount bands [0, 100) 50%, [100, 500) 35%, [500, inf)
15%; a baseline of a week (2,000,000 units). Streams: overall and each cohort (5 or 4), the
false-alarm budget alpha = 0.05 shared between them; alarms need the statistic above its
threshold at 2 consecutive checks.

Run: ``cd benchmarks && ../.venv/bin/python bench_monitor.py [--runs 400]``
"""

from __future__ import annotations

import argparse
import time

from rollwise.analysis.monitoring import simulate_decay

COUNTRIES = {"DE": 0.3, "FR": 0.3, "NL": 0.2, "ES": 0.2}
BANDS = {"[0, 100)": 0.5, "[100, 500)": 0.35, "[500, inf)": 0.15}
TRAFFIC = {"rate": 0.2, "units_per_check": 2000, "baseline_units": 2_000_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    print(f"{args.runs} simulated monitors per row; checks every 10 minutes")
    for name, shares in (("countries", COUNTRIES), ("amount bands", BANDS)):
        began = time.perf_counter()
        quiet = simulate_decay(**TRAFFIC, checks=4320, shares=shares, runs=args.runs, seed=11)
        print(f"no change, by {name}: false alarms within 30 days {quiet.false_alarms:.2%} "
              f"(h = {quiet.threshold:.2f}, {len(quiet.streams)} streams; "
              f"{time.perf_counter() - began:.1f} s)")  # fmt: skip
    cases = [("everywhere", COUNTRIES, None), ("NL only", COUNTRIES, "NL"),
             ("[500, inf) only", BANDS, "[500, inf)")]  # fmt: skip
    for label, shares, decayed in cases:
        found = simulate_decay(**TRAFFIC, checks=1440, shares=shares, runs=args.runs, seed=12,
                               relative_decay=0.10, start=720, decayed=decayed)  # fmt: skip
        median, p95 = found.delay_quantile(0.5), found.delay_quantile(0.95)
        worst = max(found.delays) if found.delays else None
        print(f"10% decay {label}: detected {found.detected:.1%}; delay in checks median "
              f"{median}, p95 {p95}, max {worst} (hours: {(median or 0) / 6:.1f} / "
              f"{(p95 or 0) / 6:.1f} / {(worst or 0) / 6:.1f}); first stream {found.named}; "
              f"false alarms before the decay {found.false_alarms:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()

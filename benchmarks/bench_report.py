"""Benchmark: a Report over 20 cohorts x 5 metrics from sufficient statistics (issue 5).

Target: < 0.5 s to build the report, its DataFrame and its HTML table.
Run: ``cd benchmarks && python bench_report.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rollwise.analysis.report import MetricSpec, Report
from rollwise.analysis.suffstats import SufficientStats

B = SufficientStats.binary


def build() -> tuple[
    dict[str, dict[object, tuple[SufficientStats, SufficientStats]]], dict[str, MetricSpec]
]:
    stats: dict[str, dict[object, tuple[SufficientStats, SufficientStats]]] = {}
    for m in range(5):
        metric: dict[object, tuple[SufficientStats, SufficientStats]] = {
            "overall": (B(200_000, 20_000), B(200_000, 20_100 + m))
        }
        for c in range(20):
            metric[("country", f"C{c}")] = (B(10_000, 1000), B(10_000, 1000 + 3 * c))
        stats[f"m{m}"] = metric
    return stats, {f"m{m}": MetricSpec(kind="binary") for m in range(5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    stats, specs = build()
    Report.from_stats("warm-up", stats, metric_specs=specs)  # imports, caches
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        report = Report.from_stats("f", stats, metric_specs=specs)
        report.to_frame()
        report._repr_html_()
        times.append(time.perf_counter() - start)
    print(f"report over 20 cohorts x 5 metrics: median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms over {args.repeats} runs")  # fmt: skip


if __name__ == "__main__":
    main()

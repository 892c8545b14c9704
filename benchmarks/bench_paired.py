"""Benchmark: units needed to detect a shadow model's gain, paired versus a two-sample split.

What it measures: for a fixed true effect, the number of units after which the always-valid
test (alpha 0.05, default tuning 5,000, a look every ``--look-every`` = 100 units) first
rejects "no difference", over ``--runs`` (300) simulations with fixed seeds; median and 90th
percentile. Two designs on the same kind of data:

- paired (the shadow stage): every unit is scored by both models, ``PairedStats`` ->
  ``compare_paired`` (N = the units);
- two-sample (an A/B split): the N units are split half/half, each half scored by one model,
  ``SufficientStats`` per arm -> ``compare``.

Scores:

- binary "prediction correct", live accuracy 0.90, shadow 0.91 (+0.01). The four (live,
  shadow) outcomes of each batch of units are drawn as one multinomial with
  P(1, 1) = p_l p_s + rho sd_l sd_s; a two-sample arm's successes are binomial.
- continuous, N(0, 1) for the live model and N(0.05, 1) for the shadow (a gain of 0.05 sd),
  correlation rho: drawn per unit.

Between-model correlations rho = 0.5, 0.8 and 0.95; for the binary score 0.95 cannot be had
with accuracies 0.90 and 0.91 (the largest correlation of two such 0/1 variables is
(0.90 - 0.90 * 0.91) / sqrt(0.09 * 0.0819) = 0.943), so the binary row uses 0.94. The
two-sample design does not depend on rho (no unit is scored twice), so it is simulated once per
score. A run that has not rejected by ``--max-units`` counts as "more than that": the median and
90th percentile are then reported as ``> max-units`` if they fall there.

Every look is the library's own call (no re-implementation of the formula).

Run: ``cd benchmarks && ../.venv/bin/python bench_paired.py [--runs 300] [--look-every 100]
[--max-units 400000] [--tuning 5000] [--seed 20261205] [--out results/paired-2026-12-05.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench_sdk_common import machine_meta
from rollwise.analysis import PairedStats, SufficientStats, compare, compare_paired

ALPHA = 0.05
P_LIVE, P_SHADOW = 0.90, 0.91
GAIN = 0.05  # the continuous score's shift, in sd
CORRELATIONS = {"binary": (0.5, 0.8, 0.94), "continuous": (0.5, 0.8, 0.95)}
BLOCK = 50  # looks drawn at once


def binary_probs(rho: float) -> list[float]:
    """P of the (live, shadow) outcomes (1, 1), (1, 0), (0, 1), (0, 0)."""
    p11 = P_LIVE * P_SHADOW + rho * math.sqrt(P_LIVE * (1 - P_LIVE) * P_SHADOW * (1 - P_SHADOW))
    probs = [p11, P_LIVE - p11, P_SHADOW - p11, 1 - P_LIVE - P_SHADOW + p11]
    if min(probs) < 0:
        raise ValueError(f"rho: {rho} is impossible for accuracies {P_LIVE} and {P_SHADOW}")
    return probs


def paired_blocks(
    rng: np.random.Generator, score: str, rho: float, step: int
) -> Iterator[np.ndarray]:
    """Blocks of per-look sums (looks x 6: sum l, sum s, sum l^2, sum s^2, sum ls, sum |s-l|)."""
    while True:
        if score == "binary":
            counts = rng.multinomial(step, binary_probs(rho), size=BLOCK).astype(float)
            n11, n10, n01 = counts[:, 0], counts[:, 1], counts[:, 2]
            sl, ss = n11 + n10, n11 + n01
            yield np.stack([sl, ss, sl, ss, n11, n10 + n01], axis=1)
        else:
            live = rng.standard_normal((BLOCK, step))
            shadow = rho * live + math.sqrt(1 - rho * rho) * rng.standard_normal((BLOCK, step))
            shadow += GAIN
            products = [live, shadow, live * live, shadow * shadow, live * shadow]
            sums = [p.sum(axis=1) for p in (*products, np.abs(shadow - live))]
            yield np.stack(sums, axis=1)


def split_blocks(rng: np.random.Generator, score: str, step: int) -> Iterator[np.ndarray]:
    """Blocks of per-look sums of the two arms, ``step // 2`` new units each (looks x 4:
    control sum, control sum of squares, candidate sum, candidate sum of squares)."""
    half = step // 2
    while True:
        if score == "binary":
            control = rng.binomial(half, P_LIVE, BLOCK).astype(float)
            candidate = rng.binomial(half, P_SHADOW, BLOCK).astype(float)
            yield np.stack([control, control, candidate, candidate], axis=1)
        else:
            control = rng.standard_normal((BLOCK, half))
            candidate = rng.standard_normal((BLOCK, half)) + GAIN
            yield np.stack(
                [control.sum(1), (control**2).sum(1), candidate.sum(1), (candidate**2).sum(1)],
                axis=1,
            )


def paired_units(rng: np.random.Generator, score: str, rho: float, args: Any) -> int | None:
    """Units at the first look whose ``compare_paired`` rejects (None: not by --max-units)."""
    totals = np.zeros(6)
    n = 0
    for block in paired_blocks(rng, score, rho, args.look_every):
        for sums in np.cumsum(block, axis=0) + totals:
            n += args.look_every
            sl, ss, sll, sss, sls, sa = (float(x) for x in sums)
            stats = PairedStats(
                n=n, live_total=sl, shadow_total=ss, live_m2=sll - sl * sl / n,
                shadow_m2=sss - ss * ss / n, comoment=sls - sl * ss / n, abs_total=sa,
            )  # fmt: skip
            if compare_paired(stats, alpha=ALPHA, tuning=args.tuning).p_value < ALPHA:
                return n
            if n >= args.max_units:
                return None
        totals = sums
    return None  # pragma: no cover (the generator never ends)


def split_units(rng: np.random.Generator, score: str, args: Any) -> int | None:
    """Units (both arms) at the first look whose two-sample ``compare`` rejects."""
    totals = np.zeros(4)
    n = 0
    for block in split_blocks(rng, score, args.look_every):
        for sums in np.cumsum(block, axis=0) + totals:
            n += args.look_every
            half = n // 2
            c_sum, c_sq, t_sum, t_sq = (float(x) for x in sums)
            if score == "binary":
                control = SufficientStats.binary(half, c_sum)
                candidate = SufficientStats.binary(half, t_sum)
            else:
                control = SufficientStats.from_sums(n=half, total=c_sum, total_sq=c_sq,
                                                    kind="mean")  # fmt: skip
                candidate = SufficientStats.from_sums(n=half, total=t_sum, total_sq=t_sq,
                                                      kind="mean")  # fmt: skip
            if compare(control, candidate, alpha=ALPHA, tuning=args.tuning).p_value < ALPHA:
                return n
            if n >= args.max_units:
                return None
        totals = sums
    return None  # pragma: no cover


def summary(units: list[int | None], cap: int) -> dict[str, Any]:
    """Median and 90th percentile (the order statistics; a run that never rejected is > cap)."""
    ordered = sorted(math.inf if u is None else u for u in units)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    median, p90 = quantile(0.5), quantile(0.9)
    return {
        "median": None if math.isinf(median) else median,
        "p90": None if math.isinf(p90) else p90,
        "not_rejected_by_cap": sum(u is None for u in units),
        "cap": cap,
    }


def shown(value: float | None, cap: int) -> str:
    return f"> {cap:,}" if value is None else f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--look-every", type=int, default=100, help="units between looks")
    parser.add_argument("--max-units", type=int, default=400_000)
    parser.add_argument("--tuning", type=float, default=5000)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args()
    if args.look_every % 2:
        parser.error("--look-every: must be even (the two-sample design splits it in halves)")
    meta = machine_meta()
    began = time.perf_counter()
    rows = []
    for s_index, score in enumerate(("binary", "continuous")):
        split = [
            split_units(np.random.default_rng([args.seed, s_index, 9, run]), score, args)
            for run in range(args.runs)
        ]
        split_summary = summary(split, args.max_units)
        if score == "binary":
            unit_var = [P_LIVE * (1 - P_LIVE), P_SHADOW * (1 - P_SHADOW)]
        else:
            unit_var = [1.0, 1.0]
        for r_index, rho in enumerate(CORRELATIONS[score]):
            paired = []
            for run in range(args.runs):
                rng = np.random.default_rng([args.seed, s_index, r_index, run])
                paired.append(paired_units(rng, score, rho, args))
            paired_summary = summary(paired, args.max_units)
            var_d = unit_var[0] + unit_var[1] - 2 * rho * math.sqrt(unit_var[0] * unit_var[1])
            row = {
                "score": score,
                "effect": P_SHADOW - P_LIVE if score == "binary" else GAIN,
                "rho": rho,
                "paired": paired_summary,
                "two_sample": split_summary,
                "median_ratio": (
                    split_summary["median"] / paired_summary["median"]
                    if split_summary["median"] and paired_summary["median"]
                    else None
                ),
                "variance_ratio": 2 * (unit_var[0] + unit_var[1]) / var_d,
                "paired_units": paired,
                "two_sample_units": split,
            }
            rows.append(row)
            cap = args.max_units
            print(
                f"{score:10} rho {rho:4}: paired median {shown(paired_summary['median'], cap)} "
                f"p90 {shown(paired_summary['p90'], cap)}; two-sample median "
                f"{shown(split_summary['median'], cap)} p90 {shown(split_summary['p90'], cap)}",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - began
    sys.stderr.flush()
    print()
    print("| score | effect | rho | paired: median | paired: p90 | two-sample: median "
          "| two-sample: p90 | ratio of medians | variance ratio 2(v_l+v_s)/var_d |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        p, t = row["paired"], row["two_sample"]
        effect = "+0.01 (0.90 -> 0.91)" if row["score"] == "binary" else "+0.05 sd"
        ratio = f"{row['median_ratio']:.1f}x" if row["median_ratio"] else "n/a"
        print(
            f"| {row['score']} | {effect} | {row['rho']} | {shown(p['median'], args.max_units)} "
            f"| {shown(p['p90'], args.max_units)} | {shown(t['median'], args.max_units)} "
            f"| {shown(t['p90'], args.max_units)} | {ratio} | {row['variance_ratio']:.1f}x |"
        )
    print(f"\n{args.runs} runs per cell, wall {wall:.0f} s", flush=True)
    if args.out:
        result = {
            "benchmark": "paired",
            "meta": meta,
            "params": {
                **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "alpha": ALPHA,
                "binary_accuracies": [P_LIVE, P_SHADOW],
                "continuous_gain_sd": GAIN,
                "correlations": CORRELATIONS,
            },
            "rows": rows,
            "wall_seconds": round(wall, 1),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo: evaluate the example rules for 100,000 simulated users and show who gets what.

Run with ``make demo``. It loads ``docs/examples/fraud-model.json`` into an offline client,
evaluates the ``fraud-model`` flag for simulated card transactions (fixed seed), and prints the
assignment shares per rule and per country, and how many exposures the splits logged.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from pathlib import Path

import rollwise

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "examples" / "fraud-model.json"
USERS = 100_000
SEED = 7
COUNTRIES = {
    "DE": 18,
    "FR": 14,
    "NL": 6,
    "US": 25,
    "GB": 12,
    "ES": 8,
    "IT": 7,
    "PL": 4,
    "BR": 4,
    "IN": 2,
}


def simulate(users: int, seed: int) -> list[dict[str, object]]:
    """Card transactions: a user id, a country (weighted) and an amount (log-normal, in EUR)."""
    rng = random.Random(seed)
    names, weights = zip(*COUNTRIES.items(), strict=True)
    countries = rng.choices(names, weights=weights, k=users)
    return [
        {
            "user_id": f"user-{i:06d}",
            "country": countries[i],
            "amount": round(rng.lognormvariate(5, 1.1), 2),
        }
        for i in range(users)
    ]


def table(title: str, counts: dict[str, Counter[str]], variants: list[str]) -> None:
    print(f"\n{title}")
    print(f"  {'':14}" + "".join(f"{v:>10}" for v in variants) + f"{'total':>10}  share of v2")
    for key in sorted(counts, key=lambda k: -sum(counts[k].values())):
        row = counts[key]
        total = sum(row.values())
        print(
            f"  {key:14}"
            + "".join(f"{row[v]:>10,}" for v in variants)
            + f"{total:>10,}  {row['v2'] / total:>9.2%}"
        )


def main() -> int:
    exposures: list[rollwise.Exposure] = []
    client = rollwise.Client.offline(RULES, on_exposure=exposures.append)
    flag = client.rules.flags["fraud-model"] if client.rules else None
    print(f"rollwise {rollwise.__version__} demo: {RULES.relative_to(ROOT)}")
    print(f"flag fraud-model v{flag.version if flag else '?'}: {flag.description if flag else ''}")
    contexts = simulate(USERS, SEED)
    by_rule: dict[str, Counter[str]] = {}
    by_country: dict[str, Counter[str]] = {}
    start = time.perf_counter()
    for ctx in contexts:
        assignment = client.evaluate("fraud-model", ctx)
        rule = assignment.rule or f"({assignment.reason.value.lower()})"
        variant = assignment.variant or "none"
        by_rule.setdefault(rule, Counter())[variant] += 1
        by_country.setdefault(str(ctx["country"]), Counter())[variant] += 1
    elapsed = time.perf_counter() - start
    variants = sorted(flag.variants) if flag else ["v1", "v2"]
    print(f"\n{USERS:,} simulated card transactions evaluated and tallied in {elapsed:.2f} s")
    table("Assignments per rule", by_rule, variants)
    table("Assignments per country", by_country, variants)
    split = sum(by_rule.get("eu-small", Counter()).values())
    print(
        f"\nExposures logged: {len(exposures):,} "
        f"(one per unit that went through the eu-small split: {split:,})"
    )
    if exposures:
        print(f"  e.g. {exposures[0].to_json()}")
    return 0 if len(exposures) == split else 1


if __name__ == "__main__":
    sys.exit(main())

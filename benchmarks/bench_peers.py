"""Peer SDKs for ``bench_variant.py``: the reference flag expressed in each peer's own format.

``peer_candidates(reference)`` returns ``(name, make)`` pairs, one per peer that is installed
and evaluates the flag correctly; ``make()`` builds a fresh, offline client and returns
``variant(flag_key, ctx) -> variant key`` for one user per call. A peer that is not installed
is skipped silently; one whose translated flag fails ``check`` is skipped with a note on
stderr.

Peers (``pip install -e '.[bench]'``):

- growthbook (sync ``GrowthBook`` class): one instance, features passed in (no url, no
  client key: no network, no refresh), ``on_experiment_viewed`` set to a no-op so exposure
  tracking runs as it would in production; per call ``set_attributes(ctx)`` then
  ``get_feature_value(flag, default)``.
- eppo-server-sdk 4.x (Rust core): ``eppo_client.init`` with the flag as a Universal Flag
  Configuration in ``initial_configuration`` and ``poll_interval_seconds=None`` (no poller,
  no network), a no-op ``AssignmentLogger``; per call ``get_string_assignment``. A second
  row wraps that logger in Eppo's ``AssignmentCacheLogger`` (assignments de-duplicated, as
  rollwise and GrowthBook de-duplicate exposures).

openfeature-sdk is not covered: its ``InMemoryProvider`` has no targeting or bucketing of its
own (rules would be our Python in a ``context_evaluator``), so it would not measure a peer.

Run ``python benchmarks/bench_peers.py`` to check every installed peer and print its shares.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

Variant = Callable[[str, dict[str, Any]], Any]
Make = Callable[[], Variant]

QA_USERS = ("u1", "u2", "u3")
EU = frozenset({"DE", "FR", "NL"})
CHECK_USERS = 20_000
CHECK_SHARE, CHECK_TOLERANCE = 0.10, 0.02


class Unsupported(ValueError):
    """The reference uses something this translation does not cover."""


class CheckFailed(AssertionError):
    """A peer's translation of the flag does not behave like the reference."""


def _flags(reference: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if reference.get("segments"):
        raise Unsupported("segments")
    flags: dict[str, dict[str, Any]] = reference["flags"]
    return flags


def _conditions(rule: dict[str, Any]) -> list[dict[str, Any]]:
    if "segment" in rule or "segments" in rule:
        raise Unsupported(f"rule {rule.get('id')}: segment references")
    conditions: list[dict[str, Any]] = rule.get("conditions", [])
    for cond in conditions:
        if cond.get("negate"):
            raise Unsupported(f"rule {rule.get('id')}: negated condition")
    return conditions


def _split(serve: dict[str, Any]) -> tuple[list[str], list[float]]:
    arms = serve["split"]
    total = sum(arm["weight"] for arm in arms)
    return [arm["variant"] for arm in arms], [arm["weight"] / total for arm in arms]


# --- growthbook ----------------------------------------------------------------------------

_GB_OPERATORS = {
    "in": "$in",
    "not_in": "$nin",
    "eq": "$eq",
    "neq": "$ne",
    "lt": "$lt",
    "lte": "$lte",
    "gt": "$gt",
    "gte": "$gte",
}


def growthbook_features(reference: dict[str, Any]) -> dict[str, Any]:
    """The reference flags as GrowthBook features (a force rule or an experiment rule each)."""
    features = {}
    for key, flag in _flags(reference).items():
        rules: list[dict[str, Any]] = []
        if flag.get("enabled", True):
            for rule in flag["rules"]:
                condition: dict[str, dict[str, Any]] = {}
                for cond in _conditions(rule):
                    operator = _GB_OPERATORS.get(cond["operator"])
                    if operator is None:
                        raise Unsupported(f"growthbook: operator {cond['operator']}")
                    operand = cond["values"] if "values" in cond else cond["value"]
                    condition.setdefault(cond["attribute"], {})[operator] = operand
                serve = rule["serve"]
                if serve.get("variant") is not None:
                    rules.append(
                        {"id": rule["id"], "condition": condition, "force": serve["variant"]}
                    )
                    continue
                variations, weights = _split(serve)
                rules.append(
                    {
                        "id": rule["id"],
                        "key": f"{key}:{rule['id']}",
                        "condition": condition,
                        "variations": variations,
                        "weights": weights,
                        "coverage": 1.0,
                        "hashAttribute": serve.get("bucket_by", "user_id"),
                        "hashVersion": 2,
                        "seed": f"{flag.get('salt', key)}:{rule['id']}",
                    }
                )
            default = flag["default_variant"]
        else:
            default = flag["off_variant"]
        features[key] = {"defaultValue": default, "rules": rules}
    return features


def _ignore_exposure(*args: Any, **kwargs: Any) -> None:
    """Tracking callback: exposure tracking on (built, de-duplicated, delivered), then dropped."""


def growthbook_maker(reference: dict[str, Any]) -> Make:
    from growthbook import GrowthBook

    features = growthbook_features(reference)
    defaults = {key: feature["defaultValue"] for key, feature in features.items()}

    def make() -> Variant:
        gb = GrowthBook(features=features, on_experiment_viewed=_ignore_exposure)
        set_attributes, get_feature_value = gb.set_attributes, gb.get_feature_value

        # The sync SDK evaluates for the instance's current attributes; its multi-user client
        # (GrowthBookClient, one UserContext per call) is asyncio-only. So a sync server keeps
        # one instance with the features loaded and, per request, sets that user's attributes
        # and reads the value: the cheapest correct per-request path (set_attributes is a plain
        # assignment without a sticky-bucket service or remote eval). Not thread-safe: threaded
        # servers need an instance per request or per thread. A fresh GrowthBook() per request
        # (the other documented pattern) costs its constructor on every call on top of this.
        def variant(flag_key: str, ctx: dict[str, Any]) -> Any:
            set_attributes(ctx)
            return get_feature_value(flag_key, defaults[flag_key])

        return variant

    return make


# --- eppo-server-sdk -----------------------------------------------------------------------

TOTAL_SHARDS = 10_000

_EPPO_OPERATORS = {
    "in": "ONE_OF",
    "not_in": "NOT_ONE_OF",
    "lt": "LT",
    "lte": "LTE",
    "gt": "GT",
    "gte": "GTE",
}


def eppo_ufc(reference: dict[str, Any], subject: str = "user_id") -> dict[str, Any]:
    """The reference flags in Eppo's Universal Flag Configuration (server format).

    Each rule becomes an allocation (its conditions ANDed in one UFC rule); the default is a
    last allocation without rules. Splits hash the subject key (``subject``, the user id) over
    10,000 shards; conditions on ``subject`` use Eppo's built-in ``id`` attribute. Only split
    allocations log assignments, as only splits are exposures in rollwise and GrowthBook.
    """
    flags = {}
    for key, flag in _flags(reference).items():
        salt = flag.get("salt", key)
        allocations = []
        enabled = flag.get("enabled", True)
        for rule in flag["rules"] if enabled else []:
            conditions = []
            for cond in _conditions(rule):
                operator = _EPPO_OPERATORS.get(cond["operator"])
                if operator is None:
                    raise Unsupported(f"eppo: operator {cond['operator']}")
                if "values" in cond:  # ONE_OF compares strings
                    value: Any = [str(v) for v in cond["values"]]
                else:
                    value = cond["value"]
                attribute = "id" if cond["attribute"] == subject else cond["attribute"]
                conditions.append({"attribute": attribute, "operator": operator, "value": value})
            serve = rule["serve"]
            if serve.get("variant") is not None:
                splits = [{"variationKey": serve["variant"], "shards": []}]
                do_log = False
            else:
                if serve.get("bucket_by", "user_id") != subject:
                    raise Unsupported("eppo: splits hash the subject key only")
                variations, weights = _split(serve)
                splits, start, cumulative = [], 0, 0.0
                for variation, weight in zip(variations, weights, strict=True):
                    cumulative += weight
                    end = round(cumulative * TOTAL_SHARDS)
                    shard = {
                        "salt": f"{salt}-{rule['id']}",
                        "ranges": [{"start": start, "end": end}],
                    }
                    splits.append({"variationKey": variation, "shards": [shard]})
                    start = end
                do_log = True
            allocations.append(
                {
                    "key": rule["id"],
                    "rules": [{"conditions": conditions}],
                    "splits": splits,
                    "doLog": do_log,
                }
            )
        default = flag["default_variant"] if enabled else flag["off_variant"]
        allocations.append(
            {"key": "default", "splits": [{"variationKey": default, "shards": []}], "doLog": False}
        )
        flags[key] = {
            "key": key,
            "enabled": True,
            "variationType": "STRING",
            "variations": {name: {"key": name, "value": name} for name in flag["variants"]},
            "allocations": allocations,
            "totalShards": TOTAL_SHARDS,
        }
    return {
        "createdAt": "2026-01-01T00:00:00Z",
        "format": "SERVER",
        "environment": {"name": reference.get("environment", "bench")},
        "flags": flags,
    }


def eppo_maker(reference: dict[str, Any], dedup: bool = False) -> Make:
    """Eppo client factory; ``dedup`` wraps the logger in Eppo's ``AssignmentCacheLogger``.

    The Rust core calls the logger for every assignment of a ``doLog`` allocation, repeats
    included; ``AssignmentCacheLogger`` is Eppo's de-duplication (a cache keyed by flag and
    subject), here a 100,000-entry, 1-hour TTL cache like rollwise's exposure de-duplication.
    """
    import eppo_client
    from eppo_client.config import Config

    class IgnoreAssignments(eppo_client.AssignmentLogger):
        """Assignment logging on (events built and handed to Python), then dropped."""

        def log_assignment(self, event: dict[str, Any]) -> None:
            pass

        def log_bandit_action(self, event: dict[str, Any]) -> None:
            pass

    ufc = json.dumps(eppo_ufc(reference)).encode()
    flags = _flags(reference)
    defaults = {
        key: flag["default_variant" if flag.get("enabled", True) else "off_variant"]
        for key, flag in flags.items()
    }
    attributes = sorted(
        {
            cond["attribute"]
            for flag in flags.values()
            for rule in flag["rules"]
            for cond in rule.get("conditions", [])
        }
        - {"user_id"}
    )
    if attributes != ["amount", "country"]:
        raise Unsupported(f"eppo adapter passes country and amount, the flag uses {attributes}")

    def make() -> Variant:
        logger: Any = IgnoreAssignments()
        if dedup:
            from cachetools import TTLCache

            cache: TTLCache[Any, Any] = TTLCache(maxsize=100_000, ttl=3600.0)
            logger = eppo_client.AssignmentCacheLogger(logger, assignment_cache=cache)
        config = Config(
            api_key="bench",
            assignment_logger=logger,
            poll_interval_seconds=None,  # no poller: no request to fscdn.eppo.cloud at all
            initial_configuration=eppo_client.Configuration(flags_configuration=ufc),
        )
        client = eppo_client.init(config)
        if not client.is_initialized():
            raise CheckFailed("eppo: client not initialized from initial_configuration")
        get_string_assignment = client.get_string_assignment

        # The server SDK's per-request call: subject key plus that user's attributes.
        def variant(flag_key: str, ctx: dict[str, Any]) -> Any:
            return get_string_assignment(
                flag_key,
                ctx["user_id"],
                {"country": ctx["country"], "amount": ctx["amount"]},
                defaults[flag_key],
            )

        return variant

    return make


# --- correctness check ---------------------------------------------------------------------


def check(variant: Variant, flag_key: str = "fraud-model", users: int = CHECK_USERS) -> dict:
    """Raise ``CheckFailed`` unless ``variant`` serves the reference flag; return the counts.

    The QA users get v2 whatever their country and amount; outside the EU or at amount >= 500
    everyone gets v1; in the EU-small group v2 goes to 10% +- 2% of users.
    """
    from bench_variant import contexts

    qa = [
        {"user_id": uid, "country": country, "amount": amount}
        for uid in QA_USERS
        for country in ("DE", "US")
        for amount in (10.0, 1500.0)
    ]
    for ctx in qa:
        got = variant(flag_key, ctx)
        if got != "v2":
            raise CheckFailed(f"{ctx}: expected v2 (QA user), got {got!r}")
    others = eu_small = v2 = 0
    for ctx in contexts()[:users]:
        got = variant(flag_key, ctx)
        if ctx["country"] in EU and ctx["amount"] < 500:
            if got not in ("v1", "v2"):
                raise CheckFailed(f"{ctx}: expected v1 or v2, got {got!r}")
            eu_small += 1
            v2 += got == "v2"
        else:
            if got != "v1":
                raise CheckFailed(f"{ctx}: expected v1 (outside rule 2), got {got!r}")
            others += 1
    share = v2 / eu_small if eu_small else float("nan")
    if not abs(share - CHECK_SHARE) <= CHECK_TOLERANCE:
        raise CheckFailed(f"v2 share in the EU-small group is {share:.4f}, not 0.10 +- 0.02")
    return {"qa": len(qa), "others": others, "eu_small": eu_small, "v2": v2, "v2_share": share}


# --- entry points --------------------------------------------------------------------------

PEERS: list[tuple[str, str, Callable[[dict[str, Any]], Make]]] = [
    ("growthbook", "growthbook get_feature_value(), tracking callback", growthbook_maker),
    ("eppo", "eppo get_string_assignment(), assignment logger", eppo_maker),
    (
        "eppo+dedup",
        "eppo get_string_assignment(), de-duplicating logger",
        lambda reference: eppo_maker(reference, dedup=True),
    ),
]


def _checked(reference: dict[str, Any]) -> list[tuple[str, Make, dict[str, Any]]]:
    out = []
    for peer, name, maker in PEERS:
        try:
            make = maker(reference)
        except ImportError:
            continue
        except Unsupported as exc:
            print(f"bench_peers: {peer} skipped, flag not translatable: {exc}", file=sys.stderr)
            continue
        try:
            stats = check(make())
        except CheckFailed as exc:
            print(f"bench_peers: {peer} skipped, check failed: {exc}", file=sys.stderr)
            continue
        out.append((name, make, stats))
    return out


def peer_candidates(reference: dict[str, Any]) -> list[tuple[str, Make]]:
    """``(name, make)`` for every installed peer whose translation of the flag passes ``check``."""
    return [(name, make) for name, make, _stats in _checked(reference)]


def main() -> None:
    from bench_variant import REFERENCE

    checked = _checked(REFERENCE)
    if not checked:
        print("no peer installed (pip install -e '.[bench]') or none passed the check")
    for name, _make, s in checked:
        print(
            f"{name}: ok; QA users {s['qa']}/{s['qa']} v2, others {s['others']} all v1, "
            f"EU-small v2 {s['v2']}/{s['eu_small']} = {s['v2_share']:.2%}"
        )


if __name__ == "__main__":
    main()

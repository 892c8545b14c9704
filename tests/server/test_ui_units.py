"""The console's pure parts: the editor's form model, problem paths to fields, readable
changes and the blast radius replay."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rollwise.rules import Flag
from rollwise_server.storage import open_store
from rollwise_server.ui import draft as drafts
from rollwise_server.ui.blast import radius_of
from rollwise_server.ui.changes import changes
from rollwise_server.ui.context import Form
from tests.server.conftest import EU_SEGMENT, example_flag

SEGMENTS = {"eu": {"conditions": EU_SEGMENT["conditions"]}}


def _canonical(body: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in body.items() if k != "key"}
    return Flag.from_json({**data, "version": 1}, key="f", segments=["eu"], strict=True).to_json()


def _as_form(draft: dict[str, Any]) -> Form:
    """The draft as the editor's fields (what a browser posts back unchanged)."""
    pairs: list[tuple[str, str]] = []
    for name in ("key", "description", "salt", "off_variant", "default_variant",
                 "cohort_attributes", "schedule_start", "schedule_end"):  # fmt: skip
        pairs.append((name, draft[name]))
    if draft["enabled"]:
        pairs.append(("enabled", "on"))
    for i, v in enumerate(draft["variants"]):
        pairs += [(f"variants-{i}-key", v["key"]), (f"variants-{i}-payload", v["payload"])]
    for i, rule in enumerate(draft["rules"]):
        p = f"rules-{i}-"
        pairs += [(f"{p}id", rule["id"]), (f"{p}serve", rule["serve"])]
        pairs += [(f"{p}variant", rule["variant"]), (f"{p}bucket_by", rule["bucket_by"])]
        for k, arm in enumerate(rule["split"]):
            pairs += [
                (f"{p}split-{k}-variant", arm["variant"]),
                (f"{p}split-{k}-weight", arm["weight"]),
            ]
        for j, cond in enumerate(rule["conditions"]):
            c = f"{p}conditions-{j}-"
            for field in (
                "type",
                "attribute",
                "operator",
                "values",
                "value",
                "low",
                "high",
                "segment",
            ):
                pairs.append((f"{c}{field}", cond[field]))
            for flag in ("negate", "case_insensitive"):
                if cond[flag]:
                    pairs.append((f"{c}{flag}", "on"))
            if cond["numbers"]:
                pairs.append((f"{c}numbers", "1"))
    return Form(pairs)


def test_the_example_flag_survives_the_form_unchanged() -> None:
    body = example_flag()
    draft = drafts.from_body("fraud-model", body)
    again, problems = drafts.to_body(drafts.from_form(_as_form(draft)))
    assert problems == {}
    assert _canonical(again) == _canonical(body)


def test_every_operator_round_trips() -> None:
    operands: dict[str, Any] = {
        "in": {"values": ["a", "b"]}, "not_in": {"values": ["c"]}, "eq": {"value": 5},
        "neq": {"value": "x"}, "lt": {"value": 1.5}, "lte": {"value": 2}, "gt": {"value": -3},
        "gte": {"value": 0}, "between": {"values": [0, 500]}, "starts_with": {"value": "ab"},
        "ends_with": {"value": "yz"}, "contains": {"value": "mid"}, "matches": {"value": "^a+$"},
        "semver_eq": {"value": "1.2.3"}, "semver_lt": {"value": "2.0.0"},
        "semver_lte": {"value": "2.0.0"}, "semver_gt": {"value": "1.0.0"},
        "semver_gte": {"value": "1.0.0-rc.1"}, "before": {"value": "2026-01-01T00:00:00Z"},
        "after": {"value": "2025-01-01"}, "exists": {},
    }  # fmt: skip
    assert set(operands) == set(drafts.OPERATOR_NAMES)  # every operator of the spec
    conditions = [{"attribute": "x", "operator": op, **operand} for op, operand in operands.items()]
    conditions[0]["case_insensitive"] = True
    conditions[1]["negate"] = True
    body = {**example_flag(), "rules": [{"id": "all", "conditions": conditions,
                                         "serve": {"variant": "v2"}}]}  # fmt: skip
    draft = drafts.from_body("f", body)
    again, problems = drafts.to_body(drafts.from_form(_as_form(draft)))
    assert problems == {}
    assert _canonical(again) == _canonical(body)


def test_fields_that_cannot_be_read_are_named() -> None:
    draft = drafts.from_body("f", example_flag())
    draft["variants"][0]["payload"] = "{oops"
    draft["rules"][1]["split"][0]["weight"] = "1.5"
    draft["rules"][1]["conditions"][1]["value"] = "five hundred"
    draft["schedule_start"] = "tomorrow"
    _, problems = drafts.to_body(draft)
    assert set(problems) == {
        "variants-0-payload", "rules-1-split-0-weight", "rules-1-conditions-1-value",
        "schedule_start",
    }  # fmt: skip


def test_problem_paths_name_their_fields() -> None:
    draft = drafts.from_body("f", example_flag())
    draft["rules"][1]["conditions"][1]["operator"] = "between"
    cases = {
        "default_variant": "default_variant",
        "schedule.start": "schedule_start",
        "rules[1].serve.split[0].weight": "rules-1-split-0-weight",
        "rules[0].serve.variant": "rules-0-variant",
        "rules[0].conditions[0].values[1]": "rules-0-conditions-0-values",
        "rules[1].conditions[1].values": "rules-1-conditions-1-low",
        "cohort_attributes[1]": "cohort_attributes",
        "variants.v2.payload": "variants-1-payload",
        "rules[1].serve.split": "rules-1-split-0-weight",
    }
    for path, field in cases.items():
        assert drafts.field_of(path, draft) == field, path


def test_row_buttons() -> None:
    draft = drafts.from_body("f", example_flag())
    assert drafts.apply_action(draft, "add-condition:1")
    assert len(draft["rules"][1]["conditions"]) == 3
    assert drafts.apply_action(draft, "rule-up:1")
    assert draft["rules"][0]["id"] == "eu-small"
    assert drafts.apply_action(draft, "remove-arm:0:1")
    assert len(draft["rules"][0]["split"]) == 1
    assert drafts.apply_action(draft, "remove-rule:9")  # a stale button does nothing
    assert not drafts.apply_action(draft, "refresh")


def test_changes_show_old_and_new_values() -> None:
    old = example_flag()
    new = json.loads(json.dumps(old))
    new["enabled"] = False
    new["rules"][1]["serve"]["split"][0]["weight"] = 500
    del new["schedule"]
    found = {c.where: c for c in changes(old, new)}
    assert (found["enabled"].old, found["enabled"].new) == (True, False)
    weight = found["rules \u203a 1 \u203a serve \u203a split \u203a 0 \u203a weight"]
    assert (weight.old, weight.new) == (100, 500)
    assert found["schedule"].removed
    assert found["schedule"].old == old["schedule"]
    assert changes(old, {**old, "version": 9, "updated_at": "x"}) == []


def _exposures(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)  # noqa: S311 - synthetic exposures
    rows = []
    for i in range(n):
        attrs = {
            "country": rng.choice(["DE", "FR", "NL", "US"]),
            "amount": rng.choice([20, 300, 900]),
        }
        rows.append(("user_id", f"u{i}", json.dumps(attrs), "v1"))
    return rows


def test_the_blast_radius_counts_the_units_whose_variant_changes() -> None:
    old = example_flag()
    new = json.loads(json.dumps(old))
    new["rules"][1]["serve"]["split"] = [
        {"variant": "v2", "weight": 1},
        {"variant": "v1", "weight": 0},
    ]
    rows = _exposures(2000, 3)
    radius = radius_of("production", "fraud-model", old, new, SEGMENTS, rows)
    # every EU unit under 500 moves to v2 except the 1% already there; nobody else changes
    eu_small = [
        r for r in rows if json.loads(r[2])["country"] != "US" and json.loads(r[2])["amount"] < 500
    ]
    assert radius.units == 2000
    assert 0.97 * len(eu_small) <= radius.changed <= len(eu_small)
    assert radius.moves[0][:2] == ("v1", "v2")
    by_country = {c: (changed, n) for c, changed, n in radius.by_country}
    assert by_country["US"][0] == 0
    assert by_country["NL"][0] > 0
    by_band = {b: changed for b, changed, _ in radius.by_amount}
    assert by_band["500\u20131000"] == 0
    assert by_band["200\u2013500"] > 0
    assert radius.unseen == []  # country, amount and the unit are all in the exposures


def test_the_blast_radius_names_attributes_it_cannot_replay() -> None:
    old = example_flag()
    new = json.loads(json.dumps(old))
    new["rules"][0]["conditions"] = [{"attribute": "plan", "operator": "in", "values": ["gold"]}]
    radius = radius_of("production", "fraud-model", old, new, SEGMENTS, _exposures(50, 4))
    assert radius.unseen == ["plan"]
    nothing = radius_of("production", "fraud-model", old, new, SEGMENTS, [])
    assert (nothing.units, nothing.changed) == (0, 0)
    duplicate = _exposures(10, 5) * 3
    assert radius_of("production", "fraud-model", old, old, SEGMENTS, duplicate).units == 10


def test_the_blast_radius_of_a_segment_change() -> None:
    flag = {**example_flag(), "rules": [{"id": "eu-all", "conditions": [{"segment": "eu"}],
                                         "serve": {"variant": "v2"}}]}  # fmt: skip
    rows = _exposures(1000, 6)
    wider = {"eu": {"conditions": [{"attribute": "country", "operator": "in",
                                    "values": ["DE", "FR", "NL", "US"]}]}}  # fmt: skip
    radius = radius_of("production", "fraud-model", flag, flag, wider, rows, SEGMENTS)
    us = [r for r in rows if json.loads(r[2])["country"] == "US"]
    assert radius.changed == len(us)  # every US unit joins the segment, and gets v2
    assert radius.moves == [("v1", "v2", len(us))]
    by_country = {c: changed for c, changed, _ in radius.by_country}
    assert by_country["DE"] == 0
    assert by_country["US"] == len(us)
    same = radius_of("production", "fraud-model", flag, flag, SEGMENTS, rows, SEGMENTS)
    assert same.changed == 0


def test_recent_exposures_are_the_newest_of_each_unit_within_the_window(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        rows = [
            (f"e{i}", "production", "2026-11-25T10:00:00Z", "f" if i % 3 else "other", 1,
             "v2" if i >= 900 else "v1", "r", "user_id", f"u{i % 400}", "{}",
             "2026-11-25T10:00:00Z")
            for i in range(1000)
        ]  # fmt: skip
        store.ingest("exposures", rows)
        found = store.recent_exposures("production", "f", window=2000, units=50)
        assert len(found) == 50
        assert len({unit for _, unit, _, _ in found}) == 50
        newest = [r for r in reversed(rows) if r[3] == "f"]
        assert found[0] == ("user_id", newest[0][8], "{}", newest[0][5])
        assert all(variant == "v2" for *_, variant in found[:10])  # the newest exposure wins
        few = store.recent_exposures("production", "f", window=30, units=50)
        assert len(few) == 20  # only the last 30 events are looked at, 20 of them of f
    finally:
        store.close()


def test_operands_keep_their_text_and_their_type() -> None:
    conditions = [
        {"attribute": "company", "operator": "in", "values": ["Acme, Inc.", " padded", "x"]},
        {"attribute": "tier", "operator": "in", "values": [1, 2]},
        {"attribute": "code", "operator": "eq", "value": "1e3"},
        {"attribute": "code", "operator": "eq", "value": "12"},
        {"attribute": "size", "operator": "eq", "value": 12},
    ]
    rules = [{"id": "r", "conditions": conditions, "serve": {"variant": "v2"}}]
    schedule = {"start": "2026-11-01T00:00:00.750Z", "end": None}
    body = {**example_flag(), "schedule": schedule, "rules": rules}
    again, problems = drafts.to_body(drafts.from_form(_as_form(drafts.from_body("f", body))))
    assert problems == {}
    assert again["rules"][0]["conditions"] == conditions
    assert again["schedule"]["start"] == "2026-11-01T00:00:00.75Z"
    assert _canonical(again) == _canonical(body)


def test_rows_beyond_the_documents_limits_are_dropped() -> None:
    pairs = [(f"rules-{i}-id", "r") for i in range(10_000)]
    pairs += [(f"rules-0-conditions-{j}-attribute", "a") for j in range(5_000)]
    draft = drafts.from_form(Form(pairs))
    assert len(draft["rules"]) == 64  # the rules document's own limits
    assert len(draft["rules"][0]["conditions"]) == 32

"""The server refuses what the SDK would ignore (issue 10, item 4), over real HTTP.

A flag or segment write is validated against the server's own operators: an unknown operator
(``equals`` for ``eq``), ``case_insensitive`` on an operator that ignores it and ``bucket_by``
next to ``variant`` are ``422`` problems with their JSON paths, and nothing is stored or
published. The SDK still reads an unknown operator from a newer server: the rule never matches
and the SDK warns once (``docs/spec/rules.md``, "Unknown operators").
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from rollwise import Client, Reason, RulesDocument, RulesParseError
from rollwise.operators import OPERATORS
from rollwise_server.testing import LiveServer
from tests.server.conftest import EU_SEGMENT, example_flag

Json = dict[str, Any]

ENV = "production"
DECEMBER_2026 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()  # the example's schedule has begun

UNKNOWN = {"attribute": "country", "operator": "equals", "value": "DE"}


def _base(server: LiveServer) -> str:
    return f"{server.url}/api/v1/envs/{ENV}"


def _published(server: LiveServer) -> Json:
    """The rules document that SDKs of the environment receive."""
    sdk = server.session(server.token("sdk", env=ENV))
    response = sdk.get(f"{server.url}/api/v1/sdk/rules", timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def _refused(response: requests.Response, path: str) -> Json:
    """Assert a 422 problem whose only path is ``path``; return that problem."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problems = response.json()["problems"]
    assert [p["path"] for p in problems] == [path]
    return dict(problems[0])


def _assert_lists_every_operator(problem: Json) -> None:
    assert "'equals'" in problem["message"]
    known = problem["message"].split("known operators:", 1)[1]
    assert [name.strip() for name in known.split(",")] == list(OPERATORS)


def _flag_with_unknown_operator() -> Json:
    flag = example_flag()
    flag["rules"][0]["conditions"] = [UNKNOWN]
    return flag


# --- flags ---


def test_post_of_a_flag_with_an_unknown_operator_is_refused_and_stores_nothing(
    server: LiveServer,
) -> None:
    admin = server.session()
    assert admin.post(f"{_base(server)}/segments", json=EU_SEGMENT).status_code == 201
    before = _published(server)

    response = admin.post(f"{_base(server)}/flags", json=_flag_with_unknown_operator())

    _assert_lists_every_operator(_refused(response, "rules[0].conditions[0].operator"))
    assert admin.get(f"{_base(server)}/flags/fraud-model").status_code == 404
    assert admin.get(f"{_base(server)}/flags/fraud-model/history").status_code == 404
    assert admin.get(f"{_base(server)}/flags").json()["flags"] == []
    assert _published(server) == before


def test_put_of_a_flag_with_an_unknown_operator_is_refused_and_changes_nothing(
    server: LiveServer,
) -> None:
    admin = server.session()
    admin.post(f"{_base(server)}/segments", json=EU_SEGMENT)
    created = admin.post(f"{_base(server)}/flags", json=example_flag())
    assert created.status_code == 201, created.text
    url = f"{_base(server)}/flags/fraud-model"
    stored, history = admin.get(url).json(), admin.get(f"{url}/history").json()
    before = _published(server)

    response = admin.put(url, json=_flag_with_unknown_operator(), headers={"If-Match": '"1"'})

    _assert_lists_every_operator(_refused(response, "rules[0].conditions[0].operator"))
    assert admin.get(url).json() == stored
    assert admin.get(f"{url}/history").json() == history
    assert _published(server) == before


def test_every_problem_of_a_flag_is_named_at_once(server: LiveServer) -> None:
    admin = server.session()
    admin.post(f"{_base(server)}/segments", json=EU_SEGMENT)
    flag = example_flag()
    flag["rules"][0]["conditions"].append({**UNKNOWN, "operator": "regex"})
    flag["rules"][1]["conditions"][1]["case_insensitive"] = True  # amount lt 500
    flag["rules"][0]["serve"]["bucket_by"] = "user_id"  # next to "variant": v2
    response = admin.post(f"{_base(server)}/flags", json=flag)
    assert response.status_code == 422
    problems = {p["path"]: p["message"] for p in response.json()["problems"]}
    assert set(problems) == {
        "rules[0].conditions[1].operator",
        "rules[1].conditions[1].case_insensitive",
        "rules[0].serve.bucket_by",
    }
    assert problems["rules[0].conditions[1].operator"].startswith("unknown operator 'regex'")
    assert problems["rules[1].conditions[1].case_insensitive"].startswith(
        "not used by operator 'lt'"
    )
    assert admin.get(f"{_base(server)}/flags/fraud-model").status_code == 404


# --- segments ---


def test_post_of_a_segment_with_an_unknown_operator_is_refused_and_stores_nothing(
    server: LiveServer,
) -> None:
    admin = server.session()
    before = _published(server)
    segment = {**EU_SEGMENT, "conditions": [UNKNOWN]}

    response = admin.post(f"{_base(server)}/segments", json=segment)

    _assert_lists_every_operator(_refused(response, "conditions[0].operator"))
    assert admin.get(f"{_base(server)}/segments/eu").status_code == 404
    assert admin.get(f"{_base(server)}/segments/eu/history").status_code == 404
    assert _published(server) == before


def test_put_of_a_segment_with_an_unknown_operator_is_refused_and_changes_nothing(
    server: LiveServer,
) -> None:
    admin = server.session()
    assert admin.post(f"{_base(server)}/segments", json=EU_SEGMENT).status_code == 201
    url = f"{_base(server)}/segments/eu"
    stored, history = admin.get(url).json(), admin.get(f"{url}/history").json()
    before = _published(server)
    segment = {**EU_SEGMENT, "conditions": [EU_SEGMENT["conditions"][0], UNKNOWN]}

    response = admin.put(url, json=segment, headers={"If-Match": '"1"'})

    _assert_lists_every_operator(_refused(response, "conditions[1].operator"))
    assert admin.get(url).json() == stored
    assert admin.get(f"{url}/history").json() == history
    assert _published(server) == before


def test_case_insensitive_on_a_segment_operator_that_ignores_it_is_refused(
    server: LiveServer,
) -> None:
    admin = server.session()
    segment = {
        "key": "adults",
        "conditions": [
            {"attribute": "age", "operator": "gte", "value": 18, "case_insensitive": True}
        ],
    }
    response = admin.post(f"{_base(server)}/segments", json=segment)
    _refused(response, "conditions[0].case_insensitive")
    segment["conditions"][0]["case_insensitive"] = False  # the default is not an ignored option
    assert admin.post(f"{_base(server)}/segments", json=segment).status_code == 201


# --- what is known is accepted ---

KNOWN: dict[str, Json] = {
    "in": {"values": ["DE", 7], "case_insensitive": True},
    "not_in": {"values": []},
    "eq": {"value": "DE", "case_insensitive": True},
    "neq": {"value": 5},
    "lt": {"value": 500},
    "lte": {"value": 0.5},
    "gt": {"value": -3},
    "gte": {"value": 10},
    "between": {"values": [0, 500]},
    "starts_with": {"value": "ab", "case_insensitive": True},
    "ends_with": {"value": 12},
    "contains": {"value": "b"},
    "matches": {"value": r"^\S+@example\.com$", "case_insensitive": True},
    "semver_eq": {"value": "1.2.3"},
    "semver_lt": {"value": "v2.0.0-rc.1"},
    "semver_lte": {"value": "1.0.0"},
    "semver_gt": {"value": "0.9.0"},
    "semver_gte": {"value": "1.0.0-0"},
    "before": {"value": "2026-11-01"},
    "after": {"value": "2026-11-01T12:30:00Z"},
    "exists": {"negate": True},
}


def test_the_table_covers_every_known_operator() -> None:
    assert set(KNOWN) == set(OPERATORS)


def test_every_known_operator_is_accepted_in_flags_and_segments(server: LiveServer) -> None:
    admin = server.session()
    conditions = [{"attribute": "x", "operator": op, **operand} for op, operand in KNOWN.items()]
    segment = {"key": "every-op", "conditions": conditions}
    created = admin.post(f"{_base(server)}/segments", json=segment)
    assert created.status_code == 201, created.text
    flag = example_flag()
    flag["rules"] = [
        {"id": f"r-{op}", "conditions": [c], "serve": {"variant": "v2"}}
        for op, c in zip(KNOWN, conditions, strict=True)
    ] + [{"id": "split", "serve": {"split": [{"variant": "v1", "weight": 1}], "bucket_by": "u"}}]
    created = admin.post(f"{_base(server)}/flags", json=flag)
    assert created.status_code == 201, created.text
    stored = admin.get(f"{_base(server)}/flags/fraud-model").json()
    assert [r["conditions"][0]["operator"] for r in stored["rules"][:-1]] == list(KNOWN)
    published = _published(server)
    assert list(published["flags"]) == ["fraud-model"]
    assert published["segments"]["every-op"]["conditions"] == conditions


# --- the SDK: an unknown operator from a newer server never matches, with one warning ---


def _from_a_newer_server(document: Json) -> Json:
    """``document`` as a newer server, one that knows more operators, might publish it."""
    newer = copy.deepcopy(document)
    rules = newer["flags"]["fraud-model"]["rules"]
    rules[0]["conditions"].append({"attribute": "user_id", "operator": "equals", "value": "u1"})
    rules.insert(
        0,
        {
            "id": "nearby",
            "conditions": [{"attribute": "geo", "operator": "within_km", "value": {"km": 5}}],
            "serve": {"variant": "v2"},
        },
    )
    newer["segments"]["mobile"] = {"conditions": [{"attribute": "os", "operator": "one_of_os"}]}
    rules.insert(
        1,
        {"id": "not-mobile", "conditions": [{"segment": "mobile", "negate": True}],
         "serve": {"variant": "v2"}},
    )  # fmt: skip
    return newer


def test_the_sdk_ignores_a_rule_with_an_unknown_operator_and_warns_once(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = server.session()
    admin.post(f"{_base(server)}/segments", json=EU_SEGMENT)
    assert admin.post(f"{_base(server)}/flags", json=example_flag()).status_code == 201
    newer = _from_a_newer_server(_published(server))

    # the server's check refuses it, the SDK's default parse keeps it
    with pytest.raises(RulesParseError) as caught:
        RulesDocument.from_json(newer, strict=True)
    assert {p.path for p in caught.value.problems} == {
        "segments.mobile.conditions[0].operator",
        "flags.fraud-model.rules[0].conditions[0].operator",
        "flags.fraud-model.rules[2].conditions[1].operator",
    }
    parsed = RulesDocument.from_json(newer)
    assert [r.id for r in parsed.flags["fraud-model"].rules] == [
        "nearby", "not-mobile", "qa-team", "eu-small",
    ]  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="rollwise"):
        client = Client.offline(newer, clock=lambda: DECEMBER_2026)
        results = [
            client.evaluate(
                "fraud-model",
                {"user_id": user, "country": "US", "amount": 9000, "geo": {"km": 5}, "os": None},
            )
            for user in ("u1", "u1", "u2")
        ]
    # "nearby" and "not-mobile" never match, even for a context that a newer SDK might match,
    # and "qa-team" no longer matches u1 (its new condition is unknown), so u1 gets the default
    assert [(r.variant, r.reason, r.rule) for r in results] == [
        ("v1", Reason.DEFAULT, None),
        ("v1", Reason.DEFAULT, None),
        ("v1", Reason.DEFAULT, None),
    ]
    # the other rules of the flag still work
    split = client.evaluate("fraud-model", {"user_id": "u60", "country": "DE", "amount": 120.0})
    assert (split.variant, split.reason, split.rule) == ("v2", Reason.SPLIT, "eu-small")

    warnings = [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    assert len(warnings) == 3  # one per rule, not one per evaluation
    for rule, operator in [
        ("nearby", "within_km"), ("not-mobile", "one_of_os"), ("qa-team", "equals"),
    ]:  # fmt: skip
        assert len([w for w in warnings if f"rule {rule!r}" in w and repr(operator) in w]) == 1

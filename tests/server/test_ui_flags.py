"""Flags in the console: the list, the editor (rules from forms, problems at their fields),
the change preview with its blast radius, saving with If-Match and the conflict page, kill and
enable with a reason, history with values, revert, promote with segments — each checked
against what the API then holds."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rollwise_server.testing import LiveServer, live_server
from tests.server.conftest import EU_SEGMENT, new_flag, seed
from tests.server.console_client import ConsoleClient, form_fields

LIST = "/ui/envs/{env}/flags"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("ui-flags")) as running:
        seed(running, ("staging",), flag=False)
        seed(running, ("production",))
        yield running


@pytest.fixture
def console(server: LiveServer) -> ConsoleClient:
    return ConsoleClient(server, server.admin_token)


def _flag(server: LiveServer, key: str, env: str = "staging") -> dict[str, Any]:
    response = server.session().get(f"{server.url}/api/v1/envs/{env}/flags/{key}")
    response.raise_for_status()
    return dict(response.json())


def _new_flag_form(key: str) -> dict[str, str]:
    return {
        "key": key, "description": "made in the console", "enabled": "on",
        "variants-0-key": "v1", "variants-0-payload": '{"model": "a"}',
        "variants-1-key": "v2", "variants-1-payload": "",
        "off_variant": "v1", "default_variant": "v1", "cohort_attributes": "country, amount",
        "schedule_start": "", "schedule_end": "",
        "rules-0-id": "nl-small", "rules-0-serve": "split", "rules-0-bucket_by": "user_id",
        "rules-0-conditions-0-type": "attribute", "rules-0-conditions-0-attribute": "country",
        "rules-0-conditions-0-operator": "in", "rules-0-conditions-0-values": "NL\nBE",
        "rules-0-conditions-1-type": "attribute", "rules-0-conditions-1-attribute": "amount",
        "rules-0-conditions-1-operator": "between", "rules-0-conditions-1-low": "0",
        "rules-0-conditions-1-high": "500",
        "rules-0-split-0-variant": "v2", "rules-0-split-0-weight": "1",
        "rules-0-split-1-variant": "v1", "rules-0-split-1-weight": "99",
    }  # fmt: skip


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return found.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")


def test_the_list_shows_state_shares_rollout_and_who_changed_it(
    server: LiveServer, console: ConsoleClient
) -> None:
    page = console.get(LIST.format(env="production")).text
    assert '<a href="/ui/envs/production/flags/fraud-model">fraud-model</a>' in page
    assert "state-on" in page
    assert "v2 1% / v1 99%" in page  # the example's eu-small split, as percentages
    assert "by admin" in page
    assert "protected" in page  # production is protected by default
    assert "1 flag matching" in console.get(LIST.format(env="production") + "?q=fraud").text
    assert "0 flags" in console.get(LIST.format(env="production") + "?q=nothing-like-it").text


def test_create_a_flag_with_a_country_rule_and_an_amount_range(
    server: LiveServer, console: ConsoleClient
) -> None:
    key = f"f-{uuid.uuid4().hex[:8]}"
    form = _new_flag_form(key)
    preview = console.post("/ui/envs/staging/flags/new", {**form, "action": "preview"})
    assert preview.status_code == 200, preview.text
    assert "What changes" in preview.text
    assert "No recent exposures" in preview.text
    saved = console.post(
        "/ui/envs/staging/flags/new",
        {"action": "save", "key": key, "body": _hidden(preview.text, "body"), "reason": "new"},
    )
    assert saved.status_code == 303, saved.text
    flag = _flag(server, key)
    (rule,) = flag["rules"]
    assert rule["conditions"] == [
        {"attribute": "country", "operator": "in", "values": ["NL", "BE"]},
        {"attribute": "amount", "operator": "between", "values": [0, 500]},
    ]
    assert rule["serve"]["split"] == [
        {"variant": "v2", "weight": 1},
        {"variant": "v1", "weight": 99},
    ]
    assert flag["variants"]["v1"] == {"payload": {"model": "a"}}
    page = console.get(f"/ui/envs/staging/flags/{key}").text
    assert "country in NL (Netherlands), BE (Belgium)" in page
    assert "amount from 0 to under 500" in page


def test_problems_are_shown_at_the_fields_they_name(console: ConsoleClient) -> None:
    form = _new_flag_form("bad-one")
    form.update({"default_variant": "v9", "rules-0-split-0-weight": "lots",
                 "variants-1-payload": "{not json", "rules-0-conditions-1-high": ""})  # fmt: skip
    page = console.post("/ui/envs/staging/flags/new", {**form, "action": "preview"})
    assert page.status_code == 422
    for field in ("rules-0-split-0-weight", "variants-1-payload", "rules-0-conditions-1-high"):
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page.text), field
    form = _new_flag_form("bad-two")
    form["default_variant"] = "v9"  # only the server's parser knows the variants
    page = console.post("/ui/envs/staging/flags/new", {**form, "action": "preview"})
    assert page.status_code == 422
    assert re.search(r'id="default_variant"[^>]*aria-invalid="true"', page.text)
    assert "unknown variant" in page.text
    assert 'value="v9"' in page.text  # what was typed stays


def test_rows_are_added_and_removed_without_javascript(console: ConsoleClient) -> None:
    form = _new_flag_form("rows")
    page = console.post("/ui/envs/staging/flags/new", {**form, "action": "add-condition:0"})
    assert 'id="rules-0-conditions-2-attribute"' in page.text
    page = console.post("/ui/envs/staging/flags/new", {**form, "action": "remove-rule:0"})
    assert 'id="rules-0-id"' not in page.text
    page = console.post("/ui/envs/staging/flags/new", {**form, "action": "add-arm:0"})
    assert 'id="rules-0-split-2-weight"' in page.text
    assert "1%" in page.text
    assert "99%" in page.text  # shares shown as percentages


def test_an_unchanged_flag_previews_as_no_change(
    server: LiveServer, console: ConsoleClient
) -> None:
    page = console.get("/ui/envs/production/flags/fraud-model/edit").text
    values = form_fields(page, having="default_variant")
    assert ("rules-1-conditions-1-value", "500") in values
    preview = console.post(
        "/ui/envs/production/flags/fraud-model/edit", [*values, ("action", "preview")]
    )
    assert preview.status_code == 200, preview.text
    assert "What changes (version" in preview.text
    assert ": no change." in preview.text


def test_a_conflicting_save_shows_their_change_and_reapplies_mine(
    server: LiveServer, console: ConsoleClient
) -> None:
    key, body = new_flag(server, "staging", "c")
    admin = server.session()
    mine = {**body, "description": "mine"}
    # someone else saves version 2 first
    admin.put(
        f"{server.url}/api/v1/envs/staging/flags/{key}",
        json={**body, "salt": "theirs"},
        headers={"If-Match": '"1"'},
    ).raise_for_status()
    page = console.post(
        f"/ui/envs/staging/flags/{key}/edit",
        {"action": "save", "version": "1", "body": json.dumps(mine), "reason": ""},
    )
    assert page.status_code == 409
    assert "changed while you were editing" in page.text
    assert "salt" in page.text  # their change, with its values
    assert "theirs" in page.text
    assert _flag(server, key)["description"] == body["description"]
    again = console.post(
        f"/ui/envs/staging/flags/{key}/edit",
        {"action": "reapply", "version": "2", "base": "1", "body": _hidden(page.text, "body")},
    )
    assert again.status_code == 200, again.text
    merged = json.loads(_hidden(again.text, "body"))
    assert merged["description"] == "mine"
    assert merged["salt"] == "theirs"  # their change kept, mine applied on top
    saved = console.post(
        f"/ui/envs/staging/flags/{key}/edit",
        {"action": "save", "version": "2", "body": _hidden(again.text, "body")},
    )
    assert saved.status_code == 303
    flag = _flag(server, key)
    assert (flag["version"], flag["description"], flag["salt"]) == (3, "mine", "theirs")


def test_kill_needs_a_reason_in_production_and_ends_the_rollout_route_too(
    server: LiveServer, console: ConsoleClient
) -> None:
    path = "/ui/envs/production/flags/fraud-model"
    confirm = console.get(f"{path}/kill")
    assert "Everyone will get the off variant" in confirm.text
    assert 'required aria-required="true"' in confirm.text
    refused = console.post(f"{path}/kill", {"reason": "  "})
    assert refused.status_code == 422
    assert "required in protected environment" in refused.text
    assert _flag(server, "fraud-model", "production")["enabled"] is True
    done = console.post(f"{path}/kill", {"reason": "bad scores"})
    assert done.status_code == 303
    assert _flag(server, "fraud-model", "production")["enabled"] is False
    assert "state-killed" in console.get(f"{path}").text
    enabled = console.post(f"{path}/enable", {"reason": "fixed"})
    assert enabled.status_code == 303
    assert _flag(server, "fraud-model", "production")["enabled"] is True
    history = console.get(path).text
    assert "bad scores" in history
    assert "fixed" in history
    assert "<code>false</code>" in history  # enabled: true -> false, with its values
    audit = console.get("/ui/audit?action=flag.kill").text
    assert "bad scores" in audit


def test_revert_previews_and_makes_a_new_version(
    server: LiveServer, console: ConsoleClient
) -> None:
    key, body = new_flag(server, "staging", "r")
    admin = server.session()
    admin.put(
        f"{server.url}/api/v1/envs/staging/flags/{key}",
        json={**body, "description": "second"},
        headers={"If-Match": '"1"'},
    ).raise_for_status()
    preview = console.get(f"/ui/envs/staging/flags/{key}/revert?to=1")
    assert "Revert" in preview.text
    assert "second" in preview.text
    done = console.post(f"/ui/envs/staging/flags/{key}/revert", {"to": "1", "version": "2"})
    assert done.status_code == 303
    flag = _flag(server, key)
    assert (flag["version"], flag["description"]) == (3, body["description"])


def test_promote_shows_a_dry_run_then_brings_the_segments(
    server: LiveServer, console: ConsoleClient
) -> None:
    admin = server.session()
    admin.put(
        f"{server.url}/api/v1/envs/production/segments/eu",
        json={**EU_SEGMENT, "description": "changed in production", "reason": "r"},
        headers={"If-Match": '"1"'},
    ).raise_for_status()
    dry = console.get("/ui/envs/production/flags/fraud-model/promote?to=staging")
    assert "Dry run" in dry.text
    radius = console.get("/ui/envs/production/segments/eu/revert?to=1").text
    assert "fraud-model" in radius
    assert "Blast radius" in radius
    assert "Segment eu" in dry.text
    assert "changed in production" in dry.text
    assert "new in staging" in dry.text  # the flag is not in staging yet
    assert admin.get(f"{server.url}/api/v1/envs/staging/flags/fraud-model").status_code == 404
    done = console.post("/ui/envs/production/flags/fraud-model/promote", {"to": "staging"})
    assert done.status_code == 200, done.text
    assert "Promoted" in done.text
    segment = admin.get(f"{server.url}/api/v1/envs/staging/segments/eu").json()
    assert segment["description"] == "changed in production"
    assert _flag(server, "fraud-model", "staging")["rules"]


def test_a_segment_shows_its_history_and_reverts(
    server: LiveServer, console: ConsoleClient
) -> None:
    admin = server.session()
    key = f"s-{uuid.uuid4().hex[:8]}"
    first = {
        "key": key,
        "conditions": [{"attribute": "country", "operator": "in", "values": ["DE"]}],
    }
    admin.post(f"{server.url}/api/v1/envs/staging/segments", json=first).raise_for_status()
    admin.put(
        f"{server.url}/api/v1/envs/staging/segments/{key}",
        json={"conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "AT"]}]},
        headers={"If-Match": '"1"'},
    ).raise_for_status()
    page = console.get(f"/ui/envs/staging/segments/{key}").text
    assert "country in DE (Germany), AT (Austria)" in page
    assert f'href="/ui/envs/staging/segments/{key}/revert?to=1"' in page
    preview = console.get(f"/ui/envs/staging/segments/{key}/revert?to=1").text
    assert "No flag uses it." in preview
    assert "<code>AT</code>" in preview  # the old value, in the change table
    done = console.post(f"/ui/envs/staging/segments/{key}/revert", {"to": "1", "version": "2"})
    assert done.status_code == 303, done.text
    segment = admin.get(f"{server.url}/api/v1/envs/staging/segments/{key}").json()
    assert segment["version"] == 3
    assert segment["conditions"][0]["values"] == ["DE"]
    stale = console.post(f"/ui/envs/staging/segments/{key}/revert", {"to": "2", "version": "2"})
    assert stale.status_code == 409  # version 3 is current now: If-Match refused
    assert admin.get(f"{server.url}/api/v1/envs/staging/segments/{key}").json()["version"] == 3
    viewer = ConsoleClient(server, server.token("viewer"))
    assert "Revert to" not in viewer.get(f"/ui/envs/staging/segments/{key}").text
    forged = viewer.post(f"/ui/envs/staging/segments/{key}/revert", {"to": "1", "version": "3"})
    assert forged.status_code == 403  # the API's answer, shown on the page
    assert "may not change 'staging'" in forged.text.replace("&#39;", "'")


def test_a_shadow_is_set_kept_by_an_edit_and_refused_at_its_field(
    server: LiveServer, console: ConsoleClient
) -> None:
    key = f"s-{uuid.uuid4().hex[:8]}"
    form = {**_new_flag_form(key), "shadow_variant": "v2", "shadow_share": "0.25",
            "shadow_bucket_by": "user_id"}  # fmt: skip
    preview = console.post("/ui/envs/staging/flags/new", {**form, "action": "preview"})
    assert preview.status_code == 200, preview.text
    saved = console.post(
        "/ui/envs/staging/flags/new",
        {"action": "save", "key": key, "body": _hidden(preview.text, "body"), "reason": "new"},
    )
    assert saved.status_code == 303, saved.text
    assert _flag(server, key)["shadow"] == {"variant": "v2", "share": 0.25, "bucket_by": "user_id"}
    assert (
        "beside the served variant for 0.25 of units"
        in console.get(f"/ui/envs/staging/flags/{key}").text
    )
    # an edit of something else keeps the shadow: the editor round-trips it
    values = dict(form_fields(console.get(f"/ui/envs/staging/flags/{key}/edit").text,
                              having="default_variant"))  # fmt: skip
    assert (values["shadow_variant"], values["shadow_share"]) == ("v2", "0.25")
    values["description"] = "edited"
    preview = console.post(
        f"/ui/envs/staging/flags/{key}/edit", [*values.items(), ("action", "preview")]
    )
    assert preview.status_code == 200, preview.text
    assert json.loads(_hidden(preview.text, "body"))["shadow"]["variant"] == "v2"
    # a share out of range is shown at its field, by the server's own validator
    bad = {**form, "key": f"{key}-x", "shadow_share": "1.5", "action": "preview"}
    refused = console.post("/ui/envs/staging/flags/new", bad)
    assert refused.status_code in (200, 422), refused.text
    assert 'name="shadow_share"' in refused.text
    assert re.search(r'id="shadow_share"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*'
                     r'id="shadow_share"', refused.text), refused.text[:2000]  # fmt: skip


def test_a_typed_flag_is_made_in_the_console_and_its_type_stays(
    server: LiveServer, console: ConsoleClient
) -> None:
    key = f"t-{uuid.uuid4().hex[:8]}"
    form = {
        "key": key, "description": "kill switch", "enabled": "on", "type": "boolean",
        "variants-0-key": "on", "variants-0-value": "true", "variants-0-payload": "",
        "variants-1-key": "off", "variants-1-value": "false", "variants-1-payload": "",
        "off_variant": "off", "default_variant": "on", "cohort_attributes": "",
        "schedule_start": "", "schedule_end": "",
    }  # fmt: skip
    # a value that is not JSON, and one of the wrong type: each shown at its own field
    bad = console.post("/ui/envs/staging/flags/new",
                       {**form, "variants-0-value": "yes", "action": "preview"})  # fmt: skip
    assert bad.status_code == 422
    assert re.search(r'id="variants-0-value"[^>]*aria-invalid="true"', bad.text)
    assert "must be JSON for a boolean flag" in bad.text
    wrong = console.post("/ui/envs/staging/flags/new",
                         {**form, "variants-1-value": "0", "action": "preview"})  # fmt: skip
    assert wrong.status_code == 422
    assert re.search(r'id="variants-1-value"[^>]*aria-invalid="true"', wrong.text)
    assert "must be true or false (the flag&#39;s type is boolean), not 0" in wrong.text

    preview = console.post("/ui/envs/staging/flags/new", {**form, "action": "preview"})
    assert preview.status_code == 200, preview.text
    saved = console.post(
        "/ui/envs/staging/flags/new",
        {"action": "save", "key": key, "body": _hidden(preview.text, "body"), "reason": "new"},
    )
    assert saved.status_code == 303, saved.text
    flag = _flag(server, key)
    assert (flag["type"], flag["variants"]) == (
        "boolean", {"off": {"value": False}, "on": {"value": True}},
    )  # fmt: skip
    page = console.get(f"/ui/envs/staging/flags/{key}").text
    assert "<dt>Type</dt><dd>boolean</dd>" in page
    assert '<code data-value="on">true</code>' in page

    # the editor of a saved flag shows the type fixed and its values as JSON; an edit keeps it
    editor = console.get(f"/ui/envs/staging/flags/{key}/edit").text
    assert 'id="type-fixed"' in editor
    assert '<select id="type"' not in editor
    fields = dict(form_fields(editor, having="default_variant"))
    assert (fields["type"], fields["variants-0-value"], fields["variants-1-value"]) == (
        "boolean", "false", "true",
    )  # fmt: skip
    # a forged form that changes the type is refused by the server, at the type
    forged = console.post(f"/ui/envs/staging/flags/{key}/edit",
                          {**fields, "type": "integer", "variants-0-value": "0",
                           "variants-1-value": "1", "action": "preview"})  # fmt: skip
    assert forged.status_code in (409, 422), forged.text
    assert "cannot change from boolean to integer" in forged.text
    assert _flag(server, key)["version"] == 1

"""The console in a real browser (Debian's headless Chromium): the journeys of issue 14, the
security checks a browser makes possible, keyboard use, axe-core on every page at desktop and
phone widths, and the screenshots of docs/console.md."""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

import rollwise
from rollwise_server.testing import LiveServer, live_server
from tests.browser.axe import assert_accessible
from tests.browser.shots import screenshot
from tests.server.conftest import example_flag, seed

PLAN = {
    "control": "v1", "candidate": "v2", "rule": "eu-small", "outcome_delay": 0,
    "stages": [{"share": 0.2, "min_units": 300}, {"share": 0.5, "min_units": 600},
               {"share": 1.0, "min_units": 600}],
    "guardrails": [{"metric": "fraud_caught", "cohorts": ["country"]}],
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module (the tests use keys of their own): a fast controller, the
    example flag and segment, and the metric catalogue, in production and staging."""
    with live_server(tmp_path_factory.mktemp("console"), controller_interval=0.3) as running:
        seed(running, metrics=True)
        yield running


def sign_in(page: Page, server: LiveServer, token: str | None = None, path: str = "/ui") -> None:
    page.goto(f"{server.url}{path}")
    page.get_by_label("API token").fill(token or server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def ready(page: Page) -> None:
    """Wait until the console's script has set up its enhancements (confirmations, live
    updates, shares as you type): a click before that would bypass them."""
    page.locator("html[data-ready]").wait_for(state="attached")


def _flag(server: LiveServer, env: str, key: str) -> dict[str, object]:
    response = server.session().get(f"{server.url}/api/v1/envs/{env}/flags/{key}")
    response.raise_for_status()
    return dict(response.json())


def test_create_a_flag_with_a_country_rule_and_an_amount_range_served_within_a_second(
    server: LiveServer, page: Page, tmp_path: Path
) -> None:
    sdk = rollwise.Client(server.url, server.token("sdk", env="staging"), cache_dir=tmp_path)
    try:
        assert sdk.wait_until_ready(10)
        nl_small = {"user_id": "u-1", "country": "NL", "amount": 120}
        assert sdk.variant("checkout-model", nl_small) is None  # no such flag yet
        sign_in(page, server, path="/ui/envs/staging/flags")
        screenshot(page, "flags")
        page.get_by_role("link", name="New flag").click()
        page.get_by_label("Key", exact=True).fill("checkout-model")
        page.get_by_label("Variant 1 key").fill("current")
        page.get_by_label("Variant 2 key").fill("candidate")
        page.get_by_label("Variant 2 payload (JSON)").fill('{"model": "checkout-2026-12"}')
        page.get_by_label("Off variant (killed or outside the schedule)").fill("current")
        page.get_by_label("Default variant (no rule serves)").fill("current")
        page.get_by_role("button", name="Add a rule").click()
        page.get_by_label("Rule 1 id").fill("nl-small")
        first = page.locator("fieldset.condition").nth(0)
        first.get_by_label("Attribute", exact=True).fill("country")
        first.get_by_label("Values (one per line)").fill("NL\nBE")
        page.get_by_role("button", name="Add a condition to rule 1").click()
        condition = page.locator("fieldset.condition").nth(1)
        condition.get_by_label("Attribute", exact=True).fill("amount")
        ready(page)
        condition.get_by_label("Operator").select_option("between")  # the form redraws
        condition = page.locator("fieldset.condition").nth(1)
        condition.get_by_label("From (included)").fill("0")
        condition.get_by_label("To (excluded)").fill("500")
        page.get_by_label("Variant", exact=True).fill("candidate")
        page.get_by_label("Cohort attributes (comma-separated)").fill("country, amount")
        screenshot(page, "flag-editor")
        page.get_by_role("button", name="Preview the change").click()
        expect(
            page.get_by_role("heading", name="Create checkout-model in staging?")
        ).to_be_visible()
        expect(page.get_by_text("No recent exposures")).to_be_visible()
        assert_accessible(page)
        screenshot(page, "change-preview")
        page.get_by_role("button", name="Create flag").click()
        saved = time.monotonic()
        expect(page.get_by_text("Done: saved")).to_be_visible()
        deadline = saved + 1.0
        while sdk.variant("checkout-model", nl_small) != "candidate":
            assert time.monotonic() < deadline, "the SDK did not serve the new flag within 1 s"
            time.sleep(0.01)
        assert sdk.variant("checkout-model", {**nl_small, "amount": 700}) == "current"
        assert sdk.variant("checkout-model", {**nl_small, "country": "DE"}) == "current"
        expect(page.get_by_text("country in NL (Netherlands), BE (Belgium)")).to_be_visible()
        screenshot(page, "flag")
    finally:
        sdk.close()


def test_a_typed_flag_is_made_in_the_console_and_read_by_its_accessor(
    server: LiveServer, page: Page, tmp_path: Path
) -> None:
    sdk = rollwise.Client(server.url, server.token("sdk", env="staging"), cache_dir=tmp_path)
    try:
        assert sdk.wait_until_ready(10)
        assert sdk.float_value("review-threshold", {}, -1.0) == -1.0  # no such flag yet
        sign_in(page, server, path="/ui/envs/staging/flags/new")
        page.get_by_label("Key", exact=True).fill("review-threshold")
        page.get_by_label("Type of the variants' values").select_option("float")
        page.get_by_label("Variant 1 key").fill("standard")
        page.get_by_label("Variant 1 value").fill("0.5")
        page.get_by_label("Variant 2 key").fill("strict")
        page.get_by_label("Variant 2 value").fill("0.35")
        page.get_by_label("Off variant (killed or outside the schedule)").fill("standard")
        page.get_by_label("Default variant (no rule serves)").fill("strict")
        page.get_by_role("button", name="Preview the change").click()
        page.get_by_role("button", name="Create flag").click()
        expect(page.get_by_text("Done: saved")).to_be_visible()
        expect(page.locator('code[data-value="strict"]')).to_have_text("0.35")
        deadline = time.monotonic() + 10
        while sdk.float_value("review-threshold", {}, -1.0) != 0.35:
            assert time.monotonic() < deadline, "the SDK did not receive the typed flag"
            time.sleep(0.01)
        assert _flag(server, "staging", "review-threshold")["type"] == "float"
    finally:
        sdk.close()


def _traffic(server: LiveServer, tmp_path: Path, flag: str, harm: str) -> rollwise.Client:
    client = rollwise.Client(
        server.url, server.token("sdk", env="production"), cache_dir=tmp_path / "sdk",
        flush_interval=0.05,
    )  # fmt: skip
    assert client.wait_until_ready(10)
    return client


def test_the_rollout_page_shows_the_controllers_rollback_live(
    server: LiveServer, page: Page, tmp_path: Path
) -> None:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production"
    flag = {**example_flag(), "key": "fraud-live", "reason": "setup"}
    admin.post(f"{base}/flags", json=flag).raise_for_status()
    admin.put(f"{base}/flags/fraud-live/rollout", json={**PLAN, "reason": "p"}).raise_for_status()
    sign_in(page, server, path="/ui/envs/production/flags/fraud-live/rollout")
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    ready(page)
    page.get_by_role("button", name="Start").click()
    status = page.locator("[data-status]")
    expect(status).to_have_text("stage 1/3 at 20%, running")
    assert asked == ["Start the rollout of fraud-live?"]
    client = _traffic(server, tmp_path, "fraud-live", "NL")
    rng = random.Random(5)  # noqa: S311 - simulated traffic
    try:
        for batch in range(40):
            for i in range(500):
                unit = f"u-{batch}-{i}"
                country = rng.choice(["DE", "FR", "NL"])
                variant = client.variant("fraud-live", {"user_id": unit, "country": country,
                                                        "amount": 50})  # fmt: skip
                rate = 0.5 if variant != "v2" else (0.1 if country == "NL" else 0.55)
                client.track("fraud_caught", unit, rng.random() < rate)
            assert client.flush(30)
            state = admin.get(f"{base}/flags/fraud-live/rollout").json()["state"]["status"]
            if state == "rolled_back":
                break
    finally:
        client.close()
    assert state == "rolled_back"
    # the page was not reloaded: the live stream brought the rollback
    expect(status).to_have_text("rolled back", timeout=5000)
    live = page.locator("#rollout-live")
    expect(live).to_have_attribute("data-updated", re.compile(r"\d+"))
    expect(live.get_by_text("shows harm").first).to_be_visible()
    expect(page.locator("svg.rw-forest")).to_be_visible()
    expect(page.locator("tr.verdict-harm").first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "rollout")


def test_a_rollouts_review_is_read_and_its_lessons_written(server: LiveServer, page: Page) -> None:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/production/flags/fraud-review"
    flag = {**example_flag(), "key": "fraud-review", "reason": "setup"}
    admin.post(f"{server.url}/api/v1/envs/production/flags", json=flag).raise_for_status()
    admin.put(f"{base}/rollout", json={**PLAN, "reason": "ramp v2"}).raise_for_status()
    admin.post(f"{base}/rollout/start", json={"reason": "go"}).raise_for_status()
    admin.post(f"{base}/rollout/rollback", json={"reason": "NL complaints"}).raise_for_status()
    sign_in(page, server, path="/ui/envs/production/flags/fraud-review/rollout")
    page.get_by_role("link", name=re.compile(r"^Run \d+$")).first.click()
    expect(page.locator("main h1")).to_contain_text("Post-deployment review: fraud-review")
    expect(page.locator("[data-outcome]")).to_have_text("rolled back")
    expect(page.get_by_role("cell", name="NL complaints").first).to_be_visible()
    page.get_by_label("Lessons learned (Markdown; every edit is kept in the audit log)").fill(
        "Watch NL from the first stage."
    )
    page.get_by_role("button", name="Save the lessons").click()
    expect(page.get_by_role("status")).to_have_text("Lessons saved.")
    expect(page.locator("[data-lessons]")).to_have_text("Watch NL from the first stage.")
    assert_accessible(page)
    screenshot(page, "review")


def test_a_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(
    server: LiveServer, page: Page
) -> None:
    sign_in(page, server, server.token("viewer"), "/ui/envs/production/flags/fraud-model")
    expect(page.get_by_role("heading", name=re.compile("fraud-model"))).to_be_visible()
    for name in ("Edit", "Kill", "Enable"):
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Revert to"))).to_have_count(0)
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    forged = page.request.post(
        f"{server.url}/ui/envs/production/flags/fraud-model/kill",
        form={"csrf": str(csrf), "reason": "forged"}, max_redirects=0,
    )  # fmt: skip
    assert forged.status == 403
    assert _flag(server, "production", "fraud-model")["enabled"] is True


def test_an_editor_cannot_approve(server: LiveServer, page: Page) -> None:
    admin = server.session()
    base = f"{server.url}/api/v1/envs/staging/flags/fraud-model/rollout"
    plan = {**PLAN, "stages": [{"share": 0.2, "min_units": 0},
                               {"share": 1.0, "approval": True}]}  # fmt: skip
    admin.put(base, json=plan).raise_for_status()
    admin.post(f"{base}/start").raise_for_status()
    advanced = admin.post(f"{base}/advance")  # advancing past the second stage needs approval
    if advanced.status_code != 409:  # 409: the fast controller advanced first (min_units 0)
        advanced.raise_for_status()
    assert admin.get(base).json()["state"]["stage"] == 2
    sign_in(page, server, server.token("editor"), "/ui/envs/staging/flags/fraud-model/rollout")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    forged = page.request.post(
        f"{server.url}/ui/envs/staging/flags/fraud-model/rollout/approve",
        form={"csrf": str(csrf)}, max_redirects=0,
    )  # fmt: skip
    assert forged.status == 403
    assert admin.get(base).json()["state"]["stage"] == 2


@pytest.mark.allow_console_errors(r"status of 403 \(Forbidden\)")
def test_a_wrong_csrf_token_is_refused_and_an_expired_session_signs_in_again(
    server: LiveServer, page: Page
) -> None:
    sign_in(page, server, path="/ui/envs/staging/flags/fraud-model/kill")
    page.locator('input[name="csrf"]').last.evaluate("input => { input.value = 'forged'; }")
    page.get_by_label("Reason").fill("testing CSRF")
    page.get_by_role("button", name="Kill fraud-model").click()
    expect(page.get_by_text("CSRF token is missing or wrong")).to_be_visible()
    assert _flag(server, "staging", "fraud-model")["enabled"] is True
    with sqlite3.connect(server.db) as db:  # an hour without a request
        db.execute("UPDATE console_sessions SET last_seen = last_seen - 3600")
    page.goto(f"{server.url}/ui/envs/staging/flags")
    expect(page.get_by_text("Your session ended. Sign in again.")).to_be_visible()
    page.get_by_label("API token").fill(server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/ui/envs/staging/flags")


def _tab_to(page: Page, element_id: str, limit: int = 200) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


def _tab_to_button(page: Page, label: str, limit: int = 300) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if (
            page.evaluate("document.activeElement && document.activeElement.textContent.trim()")
            == label
        ):
            return
    raise AssertionError(f"button {label!r} cannot be reached with the Tab key")


def test_a_flag_is_edited_with_the_keyboard_alone(server: LiveServer, page: Page) -> None:
    body = {**example_flag(), "key": "keyboard", "reason": "setup"}
    server.session().post(f"{server.url}/api/v1/envs/staging/flags", json=body).raise_for_status()
    sign_in(page, server, path="/ui/envs/staging/flags/keyboard/edit")
    ready(page)
    _tab_to(page, "description")
    page.keyboard.press("Control+A")
    page.keyboard.type("Edited from the keyboard")
    _tab_to(page, "rules-1-split-0-weight")
    page.keyboard.press("Control+A")
    page.keyboard.type("300")
    expect(page.locator("output[data-share]").first).to_have_text("2.941%")  # 300 / 10,200
    _tab_to_button(page, "Preview the change")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Save keyboard in staging?")).to_be_visible()
    _tab_to(page, "reason")
    page.keyboard.type("keyboard test")
    _tab_to_button(
        page,
        re.sub(
            r"\s+", " ", page.get_by_role("button", name=re.compile("Save version")).inner_text()
        ),
    )
    page.keyboard.press("Enter")
    expect(page.get_by_text("Done: saved")).to_be_visible()
    flag = _flag(server, "staging", "keyboard")
    assert flag["description"] == "Edited from the keyboard"
    assert flag["rules"][1]["serve"]["split"][0]["weight"] == 300  # type: ignore[index]


PAGES = [
    ("flags", "/ui/envs/production/flags"),
    ("flag-page", "/ui/envs/production/flags/fraud-model"),
    ("editor", "/ui/envs/production/flags/fraud-model/edit"),
    ("kill", "/ui/envs/production/flags/fraud-model/kill"),
    ("revert", "/ui/envs/production/flags/fraud-model/revert?to=1"),
    ("promote", "/ui/envs/production/flags/fraud-model/promote?to=staging"),
    ("rollout-none", "/ui/envs/production/flags/fraud-model/rollout"),
    ("plan", "/ui/envs/production/flags/fraud-model/rollout/plan"),
    ("segments", "/ui/envs/production/segments"),
    ("segment", "/ui/envs/production/segments/eu"),
    ("segment-revert", "/ui/envs/production/segments/eu/revert?to=1"),
    ("metrics", "/ui/envs/production/metrics"),
    ("audit", "/ui/audit"),
    ("tokens", "/ui/tokens"),
    ("new-flag", "/ui/envs/production/flags/new"),
]


PHONE_SHOTS = ("flags", "flag-page", "editor")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_axe_finds_no_serious_violations_on_any_page(
    server: LiveServer, context: BrowserContext, phone: BrowserContext, width: str
) -> None:
    page = (context if width == "desktop" else phone).new_page()
    page.goto(f"{server.url}/ui/sign-in")
    assert_accessible(page)
    if width == "desktop":
        screenshot(page, "sign-in")
    sign_in(page, server)
    for name, path in PAGES:
        page.goto(f"{server.url}{path}")
        expect(page.locator("main h1")).to_be_visible()
        assert_accessible(page)
        if width == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways at 390 px ({overflow} px)"
        if width == "desktop":
            screenshot(page, name)
        elif name in PHONE_SHOTS:  # a few, to show the narrow layout
            screenshot(page, f"phone-{name}")

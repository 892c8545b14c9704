"""Post-deployment reviews: each run of a rollout, read back from the audit log, as Markdown,
HTML and JSON, through the API and the CLI, with lessons learned that are edited and audited."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from rollwise_server.rollouts.controller import Controller
from rollwise_server.storage import open_store
from rollwise_server.testing import LiveServer
from rollwise_server.webhooks import Webhooks
from tests.rollouts.test_controller import FAST_PLAN, drive
from tests.server.console_client import ConsoleClient
from tests.server.test_cli import run

FLAG_URL = "/api/v1/envs/production/flags/fraud-model"


def _one_more_round(server: LiveServer) -> None:
    """A controller round after the rollback: it verifies that the candidate is gone."""
    store = open_store(server.db)
    try:
        asyncio.run(Controller(store, Webhooks(store), lambda e, r: None, 1.0).round())
    finally:
        store.close()


@pytest.fixture
def reviewed(server: LiveServer, tmp_path: Path) -> LiveServer:
    """A rollout rolled back by the controller on harm in NL (run 1, with evidence), then a
    second run with the same plan, started and aborted by people (run 2)."""
    rollout, *_ = drive(server, tmp_path, harm_country="NL")
    assert rollout["state"]["status"] == "rolled_back"
    _one_more_round(server)
    admin = server.session()
    url = f"{server.url}{FLAG_URL}/rollout"
    admin.put(url, json={**FAST_PLAN, "reason": "again, with the NL fix"}).raise_for_status()
    admin.post(f"{url}/start", json={"reason": "second try"}).raise_for_status()
    admin.post(f"{url}/abort", json={"reason": "the NL fix is not deployed yet"}).raise_for_status()
    return server


def test_each_run_is_listed_newest_first(reviewed: LiveServer) -> None:
    runs = reviewed.session().get(f"{reviewed.url}{FLAG_URL}/rollouts").json()["runs"]
    assert [r["status"] for r in runs] == ["aborted", "rolled_back"]
    assert runs[0]["end_reason"] == "the NL fix is not deployed yet"
    assert runs[1]["end_reason"].startswith("guardrail fraud_caught (")
    assert runs[0]["id"] > runs[1]["id"]
    assert {(r["control"], r["candidate"]) for r in runs} == {("v1", "v2")}


def test_the_markdown_review_tells_the_whole_run(reviewed: LiveServer) -> None:
    admin = reviewed.session()
    first = admin.get(f"{reviewed.url}{FLAG_URL}/rollouts").json()["runs"][1]["id"]
    response = admin.get(f"{reviewed.url}{FLAG_URL}/rollouts/{first}/review")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    text = response.text
    assert text.startswith(f"# Post-deployment review: fraud-model in production, run {first}")
    for section in ("## Plan", "## Timeline", "## Decisions and their evidence", "## Approvals",
                    "## After the rollback", "## Monitors", "## Lessons learned"):  # fmt: skip
        assert f"\n{section}\n" in text, section
    assert "| Outcome | rolled back |" in text
    assert "| rollout.start | admin |" in text
    assert "| rollout.rollback | controller |" in text
    assert "| fraud_caught | country=NL |" in text  # the evidence behind the rollback
    assert "verdict" in text.lower()
    assert "| harm |" in text
    assert "0 exposures of the candidate after the rollback" in text
    assert "None written yet" in text
    assert "second try" not in text  # the second run is not in the first's review


def test_html_and_json_forms(reviewed: LiveServer) -> None:
    admin = reviewed.session()
    first = admin.get(f"{reviewed.url}{FLAG_URL}/rollouts").json()["runs"][1]["id"]
    url = f"{reviewed.url}{FLAG_URL}/rollouts/{first}/review"
    page = admin.get(url, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text.count("<svg") >= 2  # the last decision's forest and interval timelines
    assert "<td data-outcome>rolled back</td>" in page.text
    assert admin.get(url, params={"format": "html"}).text == page.text
    body = admin.get(url, params={"format": "json"}).json()
    assert body["run"]["status"] == "rolled_back"
    assert body["plan_recorded"] is True
    assert body["post_rollback"]["candidate_exposures_after_rollback"] == 0
    assert [e["action"] for e in body["timeline"]][:2] == ["rollout.plan", "rollout.start"]
    assert [e["action"] for e in body["timeline"]][-2:] == ["rollout.rollback", "rollout.verify"]
    assert body["timeline"][-1]["reason"] == "0 exposure(s) of the candidate after the rollback"
    bad = admin.get(url, params={"format": "pdf"})
    assert bad.status_code == 400
    assert "format" in bad.json()["detail"]
    missing = admin.get(f"{reviewed.url}{FLAG_URL}/rollouts/{first + 100_000}/review")
    assert missing.status_code == 404


def test_lessons_are_edited_audited_and_guarded(reviewed: LiveServer) -> None:
    editor = reviewed.session(reviewed.token("editor", name="erin"))
    viewer = reviewed.session(reviewed.token("viewer", name="vic"))
    base = f"{reviewed.url}{FLAG_URL}/rollouts"
    first = editor.get(base).json()["runs"][1]["id"]
    url = f"{base}/{first}/lessons"
    assert viewer.put(url, json={"text": "x"}).status_code == 403
    empty = editor.put(url, json={"text": ""})
    assert empty.status_code == 422
    assert empty.json()["problems"][0]["path"] == "text"
    assert editor.put(f"{base}/{first + 100_000}/lessons", json={"text": "x"}).status_code == 404
    one = editor.put(url, json={"text": "NL | needs its own threshold", "reason": "retro"})
    assert one.status_code == 200, one.text
    assert (one.json()["edits"], one.json()["by"]) == (1, "erin")
    two = editor.put(url, json={"text": "NL needs its own threshold.\n\nShadow it first."})
    assert two.json()["edits"] == 2
    text = editor.get(f"{base}/{first}/review").text
    assert "NL needs its own threshold.\n\nShadow it first." in text
    assert "2 edit(s) in the audit log" in text
    audit = (
        reviewed.session()
        .get(f"{reviewed.url}/api/v1/audit", params={"action": "rollout.lessons"})
        .json()["entries"]
    )
    assert [(e["actor"], e["details"]["run"]) for e in audit] == [("erin", first)] * 2
    assert audit[1]["details"]["text"] == "NL | needs its own threshold"  # the first edit kept
    second = editor.get(base).json()["runs"][0]["id"]
    assert "None written yet" in editor.get(f"{base}/{second}/review").text


def test_the_cli_lists_reviews_and_writes_lessons(reviewed: LiveServer, tmp_path: Path) -> None:
    listed = run(reviewed, "rollouts", "runs", "fraud-model")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[:2] == ["RUN", "STATUS"]
    assert [line.split()[1] for line in lines[1:]] == ["aborted", "rolled_back"]
    first = int(lines[2].split()[0])
    review = run(reviewed, "rollouts", "review", "fraud-model", "--run", str(first))
    assert review.exit_code == 0, review.output
    assert review.output.startswith(
        f"# Post-deployment review: fraud-model in production, run {first}"
    )
    latest = run(reviewed, "rollouts", "review", "fraud-model")
    assert "| Outcome | aborted |" in latest.output
    written = run(reviewed, "rollouts", "lessons", "fraud-model", "--run", str(first), "-f", "-",
                  stdin="Watch NL from the first stage.\n")  # fmt: skip
    assert written.exit_code == 0, written.output
    assert "edit" in written.output
    html = run(
        reviewed, "rollouts", "review", "fraud-model", "--run", str(first), "--format", "html"
    )
    assert "Watch NL from the first stage." in html.output
    assert html.output.lstrip().startswith("<!doctype html>")


def test_the_console_shows_reviews_and_saves_lessons(reviewed: LiveServer) -> None:
    editor = ConsoleClient(reviewed, reviewed.token("editor", name="erin"))
    rollout = editor.get("/ui/envs/production/flags/fraud-model/rollout").text
    links = re.findall(r'href="(/ui/envs/production/flags/fraud-model/rollouts/(\d+)/review)"',
                       rollout)  # fmt: skip
    assert len(links) == 2  # one per run, newest first
    path, first = links[1]
    page = editor.get(path)
    assert page.status_code == 200
    assert f"Post-deployment review: fraud-model in production, run {first}" in page.text
    assert "<svg" in page.text
    assert "Lessons learned" in page.text
    saved = editor.post(f"/ui/envs/production/flags/fraud-model/rollouts/{first}/lessons",
                        {"text": "Cohort <NL> first.", "reason": "retro"})  # fmt: skip
    assert saved.status_code == 303, saved.text
    after = editor.get(saved.headers["location"]).text
    assert "Lessons saved." in after
    assert "Cohort &lt;NL&gt; first." in after  # escaped, never markup
    refused = editor.post(f"/ui/envs/production/flags/fraud-model/rollouts/{first}/lessons",
                          {"text": ""})  # fmt: skip
    assert refused.status_code == 422
    assert "Refused — lessons:" in refused.text
    viewer = ConsoleClient(reviewed, reviewed.token("viewer", name="vic"))
    seen = viewer.get(path).text
    assert "Cohort &lt;NL&gt; first." in seen
    assert "Save the lessons" not in seen  # no form for a role that cannot write
    forbidden = viewer.post(f"/ui/envs/production/flags/fraud-model/rollouts/{first}/lessons",
                            {"text": "mine"})  # fmt: skip
    assert forbidden.status_code == 403

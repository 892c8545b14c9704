"""The ``rollwise`` admin CLI against a real server (uvicorn on 127.0.0.1, real SQLite)."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from rollwise_server.api_client import ApiClient, ApiResponseError
from rollwise_server.cli import main
from rollwise_server.testing import LiveServer, free_port, live_server, new_database
from tests.rollouts.test_plan import PLAN
from tests.server.conftest import EU_SEGMENT, define_metrics, example_flag

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "cli.md"
Json = dict[str, Any]


NO_PROFILE = "/nonexistent/rollwise-profile.json"
"""Where the tests' runs look for a profile: nowhere (a developer's own must not leak in)."""


def run(
    server: LiveServer | None, *args: str, token: str | None = None, stdin: str | None = None
) -> Result:
    """``rollwise ARGS`` with ROLLWISE_URL and ROLLWISE_TOKEN pointing at ``server``, and
    ROLLWISE_ENV=production, as an admin's shell would set it (commands need an environment:
    there is no default; ``test_the_environment_is_never_guessed`` runs without it)."""
    env: dict[str, str | None] = {
        "ROLLWISE_URL": None,
        "ROLLWISE_TOKEN": None,
        "ROLLWISE_ENV": "production",
        "ROLLWISE_PROFILE": NO_PROFILE,
    }
    if server is not None:
        env |= {"ROLLWISE_URL": server.url, "ROLLWISE_TOKEN": token or server.admin_token}
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def failed(result: Result, code: int = 1) -> str:
    """The stderr of a failed run; no traceback, nothing on stdout."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return result.stderr


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> Json:
    with server.session() as session:
        response = session.request(method, f"{server.url}/api/v1/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        data: Json = response.json()
        return data


def write_json(path: Path, data: Json) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def lines(text: str) -> list[list[str]]:
    """A table's rows, split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


@pytest.fixture
def flagged(server: LiveServer, tmp_path: Path) -> LiveServer:
    """A server with the eu segment and the fraud-model flag (version 1) in production."""
    ok(run(server, "segments", "apply", "-f", write_json(tmp_path / "eu.json", EU_SEGMENT)))
    ok(run(server, "flags", "apply", "-f", write_json(tmp_path / "flag.json", example_flag())))
    return server


def walk(group: click.Group, prefix: str = "rollwise") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from walk(command, path)


LEAVES = [(path, cmd) for path, cmd in walk(main) if not isinstance(cmd, click.Group)]


# --- flags -------------------------------------------------------------------------------------


def test_apply_creates_then_updates_then_reports_unchanged(
    server: LiveServer, tmp_path: Path
) -> None:
    segment = write_json(tmp_path / "eu.json", EU_SEGMENT)
    assert ok(run(server, "segments", "apply", "-f", segment)).stdout == (
        "created segment eu in production (version 1)\n"
    )
    flag_file = write_json(tmp_path / "flag.json", example_flag())
    created = ok(run(server, "flags", "apply", "-f", flag_file, "--reason", "first"))
    assert created.stdout == "created flag fraud-model in production (version 1)\n"
    same = ok(run(server, "flags", "apply", "-f", flag_file))
    assert same.stdout == "flag fraud-model in production is unchanged (version 1)\n"
    changed = write_json(tmp_path / "flag.json", {**example_flag(), "enabled": False})
    updated = ok(run(server, "flags", "apply", "-f", changed, "--reason", "pause"))
    assert updated.stdout == "updated flag fraud-model in production: now version 2\n"
    history = api(server, "GET", "envs/production/flags/fraud-model/history")["versions"]
    assert [(h["action"], h["reason"]) for h in history] == [
        ("flag.create", "first"),
        ("flag.update", "pause"),
    ]


def test_apply_with_the_files_version_and_json_output(flagged: LiveServer, tmp_path: Path) -> None:
    current = json.loads(ok(run(flagged, "flags", "get", "fraud-model", "--json")).stdout)
    current["salt"] = "s2"  # edit what `get --json` printed and apply it back
    result = ok(run(flagged, "flags", "apply", "-f", write_json(tmp_path / "f.json", current)))
    assert result.stdout == "updated flag fraud-model in production: version 1 -> 2\n"
    current["salt"] = "s3"
    current["version"] = 2
    as_json = ok(run(flagged, "flags", "apply", "-f", write_json(tmp_path / "f.json", current),
                     "--json"))  # fmt: skip
    data = json.loads(as_json.stdout)
    assert (data["version"], data["salt"]) == (3, "s3")
    assert data == api(flagged, "GET", "envs/production/flags/fraud-model")


def test_apply_reads_standard_input_and_other_environments(server: LiveServer) -> None:
    ok(run(server, "segments", "apply", "-f", "-", "--env", "staging",
           stdin=json.dumps(EU_SEGMENT)))  # fmt: skip
    result = ok(run(server, "flags", "apply", "-f", "-", "--env", "staging",
                    stdin=json.dumps(example_flag())))  # fmt: skip
    assert result.stdout == "created flag fraud-model in staging (version 1)\n"
    assert api(server, "GET", "envs/production/flags")["flags"] == []


def test_a_stale_file_gets_the_409_explained(flagged: LiveServer, tmp_path: Path) -> None:
    ok(run(flagged, "flags", "kill", "fraud-model", "--reason", "incident"))
    stale = write_json(tmp_path / "stale.json", {**example_flag(), "version": 1, "salt": "x"})
    stderr = failed(run(flagged, "flags", "apply", "-f", stale, "--reason", "mine"))
    assert stderr.startswith("Error: flag 'fraud-model' is at version 2, not 1")
    assert "(HTTP 409)" in stderr
    assert "your file edits version 1, the server has version 2" in stderr
    assert "rollwise flags get fraud-model --env production --json" in stderr
    assert api(flagged, "GET", "envs/production/flags/fraud-model")["version"] == 2


def test_an_invalid_flag_gets_every_problem_on_its_own_line(
    flagged: LiveServer, tmp_path: Path
) -> None:
    bad = example_flag()
    bad["key"] = "other"
    bad["rules"][1]["serve"]["split"][0]["weight"] = -1
    bad["rules"][0]["conditions"].append({"segment": "nowhere"})
    bad["typo"] = True
    stderr = failed(run(flagged, "flags", "apply", "-f", write_json(tmp_path / "bad.json", bad)))
    first, *problems = stderr.splitlines()
    assert first == "Error: invalid request body (HTTP 422):"
    assert {p.split(":")[0].strip() for p in problems} == {
        "rules[1].serve.split[0].weight",
        "rules[0].conditions[1].segment",
        "typo",
    }
    assert all(p.startswith("  ") and ": " in p for p in problems)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold one flag object"),
        ('{"enabled": true}', 'the flag needs its "key"'),
    ],
)
def test_a_bad_file_is_a_usage_error(
    server: LiveServer, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "flag.json"
    path.write_text(content)
    stderr = failed(run(server, "flags", "apply", "-f", str(path)), code=2)
    assert message in stderr


def test_flags_list_table_and_json(flagged: LiveServer) -> None:
    rows = lines(ok(run(flagged, "flags", "list")).stdout)
    assert rows[0] == ["KEY", "VERSION", "ENABLED", "VARIANTS", "RULES", "UPDATED_BY", "UPDATED_AT"]
    key, version, enabled, variants, rules, updated_by, updated_at = rows[1]
    assert (key, version, enabled, variants, rules, updated_by) == (
        "fraud-model", "1", "yes", "v1,v2", "2", "admin",
    )  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", updated_at)
    as_json = json.loads(ok(run(flagged, "flags", "list", "--json")).stdout)
    assert as_json == api(flagged, "GET", "envs/production/flags")
    empty = ok(run(flagged, "flags", "list", "--env", "staging"))
    assert (empty.stdout, empty.stderr) == ("", "no flags in staging\n")


def test_the_columns_line_up(flagged: LiveServer, tmp_path: Path) -> None:
    other = {**example_flag(), "key": "a-much-longer-flag-key", "rules": []}
    ok(run(flagged, "flags", "apply", "-f", write_json(tmp_path / "other.json", other)))
    table = ok(run(flagged, "flags", "list")).stdout.splitlines()
    starts = {line.index(word) for line, word in zip(table, ["VERSION", "1", "1"], strict=True)}
    assert len(starts) == 1
    assert table[1].startswith("a-much-longer-flag-key  1 ")


def test_flags_get_shows_rules_readably(flagged: LiveServer) -> None:
    text = ok(run(flagged, "flags", "get", "fraud-model")).stdout
    assert "flag         fraud-model\n" in text
    assert "enabled      yes\n" in text
    assert 'variants     v1 {"model": "fraud-2025-06"}\n' in text
    assert "schedule     2026-11-01T00:00:00Z -> (open)\n" in text
    assert lines(text.split("\n\n")[1]) == [
        ["#", "RULE", "CONDITIONS", "SERVES"],
        ["1", "qa-team", "user_id in [u1, u2]", "v2"],
        ["2", "eu-small", "segment eu AND amount lt 500", "split by user_id: v2 1%, v1 99%"],
    ]
    as_json = json.loads(ok(run(flagged, "flags", "get", "fraud-model", "--json")).stdout)
    assert as_json == api(flagged, "GET", "envs/production/flags/fraud-model")


def test_flags_apply_and_get_show_a_shadow(flagged: LiveServer, tmp_path: Path) -> None:
    shadowed = {**example_flag(), "key": "shadowed",
                "shadow": {"variant": "v2", "share": 0.25}}  # fmt: skip
    ok(run(flagged, "flags", "apply", "-f", write_json(tmp_path / "shadowed.json", shadowed)))
    text = ok(run(flagged, "flags", "get", "shadowed")).stdout
    assert "shadow       v2 for 25% of units by user_id (never served)\n" in text
    assert "shadow       -\n" in ok(run(flagged, "flags", "get", "fraud-model")).stdout


def test_kill_revert_and_history(flagged: LiveServer) -> None:
    killed = ok(run(flagged, "flags", "kill", "fraud-model", "--reason", "AUC dropped"))
    assert killed.stdout == (
        "killed flag fraud-model in production: version 2 serves the off variant v1 to everyone\n"
    )
    reverted = ok(run(flagged, "flags", "revert", "fraud-model", "--to-version", "1",
                      "--reason", "fixed", "--json"))  # fmt: skip
    assert (json.loads(reverted.stdout)["version"], json.loads(reverted.stdout)["enabled"]) == (
        3,
        True,
    )
    table = lines(ok(run(flagged, "flags", "history", "fraud-model")).stdout)
    assert table[0] == ["VERSION", "ACTION", "ACTOR", "TS", "REASON", "CHANGES"]
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in table[1:]] == [
        ("1", "create", "admin", "-", "(new)"),
        ("2", "kill", "admin", "AUC dropped", "~/enabled true->false"),
        ("3", "revert", "admin", "fixed", "~/enabled false->true"),
    ]
    as_json = json.loads(ok(run(flagged, "flags", "history", "fraud-model", "--json")).stdout)
    assert as_json == api(flagged, "GET", "envs/production/flags/fraud-model/history")


def test_kill_and_revert_need_a_reason(flagged: LiveServer) -> None:
    assert "Missing option '--reason'" in failed(run(flagged, "flags", "kill", "fraud-model"), 2)
    no_version = run(flagged, "flags", "revert", "fraud-model", "--reason", "r")
    assert "Missing option '--to-version'" in failed(no_version, 2)


def test_history_summarises_long_diffs(flagged: LiveServer, tmp_path: Path) -> None:
    changed = example_flag()
    changed["description"] = "new"
    changed["salt"] = "new-salt"
    changed["cohort_attributes"] = ["country", "amount", "channel", "device", "segment"]
    changed["rules"][0]["conditions"][0]["values"] = ["u3", "u4", "u5", "u6", "u7"]
    ok(run(flagged, "flags", "apply", "-f", write_json(tmp_path / "f.json", changed)))
    last = lines(ok(run(flagged, "flags", "history", "fraud-model")).stdout)[-1]
    assert re.search(r"\(\+\d+ more\)$", last[-1])
    assert last[-1].startswith(("~/", "+/", "-/"))


def test_archive_and_list_archived(flagged: LiveServer, tmp_path: Path) -> None:
    archived = ok(run(flagged, "flags", "archive", "fraud-model", "--reason", "done"))
    assert archived.stdout.startswith("archived flag fraud-model in production; its history stays")
    assert ok(run(flagged, "flags", "list")).stderr == "no flags in production\n"
    table = lines(ok(run(flagged, "flags", "list", "--archived")).stdout)
    assert table[0][-1] == "ARCHIVED"
    assert (table[1][0], table[1][-1]) == ("fraud-model", "yes")
    history = lines(ok(run(flagged, "flags", "history", "fraud-model")).stdout)
    assert history[-1][1:3] == ["archive", "admin"]
    assert history[-1][-1] == "(archived)"
    again = failed(run(flagged, "flags", "archive", "fraud-model", "--json"))
    assert "is archived; create it again (POST) to restore it (HTTP 409)" in again
    # applying the file again brings it back as a new version
    restored = ok(run(flagged, "flags", "apply", "-f",
                      write_json(tmp_path / "f.json", example_flag())))  # fmt: skip
    assert restored.stdout.startswith("created flag fraud-model in production")
    history = lines(ok(run(flagged, "flags", "history", "fraud-model")).stdout)
    assert (history[-1][1], history[-1][-1]) == ("create", "(restored)")


def test_promote_copies_to_another_environment(flagged: LiveServer, tmp_path: Path) -> None:
    missing_segment = failed(run(flagged, "flags", "promote", "fraud-model", "--to", "staging"))
    assert "uses segments that differ in staging or are not there: eu" in missing_segment
    assert "--with-segments" in missing_segment
    segment = write_json(tmp_path / "eu.json", EU_SEGMENT)
    ok(run(flagged, "segments", "apply", "-f", segment, "--env", "staging"))
    promoted = ok(run(flagged, "flags", "promote", "fraud-model", "--to", "staging",
                      "--reason", "tested"))  # fmt: skip
    assert promoted.stdout == (
        "promoted flag fraud-model from production to staging: version 1 in staging\n"
    )
    again = ok(run(flagged, "flags", "promote", "fraud-model", "--to", "staging", "--json"))
    assert json.loads(again.stdout)["version"] == 2
    assert api(flagged, "GET", "envs/staging/flags/fraud-model")["version"] == 2


def test_a_missing_flag_or_environment_is_a_clear_error(flagged: LiveServer) -> None:
    assert failed(run(flagged, "flags", "get", "nope")) == (
        "Error: flag 'nope' does not exist in environment 'production' (HTTP 404)\n"
    )
    stderr = failed(run(flagged, "flags", "list", "--env", "nowhere"))
    assert stderr == "Error: environment 'nowhere' does not exist (HTTP 404)\n"


# --- segments ----------------------------------------------------------------------------------


def test_segment_commands(flagged: LiveServer, tmp_path: Path) -> None:
    table = lines(ok(run(flagged, "segments", "list")).stdout)
    assert table[0] == ["KEY", "VERSION", "CONDITIONS", "DESCRIPTION", "UPDATED_BY", "UPDATED_AT"]
    assert table[1][:5] == ["eu", "1", "1", "-", "admin"]
    listed = json.loads(ok(run(flagged, "segments", "list", "--json")).stdout)
    assert listed == api(flagged, "GET", "envs/production/segments")
    shown = ok(run(flagged, "segments", "get", "eu")).stdout
    assert "conditions   country in [DE, FR, NL]\n" in shown
    got = json.loads(ok(run(flagged, "segments", "get", "eu", "--json")).stdout)
    assert got == api(flagged, "GET", "envs/production/segments/eu")
    wider = {**EU_SEGMENT, "description": "euro area"}
    wider["conditions"] = [
        {"attribute": "country", "operator": "in", "values": ["DE", "FR", "NL", "IT"]},
        {"attribute": "amount", "operator": "gte", "value": 1, "negate": True},
    ]
    updated = ok(run(flagged, "segments", "apply", "-f", write_json(tmp_path / "eu.json", wider),
                     "--reason", "add IT"))  # fmt: skip
    assert updated.stdout == "updated segment eu in production: now version 2\n"
    shown = ok(run(flagged, "segments", "get", "eu")).stdout
    assert "             AND NOT amount gte 1\n" in shown
    history = lines(ok(run(flagged, "segments", "history", "eu")).stdout)
    assert [row[1] for row in history[1:]] == ["create", "update"]
    assert history[2][4] == "add IT"
    as_json = json.loads(ok(run(flagged, "segments", "history", "eu", "--json")).stdout)
    assert [v["version"] for v in as_json["versions"]] == [1, 2]
    in_use = failed(run(flagged, "segments", "archive", "eu"))
    assert in_use == "Error: segment 'eu' is used by flags fraud-model (HTTP 409)\n"
    ok(run(flagged, "flags", "archive", "fraud-model"))
    archived = ok(run(flagged, "segments", "archive", "eu", "--json"))
    assert json.loads(archived.stdout)["archived"] is True


# --- tokens, environments, audit ---------------------------------------------------------------


def test_tokens_over_rest(server: LiveServer) -> None:
    created = ok(run(server, "tokens", "create", "--role", "viewer", "--name", "dashboard",
                     "--owner", "dana"))  # fmt: skip
    secret = created.stdout.strip()
    assert secret.startswith("rw_")
    assert re.fullmatch(
        r"created viewer token tok_\w+ \(dashboard, owner dana\); the secret is shown once\n",
        created.stderr,
    )
    ok(run(server, "flags", "list", token=secret))  # the viewer may read
    forbidden = failed(run(server, "flags", "kill", "fraud-model", "--reason", "x", token=secret))
    assert "(HTTP 403)" in forbidden
    table = lines(ok(run(server, "tokens", "list")).stdout)
    assert table[0] == TOKEN_HEADERS
    row = next(r for r in table if r[1] == "dashboard")
    assert row[2:7] == ["dana", "viewer", "all", "never", "admin"]
    assert row[8] == "-"
    listed = json.loads(ok(run(server, "tokens", "list", "--json")).stdout)
    assert listed == api(server, "GET", "tokens")
    assert all("token" not in t and "secret_hash" not in t for t in listed["tokens"])
    revoked = ok(run(server, "tokens", "revoke", row[0]))
    assert revoked.stdout.startswith(f"revoked token {row[0]} (dashboard) at ")
    stderr = failed(run(server, "flags", "list", token=secret))
    assert stderr == (
        "Error: unknown or revoked token (HTTP 401)\n"
        "  check the token in ROLLWISE_TOKEN / --token\n"
    )
    missing = failed(run(server, "tokens", "revoke", "tok_nope"))
    assert missing == "Error: token 'tok_nope' does not exist (HTTP 404)\n"


TOKEN_HEADERS = ["ID", "NAME", "OWNER", "ROLE", "ENVS", "EXPIRES", "CREATED_BY", "CREATED_AT",
                 "REVOKED_AT"]  # fmt: skip


def test_an_sdk_token_over_rest_with_json(server: LiveServer) -> None:
    result = ok(run(server, "tokens", "create", "--role", "sdk", "--env", "staging", "--json"))
    data = json.loads(result.stdout)
    assert (data["role"], data["env"], data["name"]) == ("sdk", "staging", "sdk-staging")
    assert (data["owner"], data["envs"], data["expires_at"]) == ("sdk-staging", ["staging"], None)
    assert data["token"].startswith("rw_")
    revoked = json.loads(ok(run(server, "tokens", "revoke", data["id"], "--json")).stdout)
    assert revoked["revoked_at"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "sdk"], "an sdk token is bound to one environment: pass --env"),
        (["--role", "admin", "--env", "staging"], "only sdk tokens are bound to an environment"),
        (["--role", "editor"], "an editor token belongs to a person: pass --owner"),
        (["--role", "viewer", "--name", "x"], "a viewer token belongs to a person: pass --owner"),
        (["--role", "sdk", "--env", "staging", "--envs", "staging"], "pass --env, not --envs"),
        (["--role", "admin", "--owner", "a", "--envs", " , "], "name at least one environment"),
        (["--role", "admin", "--owner", "a", "--expires", "2020-01-01"], "is not in the future"),
        (["--role", "admin", "--owner", "a", "--expires", "0d"], "'0d' is not in the future"),
        (["--role", "admin", "--owner", "a", "--expires", "soon"], "neither an ISO date/time"),
        (
            ["--role", "admin", "--owner", "a", "--expires", "99999999999d"],
            "as a duration it is longer than 100 years",
        ),
        (["--role", "admin", "--owner", "a", "--expires", "2026"], "it needs a unit"),
        (["--role", "admin", "--owner", "a", "--expires", "30m1h"], "units out of order"),
    ],
)
def test_token_roles_and_environments_are_checked(
    server: LiveServer, args: list[str], message: str
) -> None:
    assert message in failed(run(server, "tokens", "create", *args), code=2)


def test_tokens_create_db_bootstraps_the_first_admin(tmp_path: Path) -> None:
    db = new_database(tmp_path)  # the database that live_server(tmp_path) opens below
    result = ok(run(None, "tokens", "create", "--role", "admin", "--name", "ops", "--db", db))
    secret = result.stdout.strip()
    assert secret.startswith("rw_")
    assert "created admin token tok_" in result.stderr
    assert "(ops, owner ops); the secret is shown once" in result.stderr
    sdk = ok(run(None, "tokens", "create", "--role", "sdk", "--env", "staging", "--db", db,
                 "--json"))  # fmt: skip
    assert json.loads(sdk.stdout)["name"] == "sdk-bootstrap"
    scoped = ok(run(None, "tokens", "create", "--role", "editor", "--owner", "Erin", "--envs",
                    "staging", "--expires", "2999-01-01T00:00:00Z", "--db", db))  # fmt: skip
    assert re.search(
        r"\(editor-bootstrap, owner Erin, envs staging, expires 2999-01-01T00:00:00Z\)",
        scoped.stderr,
    )
    with live_server(tmp_path) as server:  # the server opens the same database
        table = lines(ok(run(server, "tokens", "list", token=secret)).stdout)
        ops = next(row for row in table if row[1] == "ops")
        assert ops[2:7] == ["ops", "admin", "all", "never", "cli (direct database access)"]
        erin = next(row for row in table if row[1] == "editor-bootstrap")
        assert erin[2:6] == ["Erin", "editor", "staging", "2999-01-01T00:00:00Z"]
        sdk_row = next(row for row in table if row[1] == "sdk-bootstrap")
        assert sdk_row[3:5] == ["sdk", "staging"]
        editor = scoped.stdout.strip()
        ok(run(server, "flags", "list", "--env", "staging", token=editor))
        outside = failed(run(server, "flags", "list", "--env", "production", token=editor))
        assert "(HTTP 403)" in outside


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "sdk", "--env", "nowhere"], "environment 'nowhere' does not exist"),
        (["--role", "admin", "--db", "mysql://x/y"], "unsupported database URL scheme"),
        (["--role", "admin", "--db", "postgresql://nobody@127.0.0.1:1/y"], "cannot connect to"),
    ],
)
def test_tokens_create_db_errors(tmp_path: Path, args: list[str], message: str) -> None:
    if "--db" not in args:
        args = [*args, "--db", str(tmp_path / "rollwise.db")]
    stderr = failed(run(None, "tokens", "create", *args))
    assert stderr.startswith("Error: cannot create the token in ")
    assert message in stderr


def test_environments(server: LiveServer) -> None:
    created = ok(run(server, "envs", "create", "canary", "--reason", "shadow traffic"))
    assert created.stdout == "created environment canary\n"
    table = lines(ok(run(server, "envs", "list")).stdout)
    assert table[0] == ["KEY", "PROTECTED", "REVISION", "CREATED_AT"]
    assert [row[:3] for row in table[1:]] == [
        ["staging", "no", "0"],
        ["production", "yes", "0"],  # protected from the start
        ["canary", "no", "0"],
    ]
    as_json = json.loads(ok(run(server, "envs", "list", "--json")).stdout)
    assert as_json == api(server, "GET", "envs")
    again = failed(run(server, "envs", "create", "canary"))
    assert again == "Error: environment 'canary' exists already (HTTP 409)\n"
    bad = failed(run(server, "envs", "create", "no spaces", "--json"))
    assert bad.splitlines()[1] == "  key: must be 1-128 letters, digits, '_', '.' or '-'"
    made = json.loads(ok(run(server, "envs", "create", "dev", "--json")).stdout)
    assert (made["key"], made["revision"], made["protected"]) == ("dev", 0, False)
    guarded = ok(run(server, "envs", "create", "prod-eu", "--protected"))
    assert guarded.stdout == "created protected environment prod-eu\n"
    assert api(server, "GET", "envs/prod-eu")["protected"] is True


def test_protect_and_unprotect_an_environment(flagged: LiveServer, tmp_path: Path) -> None:
    no_reason = failed(run(flagged, "envs", "protect", "staging"), code=2)
    assert "Missing option '--reason'" in no_reason
    assert "Missing option '--reason'" in failed(run(flagged, "envs", "unprotect", "staging"), 2)
    assert api(flagged, "GET", "envs/staging")["protected"] is False
    protected = ok(run(flagged, "envs", "protect", "staging", "--reason", "demo day"))
    assert protected.stdout == "environment staging is protected\n"
    table = lines(ok(run(flagged, "envs", "list")).stdout)
    assert [row[:2] for row in table[1:]] == [["staging", "yes"], ["production", "yes"]]
    # promoting into a protected environment needs a reason: the 422 reads as one message
    ok(run(flagged, "segments", "apply", "-f", write_json(tmp_path / "eu.json", EU_SEGMENT),
           "--env", "staging"))  # fmt: skip
    refused = failed(run(flagged, "flags", "promote", "fraud-model", "--to", "staging"))
    assert refused == (
        "Error: reason: required to promote a flag into it in protected environment 'staging'"
        " (HTTP 422)\n"
        "  say why with --reason: staging is a protected environment\n"
    )
    ok(run(flagged, "flags", "promote", "fraud-model", "--to", "staging", "--reason", "tested"))
    again = json.loads(ok(run(flagged, "envs", "protect", "staging", "--reason", "x",
                              "--json")).stdout)  # fmt: skip
    assert again == api(flagged, "GET", "envs/staging")
    lifted = ok(run(flagged, "envs", "unprotect", "staging", "--reason", "demo over"))
    assert lifted.stdout == "environment staging is not protected\n"
    audit = json.loads(ok(run(flagged, "audit", "--env", "staging", "--json")).stdout)
    changes = [(e["action"], e["reason"]) for e in audit["entries"]
               if e["resource_type"] == "environment"]  # fmt: skip
    assert changes == [("environment.unprotect", "demo over"),
                       ("environment.protect", "demo day")]  # fmt: skip
    missing = failed(run(flagged, "envs", "protect", "nowhere", "--reason", "x"))
    assert missing == "Error: environment 'nowhere' does not exist (HTTP 404)\n"


def test_audit(flagged: LiveServer) -> None:
    ok(run(flagged, "flags", "kill", "fraud-model", "--reason", "incident 42"))
    table = lines(ok(run(flagged, "audit")).stdout)
    assert table[0] == [
        "ID", "TS", "ACTOR", "TOKEN", "ACTION", "ENV", "RESOURCE", "VERSION", "REASON",
    ]  # fmt: skip
    admin_id = next(
        t["id"] for t in api(flagged, "GET", "tokens")["tokens"] if t["name"] == "admin"
    )
    assert table[1][2:] == ["admin", admin_id, "flag.kill", "production", "flag:fraud-model",
                            "2", "incident 42"]  # fmt: skip
    only_flag = lines(ok(run(flagged, "audit", "--flag", "fraud-model", "--since", "1h")).stdout)
    assert [row[4] for row in only_flag[1:]] == ["flag.kill", "flag.create"]
    page = ok(run(flagged, "audit", "--limit", "1", "--env", "production"))
    assert len(lines(page.stdout)) == 2
    cursor = re.fullmatch(r"more entries: rollwise audit --before (\d+) \.\.\.\n", page.stderr)
    assert cursor is not None
    older = lines(ok(run(flagged, "audit", "--before", cursor[1], "--limit", "1")).stdout)
    assert older[1][4] == "flag.create"
    by_actor = json.loads(ok(run(flagged, "audit", "--actor", "test", "--json")).stdout)
    assert [e["action"] for e in by_actor["entries"]] == ["token.create"]
    assert by_actor == api(flagged, "GET", "audit", params={"actor": "test"})
    segment = json.loads(ok(run(flagged, "audit", "--segment", "eu", "--json")).stdout)
    assert [e["action"] for e in segment["entries"]] == ["segment.create"]
    future = ok(run(flagged, "audit", "--since", "2999-01-01"))
    assert (future.stdout, future.stderr) == ("", "no audit entries match\n")
    until = json.loads(ok(run(flagged, "audit", "--until", "2000-01-01T00:00:00+00:00",
                                "--json")).stdout)  # fmt: skip
    assert until["entries"] == []
    assert "neither an ISO date/time" in failed(run(flagged, "audit", "--since", "yesterday"), 2)
    # the one duration grammar (rollwise.durations): parts, largest unit first
    recent = lines(ok(run(flagged, "audit", "--flag", "fraud-model", "--since", "1d12h")).stdout)
    assert recent == only_flag
    assert "1<=x<=1000" in failed(run(flagged, "audit", "--limit", "5000"), 2)


def test_audit_names_the_owner_and_token_and_follows_rollouts_and_metrics(
    flagged: LiveServer, tmp_path: Path
) -> None:
    created = ok(run(flagged, "tokens", "create", "--role", "editor", "--name", "ci",
                     "--owner", "Bob", "--json"))  # fmt: skip
    bob = json.loads(created.stdout)
    define_metrics(flagged)
    ok(run(flagged, "flags", "kill", "fraud-model", "--reason", "drill", token=bob["token"]))
    ok(run(flagged, "flags", "revert", "fraud-model", "--to-version", "1", "--reason", "over"))
    api(flagged, "PUT", "envs/production/flags/fraud-model/rollout", json=PLAN)
    table = lines(ok(run(flagged, "audit", "--flag", "fraud-model")).stdout)
    assert [(r[2], r[4], r[6]) for r in table[1:]] == [
        ("admin", "rollout.plan", "rollout:fraud-model"),
        ("admin", "flag.revert", "flag:fraud-model"),
        ("Bob", "flag.kill", "flag:fraud-model"),
        ("admin", "flag.create", "flag:fraud-model"),
    ]
    assert table[3][3] == bob["id"]
    by_bob = json.loads(ok(run(flagged, "audit", "--actor", "Bob", "--json")).stdout)
    assert [(e["action"], e["owner"], e["token_id"]) for e in by_bob["entries"]] == [
        ("flag.kill", "Bob", bob["id"])
    ]
    seconds = {"key": "latency_ms", "kind": "mean", "direction": "lower_is_better", "unit": "s"}
    metric = write_json(tmp_path / "m.json", seconds)
    ok(run(flagged, "metrics", "apply", "-f", metric, "--reason", "seconds now"))
    only_metric = lines(ok(run(flagged, "audit", "--metric", "latency_ms")).stdout)
    assert [(r[4], r[6], r[8]) for r in only_metric[1:]] == [
        ("metric.update", "metric:latency_ms", "seconds now"),
        ("metric.create", "metric:latency_ms", "-"),
    ]
    as_json = json.loads(ok(run(flagged, "audit", "--metric", "latency_ms", "--json")).stdout)
    assert as_json == api(flagged, "GET", "audit", params={"metric": "latency_ms"})


# --- metrics -----------------------------------------------------------------------------------

LATENCY = {"key": "latency_ms", "kind": "mean", "direction": "lower_is_better", "unit": "ms",
           "default_tolerance": 5, "owner": "ml-platform"}  # fmt: skip


def _track(server: LiveServer, metric: str, count: int) -> None:
    """``count`` outcome events naming ``metric`` in production, sent with an sdk token."""
    secret = server.token("sdk", env="production")
    events = [
        {"id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00Z", "flag": "fraud-model",
         "flag_version": 1, "variant": "v1", "unit_type": "user_id", "unit": f"u{i}",
         "metric": metric, "value": 1}
        for i in range(count)
    ]  # fmt: skip
    with server.session(secret) as session:
        response = session.post(f"{server.url}/api/v1/sdk/events", json={"events": events})
        response.raise_for_status()
        assert response.json()["accepted"] == count, response.json()


def test_metric_commands(server: LiveServer, tmp_path: Path) -> None:
    path = write_json(tmp_path / "latency.json", LATENCY)
    created = ok(run(server, "metrics", "apply", "-f", path, "--reason", "guardrail"))
    assert created.stdout == "created metric latency_ms in production (version 1)\n"
    # left-out fields take their defaults, so the same files apply again unchanged
    same = ok(run(server, "metrics", "apply", "-f", path))
    assert same.stdout == "metric latency_ms in production is unchanged (version 1)\n"
    minimal = {"key": "converted", "kind": "binary", "direction": "higher_is_better"}
    ok(run(server, "metrics", "apply", "-f", write_json(tmp_path / "c.json", minimal)))
    again = ok(run(server, "metrics", "apply", "-f", write_json(tmp_path / "c.json", minimal)))
    assert again.stdout == "metric converted in production is unchanged (version 1)\n"
    ratio = {"key": "approval_rate", "kind": "ratio", "direction": "higher_is_better",
             "denominator": "applications", "default_tolerance": -0.01}  # fmt: skip
    ok(run(server, "metrics", "apply", "-f", write_json(tmp_path / "r.json", ratio)))
    unchanged = ok(run(server, "metrics", "apply", "-f", write_json(tmp_path / "r.json", ratio)))
    assert "is unchanged (version 1)" in unchanged.stdout
    table = lines(ok(run(server, "metrics", "list")).stdout)
    assert table[0] == ["KEY", "VERSION", "KIND", "DIRECTION", "UNIT", "OWNER", "UPDATED_BY",
                        "UPDATED_AT"]  # fmt: skip
    assert sorted(row[:7] for row in table[1:]) == [
        ["approval_rate", "1", "ratio", "higher_is_better", "-", "-", "admin"],
        ["converted", "1", "binary", "higher_is_better", "-", "-", "admin"],
        ["latency_ms", "1", "mean", "lower_is_better", "ms", "ml-platform", "admin"],
    ]
    listed = json.loads(ok(run(server, "metrics", "list", "--json")).stdout)
    assert listed == api(server, "GET", "envs/production/metrics")
    shown = ok(run(server, "metrics", "get", "latency_ms")).stdout
    for line in ("metric       latency_ms", "kind         mean", "direction    lower_is_better",
                 "unit         ms", "tolerance    +5", "owner        ml-platform",
                 "description  -"):  # fmt: skip
        assert f"{line}\n" in shown, shown
    rate = ok(run(server, "metrics", "get", "approval_rate")).stdout
    assert "ratio        approval_rate / applications\n" in rate
    assert "tolerance    -0.01\n" in rate
    got = json.loads(ok(run(server, "metrics", "get", "latency_ms", "--json")).stdout)
    assert got == api(server, "GET", "envs/production/metrics/latency_ms")
    bad = {**LATENCY, "default_tolerance": -1, "kind": "median"}
    stderr = failed(run(server, "metrics", "apply", "-f", write_json(tmp_path / "b.json", bad)))
    assert stderr.splitlines()[0] == "Error: invalid request body (HTTP 422):"
    assert {p.split(":")[0].strip() for p in stderr.splitlines()[1:]} == {
        "kind", "default_tolerance",
    }  # fmt: skip
    changed = write_json(tmp_path / "latency.json", {**LATENCY, "default_tolerance": 10})
    updated = ok(run(server, "metrics", "apply", "-f", changed, "--reason", "p95 budget"))
    assert updated.stdout == "updated metric latency_ms in production: now version 2\n"
    history = lines(ok(run(server, "metrics", "history", "latency_ms")).stdout)
    assert [(r[0], r[1], r[4], r[5]) for r in history[1:]] == [
        ("1", "create", "guardrail", "(new)"),
        ("2", "update", "p95 budget", "~/default_tolerance 5.0->10.0"),
    ]
    archived = ok(run(server, "metrics", "archive", "converted", "--reason", "unused"))
    assert archived.stdout == (
        "archived metric converted in production; its history stays "
        "(rollwise metrics history converted --env production)\n"
    )
    keys = [row[0] for row in lines(ok(run(server, "metrics", "list")).stdout)[1:]]
    assert sorted(keys) == ["approval_rate", "latency_ms"]
    with_archived = lines(ok(run(server, "metrics", "list", "--archived")).stdout)
    assert with_archived[0][-1] == "ARCHIVED"
    converted = next(r for r in with_archived if r[0] == "converted")
    assert (converted[1], converted[-1]) == ("2", "yes")  # the archive is a version
    restored = ok(run(server, "metrics", "apply", "-f", write_json(tmp_path / "c.json", minimal)))
    assert restored.stdout.startswith("created metric converted in production")
    empty = ok(run(server, "metrics", "list", "--env", "staging"))
    assert (empty.stdout, empty.stderr) == ("", "no metrics in staging\n")
    assert "It leaves the catalogue" in ok(run(server, "metrics", "archive", "--help")).stdout


def test_metrics_list_shows_the_metrics_seen_but_not_defined(
    server: LiveServer, tmp_path: Path
) -> None:
    _track(server, "clickd", 3)
    _track(server, "latency_ms", 2)
    only_seen = ok(run(server, "metrics", "list"))
    assert only_seen.stderr == (
        "no metrics in production\n"
        "define them with: rollwise metrics apply -f FILE --env production\n"
    )
    heading, *table = only_seen.stdout.splitlines()
    assert heading == "seen in events but not defined:"
    assert [row[:2] for row in lines("\n".join(table))] == [
        ["METRIC", "EVENTS"],
        ["clickd", "3"],
        ["latency_ms", "2"],
    ]
    assert lines(table[1])[0][2] == "2026-11-25T10:00:00Z"
    ok(run(server, "metrics", "apply", "-f", write_json(tmp_path / "l.json", LATENCY)))
    result = ok(run(server, "metrics", "list"))
    defined, seen = result.stdout.split("\n\n")
    assert [row[0] for row in lines(defined)] == ["KEY", "latency_ms"]
    assert seen.splitlines()[0] == "seen in events but not defined:"
    assert [row[:2] for row in lines(seen)[1:]] == [["METRIC", "EVENTS"], ["clickd", "3"]]
    as_json = json.loads(ok(run(server, "metrics", "list", "--json")).stdout)
    assert [(u["key"], u["events"]) for u in as_json["undefined"]] == [("clickd", 3)]


# --- tokens with owners, environments and expiry -----------------------------------------------


def test_tokens_create_with_owner_envs_and_expires(server: LiveServer) -> None:
    before = datetime.now(UTC)
    created = ok(run(server, "tokens", "create", "--role", "editor", "--name", "bob-laptop",
                     "--owner", "bob", "--envs", "staging, staging,", "--expires", "30d",
                     "--json"))  # fmt: skip
    data = json.loads(created.stdout)
    assert (data["owner"], data["envs"], data["env"]) == ("bob", ["staging"], None)
    expires = datetime.fromisoformat(data["expires_at"])
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
    table = lines(ok(run(server, "tokens", "list")).stdout)
    assert table[0] == TOKEN_HEADERS
    row = next(r for r in table if r[1] == "bob-laptop")
    assert row[2:5] == ["bob", "editor", "staging"]
    assert row[5] == data["expires_at"].split(".")[0] + "Z"
    ok(run(server, "flags", "list", "--env", "staging", token=data["token"]))
    outside = failed(run(server, "flags", "list", "--env", "production", token=data["token"]))
    assert "(HTTP 403)" in outside
    text = ok(run(server, "tokens", "create", "--role", "viewer", "--owner", "carol", "--envs",
                  "staging,production", "--expires", "2999-01-01T00:00:00+01:00"))  # fmt: skip
    assert re.fullmatch(
        r"created viewer token tok_\w+ \(viewer, owner carol, envs staging,production, "
        r"expires 2998-12-31T23:00:00Z\); the secret is shown once\n",
        text.stderr,
    )
    unknown = failed(run(server, "tokens", "create", "--role", "viewer", "--owner", "x",
                         "--envs", "nowhere"))  # fmt: skip
    assert unknown == (
        "Error: invalid request body (HTTP 422):\n  envs[0]: no environment 'nowhere'\n"
    )


# --- configuration and connection errors -------------------------------------------------------


def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["flags", "list", "--env", "production"],
                                env={"ROLLWISE_URL": url, "ROLLWISE_TOKEN": "rw_x"})  # fmt: skip
    stderr = failed(result)
    assert stderr == (
        f"Error: cannot reach the flag server at {url}: connection refused\n"
        "  is the server running? the URL comes from ROLLWISE_URL or --url\n"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no server URL: set ROLLWISE_URL or pass --url"),
        (
            {"ROLLWISE_URL": "http://127.0.0.1:9"},
            "no API token: set ROLLWISE_TOKEN or pass --token",
        ),
        ({"ROLLWISE_URL": "127.0.0.1:8000", "ROLLWISE_TOKEN": "rw_x"}, "must start with http://"),
    ],
)
def test_missing_or_bad_configuration_is_a_usage_error(env: dict[str, str], message: str) -> None:
    full: dict[str, str | None] = {"ROLLWISE_URL": None, "ROLLWISE_TOKEN": None, **env}
    result = CliRunner().invoke(main, ["flags", "list", "--env", "production"], env=full)
    assert message in failed(result, code=2)


def test_url_and_token_options_override_the_environment(flagged: LiveServer) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--url",
            flagged.url,
            "--token",
            flagged.admin_token,
            "flags",
            "list",
            "--json",
            "--env",
            "production",
        ],
        env={"ROLLWISE_URL": "http://127.0.0.1:9", "ROLLWISE_TOKEN": "rw_wrong"},
    )
    assert [f["key"] for f in json.loads(ok(result).stdout)["flags"]] == ["fraud-model"]


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers every request with 503 and an HTML page, and counts them by method."""

    counts: dict[str, int] = {}  # noqa: RUF012 - reset by the fixture

    def _answer(self) -> None:
        self.counts[self.command] = self.counts.get(self.command, 0) + 1
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b"<html><body>upstream is down</body></html>"
        self.send_response(503)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.counts = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_gets_are_retried_and_writes_are_not(flaky: str) -> None:
    with ApiClient(flaky, "rw_x", retries=2) as client:
        with pytest.raises(ApiResponseError) as got:
            client.tokens()
        assert got.value.status == 503
        assert (
            got.value.detail
            == "HTTP 503 Service Unavailable: <html><body>upstream is down</body></html>"
        )
        with pytest.raises(ApiResponseError):
            client.kill("production", "fraud-model", reason="x")
    assert _Flaky.counts == {"GET": 3, "POST": 1}


def test_a_non_json_error_page_is_shown_briefly(flaky: str) -> None:
    result = CliRunner().invoke(main, ["envs", "list"], env={"ROLLWISE_URL": flaky,
                                                            "ROLLWISE_TOKEN": "rw_x"})  # fmt: skip
    assert failed(result) == (
        "Error: HTTP 503 Service Unavailable: <html><body>upstream is down</body></html>"
        " (HTTP 503)\n"
    )


# --- the command as a whole --------------------------------------------------------------------


def test_every_command_but_serve_has_json_output() -> None:
    for path, command in LEAVES:
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert path == "rollwise serve" or "--json" in options, path


def test_help_works_without_configuration() -> None:
    for path, _ in [("rollwise", main), *walk(main)]:
        args = [*path.split()[1:], "--help"]
        result = CliRunner().invoke(main, args, env={"ROLLWISE_URL": None})
        assert result.exit_code == 0, (path, result.output)
        assert result.stdout.startswith(f"Usage: {path}")


def test_importing_the_cli_stays_light() -> None:
    heavy = ["uvicorn", "starlette", "sqlite_utils", "cattrs", "rollwise_server.app"]
    code = (
        f"import sys, rollwise_server.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_console_entry_in_a_subprocess(flagged: LiveServer) -> None:
    env = {**os.environ, "ROLLWISE_URL": flagged.url, "ROLLWISE_TOKEN": flagged.admin_token}
    env.pop("ROLLWISE_ENV", None)
    out = subprocess.run(
        [sys.executable, "-m", "rollwise_server", "flags", "list", "--json", "--env", "production"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [f["key"] for f in json.loads(out.stdout)["flags"]] == ["fraud-model"]
    refused = subprocess.run(
        [sys.executable, "-m", "rollwise_server", "envs", "list"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**env, "ROLLWISE_URL": f"http://127.0.0.1:{free_port()}"},
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: cannot reach the flag server at http://127.0.0.1:")
    assert "Traceback" not in refused.stderr


# --- docs ---------------------------------------------------------------------------------------


def _sections(text: str) -> dict[str, str]:
    """``### `rollwise ...` `` headings and the text under each, up to the next heading."""
    parts = re.split(r"^#{2,3} (.*)$", text, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[p for p, _ in LEAVES])
def test_every_command_and_option_is_documented(path: str, command: click.Command) -> None:
    sections = _sections(DOCS.read_text())
    heading = next((t for t in sections if t.startswith(f"`{path}")), None)
    assert heading is not None, f"docs/cli.md has no section for {path}"
    body = sections[heading]
    assert "```sh" in body, f"{path}: no example"
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in body, f"{path}: {opt} is not documented"


def test_every_group_is_documented() -> None:
    text = DOCS.read_text()
    groups = [path for path, cmd in walk(main) if isinstance(cmd, click.Group)]
    for path in groups:
        assert f"`{path} " in text or f"`{path}`" in text, path
    for opt in ("--url", "--token", "ROLLWISE_URL", "ROLLWISE_TOKEN", "ROLLWISE_ENV"):
        assert opt in text, opt


def test_stored_text_never_drives_the_terminal(server: LiveServer) -> None:
    """An ESC sequence in a reason cleared the admin's screen (issue 12)."""
    api(server, "POST", "envs/staging/segments", json={**EU_SEGMENT})
    hostile = "drill \x1b[2J\x1b[H\u202egnp.exe"
    body = {**example_flag(), "description": hostile, "reason": hostile}
    api(server, "POST", "envs/staging/flags", json=body)
    for args in (
        ("audit", "--env", "staging"),
        ("flags", "get", "fraud-model", "--env", "staging"),
    ):
        out = ok(run(server, *args)).output
        assert "\x1b" not in out
        assert "\u202e" not in out
        assert "\\x1b[2J" in out
    raw = ok(run(server, "flags", "get", "fraud-model", "--env", "staging", "--json")).output
    assert "\x1b" not in raw
    assert json.loads(raw)["description"] == hostile  # --json keeps the text, escaped as JSON

"""The console's sign-in, sessions, CSRF and roles, against every route to a change.

Routes by which a browser session could change something, each tested here: the console's own
forms (flag save, kill, enable, revert, promote, plan, rollout actions, token create and
revoke, sign-out) and the JSON API under ``/api/v1`` (which must not take the cookie at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rollwise_server.testing import LiveServer, connect, live_server
from tests.server.conftest import example_flag, seed
from tests.server.console_client import ConsoleClient

FLAG = "/ui/envs/production/flags/fraud-model"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("ui-security")) as running:
        seed(running)
        yield running


def _version(server: LiveServer, key: str = "fraud-model", env: str = "production") -> int:
    response = server.session().get(f"{server.url}/api/v1/envs/{env}/flags/{key}")
    return int(response.json()["version"])


def test_pages_need_a_session(server: LiveServer) -> None:
    for path in ("/ui", "/ui/envs/production/flags", FLAG, "/ui/audit", "/ui/tokens"):
        response = requests.get(f"{server.url}{path}", allow_redirects=False, timeout=10)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/sign-in?next=")


def test_the_sign_in_page_labels_its_token_field(server: LiveServer) -> None:
    page = requests.get(f"{server.url}/ui/sign-in", timeout=10).text
    assert re.search(r'<label for="token">API token</label>', page)
    assert 'type="password"' in page


def test_the_cookie_is_httponly_samesite_strict_and_scoped(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    cookie = console.sign_in_response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS, below
    over_https = requests.post(
        f"{server.url}/ui/sign-in", data={"token": server.admin_token},
        headers={"X-Forwarded-Proto": "https"}, allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert over_https.status_code == 303
    assert "Secure" in over_https.headers["set-cookie"]


def test_a_bad_token_is_refused_and_an_sdk_token_cannot_sign_in(server: LiveServer) -> None:
    bad = requests.post(f"{server.url}/ui/sign-in", data={"token": "rw_nope"}, timeout=10)
    assert bad.status_code == 401
    assert "unknown or revoked token" in bad.text
    assert "rollwise_session" not in bad.headers.get("set-cookie", "")
    sdk = server.token("sdk", env="production")
    refused = requests.post(f"{server.url}/ui/sign-in", data={"token": sdk}, timeout=10)
    assert refused.status_code == 403
    assert "cannot sign in to the console" in refused.text


def test_sign_in_does_not_redirect_off_the_console(server: LiveServer) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/api/v1/tokens", "/\\evil"):
        response = requests.post(
            f"{server.url}/ui/sign-in", data={"token": server.admin_token, "next": target},
            allow_redirects=False, timeout=10,
        )  # fmt: skip
        assert response.headers["location"] == "/ui", target


def test_pages_send_a_csp_without_inline_script_and_have_no_inline_script(
    server: LiveServer,
) -> None:
    console = ConsoleClient(server, server.admin_token)
    for path in ("/ui/envs/production/flags", FLAG, f"{FLAG}/edit", f"{FLAG}/rollout",
                 f"{FLAG}/rollout/plan", "/ui/audit", "/ui/tokens", "/ui/sign-in",
                 "/ui/envs/production/segments", "/ui/envs/production/metrics"):  # fmt: skip
        response = console.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        for tag in re.findall(r"<script[^>]*>", response.text):
            assert "src=" in tag, (path, tag)
        assert " style=" not in response.text, path
        assert " on" not in re.sub(r"[^<]*(<[^>]*>)?", lambda m: m.group(1) or "", response.text)
        assert response.headers["cache-control"] == "no-store"


def test_the_json_api_never_takes_the_session_cookie(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    console.get("/ui/envs/production/flags")
    before = _version(server)
    api = requests.Session()
    api.cookies.set("rollwise_session", console.cookie)
    headers = {"X-CSRF-Token": console.csrf}
    assert api.get(f"{server.url}/api/v1/envs/production/flags", timeout=10).status_code == 401
    killed = api.post(
        f"{server.url}/api/v1/envs/production/flags/fraud-model/kill",
        json={"reason": "forged", "csrf": console.csrf}, headers=headers, timeout=10,
    )  # fmt: skip
    assert killed.status_code == 401
    assert _version(server) == before


def test_every_form_needs_the_csrf_token(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    other = ConsoleClient(server, server.admin_token)
    other.get("/ui/audit")
    before = _version(server)
    version = str(before)
    forms = [
        (f"{FLAG}/kill", {"reason": "x"}),
        (f"{FLAG}/enable", {"reason": "x"}),
        (f"{FLAG}/edit", {"action": "save", "version": version, "body": "{}", "reason": "x"}),
        (f"{FLAG}/revert", {"to": "1", "version": version, "reason": "x"}),
        (f"{FLAG}/promote", {"to": "staging", "reason": "x"}),
        (f"{FLAG}/rollout/plan", {"action": "save"}),
        (f"{FLAG}/rollout/rollback", {"reason": "x"}),
        ("/ui/envs/production/flags/new", {"action": "save", "key": "forged", "body": "{}"}),
        ("/ui/tokens", {"name": "forged", "role": "admin"}),
        ("/ui/tokens/tok_x/revoke", {}),
    ]
    for path, data in forms:
        for csrf in ("", "wrong", other.csrf):
            response = console.post(path, data, csrf=csrf)
            assert response.status_code == 403, (path, csrf)
            assert "CSRF" in response.text
    assert _version(server) == before
    tokens = server.session().get(f"{server.url}/api/v1/tokens").json()["tokens"]
    assert "forged" not in {t["name"] for t in tokens}
    # sign-out is a form too: without the token the session lives on
    assert console.post("/ui/sign-out", {}, csrf="").status_code == 403
    assert console.get("/ui/audit").status_code == 200


def test_a_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(server: LiveServer) -> None:
    viewer = ConsoleClient(server, server.token("viewer"))
    page = viewer.get(FLAG).text
    assert f'href="{FLAG}/edit"' not in page
    assert f'href="{FLAG}/kill"' not in page
    assert "Revert to" not in page
    assert "New flag" not in viewer.get("/ui/envs/production/flags").text
    assert 'href="/ui/tokens"' not in page
    before = _version(server)
    response = viewer.post(f"{FLAG}/kill", {"reason": "forged by a viewer"})
    assert response.status_code == 403
    assert "may not change 'production'" in response.text.replace("&#39;", "'")
    saved = viewer.post(
        f"{FLAG}/edit",
        {"action": "save", "version": str(before), "body": '{"description": "x"}'},
    )
    assert saved.status_code == 403
    assert viewer.post("/ui/tokens", {"name": "mine", "role": "admin"}).status_code == 403
    assert _version(server) == before


def test_a_token_for_some_environments_sees_only_those(server: LiveServer) -> None:
    console = ConsoleClient(server, server.token("editor", envs=["staging"]))
    assert console.get("/ui/envs/production/flags").status_code == 403
    page = console.get("/ui/envs/staging/flags").text
    assert 'value="production"' not in page
    assert console.post(f"{FLAG}/kill", {"reason": "x"}).status_code == 403


def test_sign_out_ends_the_session_on_the_server(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    cookie = console.cookie
    console.get("/ui/audit")
    assert console.post("/ui/sign-out", {}).status_code == 303
    replay = requests.get(
        f"{server.url}/ui/audit", cookies={"rollwise_session": cookie}, allow_redirects=False,
        timeout=10,
    )  # fmt: skip
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/ui/sign-in")


def _age(server: LiveServer, column: str, seconds: float) -> None:
    """Move every session's ``column`` back in time (as if that long had passed)."""
    with connect(server.db) as db:
        statement = {
            "last_seen": "UPDATE console_sessions SET last_seen = last_seen - ?",
            "created": "UPDATE console_sessions SET created = created - ?",
        }[column]
        db.execute(statement, (seconds,))


@pytest.fixture
def short_server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, console_idle_timeout=600.0, console_session_lifetime=3600.0) as s:
        yield s


def test_an_idle_session_ends(short_server: LiveServer) -> None:
    console = ConsoleClient(short_server, short_server.admin_token)
    assert console.get("/ui/audit").status_code == 200
    _age(short_server, "last_seen", 601)
    response = console.get("/ui/audit", allow_redirects=False)
    assert response.status_code == 303
    assert "expired=1" in response.headers["location"]
    assert "Your session ended" in console.get(response.headers["location"]).text


def test_a_busy_session_ends_at_its_lifetime(short_server: LiveServer) -> None:
    console = ConsoleClient(short_server, short_server.admin_token)
    _age(short_server, "created", 3601)  # still used a moment ago, but signed in long ago
    assert console.get("/ui/audit", allow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_sessions(short_server: LiveServer) -> None:
    token = short_server.token("editor", name="leaver")
    console = ConsoleClient(short_server, token)
    assert console.get("/ui/audit").status_code == 200
    tokens = short_server.session().get(f"{short_server.url}/api/v1/tokens").json()["tokens"]
    (leaver,) = [t for t in tokens if t["name"] == "leaver"]
    short_server.session().delete(f"{short_server.url}/api/v1/tokens/{leaver['id']}")
    assert console.get("/ui/audit", allow_redirects=False).status_code == 303


def test_failed_sign_ins_are_throttled(tmp_path: Path) -> None:
    with live_server(tmp_path, auth_failures_per_minute=3) as server:
        codes = [
            requests.post(f"{server.url}/ui/sign-in", data={"token": "rw_bad"}, timeout=10)
            .status_code for _ in range(5)
        ]  # fmt: skip
        assert codes[:3] == [401, 401, 401]
        assert codes[3:] == [429, 429]
        throttled = requests.post(
            f"{server.url}/ui/sign-in", data={"token": server.admin_token}, timeout=10
        )
        assert throttled.status_code == 429
        assert "Retry-After" in throttled.headers


def test_an_unknown_flag_action_is_404_and_changes_nothing(server: LiveServer) -> None:
    console = ConsoleClient(server, server.admin_token)
    before = _version(server)
    for action in ("disable", "archive", "KILL"):
        assert console.get(f"{FLAG}/{action}").status_code == 404
        assert console.post(f"{FLAG}/{action}", {"reason": "x"}).status_code == 404
    assert _version(server) == before


def test_forms_from_another_site_are_refused_sign_in_included(server: LiveServer) -> None:
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for headers in (evil, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        login = requests.post(
            f"{server.url}/ui/sign-in", data={"token": server.admin_token}, headers=headers,
            allow_redirects=False, timeout=10,
        )  # fmt: skip
        assert login.status_code == 403, headers
        assert "rollwise_session" not in login.headers.get("set-cookie", "")
    console = ConsoleClient(server, server.admin_token)
    console.get("/ui/audit")
    before = _version(server)
    forged = console.http.post(
        f"{server.url}{FLAG}/kill", data={"csrf": console.csrf, "reason": "x"}, headers=evil,
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert forged.status_code == 403
    assert _version(server) == before
    same = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    ok = requests.post(
        f"{server.url}/ui/sign-in", data={"token": server.admin_token}, headers=same,
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert ok.status_code == 303


def test_text_from_a_flag_is_escaped(server: LiveServer) -> None:
    admin = server.session()
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    body = {k: v for k, v in example_flag().items() if k != "key"}
    admin.post(
        f"{server.url}/api/v1/envs/staging/flags",
        json={"key": "xss", **body, "description": payload, "reason": payload},
    ).raise_for_status()
    console = ConsoleClient(server, server.admin_token)
    for path in ("/ui/envs/staging/flags", "/ui/envs/staging/flags/xss", "/ui/audit"):
        page = console.get(path).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path

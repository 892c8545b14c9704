"""A browser-less client of the web console for tests: it signs in with a token, keeps the
session cookie, and sends each form with the CSRF token of the page it came from."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import requests

from rollwise_server.testing import LiveServer

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleClient:
    def __init__(self, server: LiveServer, token: str) -> None:
        self.server = server
        self.http = requests.Session()
        response = self.http.post(
            f"{server.url}/ui/sign-in", data={"token": token, "next": "/ui"},
            allow_redirects=False, timeout=10,
        )  # fmt: skip
        assert response.status_code == 303, response.text
        self.sign_in_response = response
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        response = self.http.get(f"{self.server.url}{path}", timeout=10, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]], *, csrf: str | None = None
    ) -> requests.Response:
        if not self.csrf:
            self.get("/ui/audit")
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        pairs.append(("csrf", self.csrf if csrf is None else csrf))
        response = self.http.post(
            f"{self.server.url}{path}", data=pairs, allow_redirects=False, timeout=20
        )
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    @property
    def cookie(self) -> str:
        return str(self.http.cookies.get("rollwise_session"))


class _Fields(HTMLParser):
    """The successful controls of the page's forms, as a browser would send them (text
    inputs, checked boxes, textareas, selected options; no buttons)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[list[tuple[str, str]]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append([])
        elif not self.forms:
            return
        elif tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.forms[-1].append((a["name"], a.get("value") or "on"))
            else:
                self.forms[-1].append((a["name"], a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], []
        elif tag == "select" and a.get("name"):
            self._select, self._first_option, self._selected = a["name"], None, False
        elif tag == "option" and self._select is not None:
            value = a.get("value")
            if self._first_option is None:
                self._first_option = value
            if "selected" in a and not self._selected:
                self.forms[-1].append((self._select, value or ""))
                self._selected = True

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None:
            self.forms[-1].append((self._textarea, "".join(self._text)))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            if not self._selected and self._first_option is not None:
                self.forms[-1].append((self._select, self._first_option))
            self._select = None


def form_fields(page: str, having: str) -> list[tuple[str, str]]:
    """The fields the form of ``page`` with a field ``having`` would send (no CSRF token)."""
    parser = _Fields()
    parser.feed(page)
    (form,) = [f for f in parser.forms if any(name == having for name, _ in f)]
    return [(k, v) for k, v in form if k != "csrf"]

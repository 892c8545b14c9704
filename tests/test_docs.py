"""Documentation cannot drift: every setting and every API route appears in docs/server.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollwise_server.app import ROUTES
from rollwise_server.settings import SETTINGS, Settings

SERVER_DOC = (Path(__file__).resolve().parents[1] / "docs" / "server.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting: object) -> None:
    assert f"`{setting.env_var}`" in SERVER_DOC  # type: ignore[attr-defined]


def test_settings_declaration_matches_the_class() -> None:
    assert [s.name for s in SETTINGS] == [a.name for a in Settings.__attrs_attrs__]
    defaults = Settings()
    for setting in SETTINGS:
        assert getattr(defaults, setting.name) == setting.default


@pytest.mark.parametrize(
    "route",
    [
        (method, route.path)
        for route in ROUTES
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ],
    ids=str,
)
def test_every_route_is_documented(route: tuple[str, str]) -> None:
    method, path = route
    assert f"`{method} {path}`" in SERVER_DOC

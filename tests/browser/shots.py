"""Screenshots for the documentation, taken by the browser tests so that they match the code.

They go to ``docs/console/`` (committed; the docs embed them). Animations are stopped and the
caret hidden, so that a screenshot changes only when the console does.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page

__all__ = ["SHOTS", "screenshot"]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "console"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page (not only the viewport) as ``docs/console/<name>.png``."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r}: a screenshot name is lowercase letters, digits, - and _")
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    return path

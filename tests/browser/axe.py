"""Accessibility checks with axe-core (vendored: ``vendor/README.md``), run inside the page.

The console's Content-Security-Policy forbids inline scripts, so axe cannot be added as a
``<script>`` tag; ``page.evaluate`` runs its source through the DevTools protocol, which the
page's CSP does not govern. Only serious and critical violations fail a test: the moderate
ones are advice (landmarks, heading order) rather than barriers.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

__all__ = ["AXE_SOURCE", "assert_accessible", "serious_violations"]

AXE_SOURCE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SERIOUS = frozenset({"serious", "critical"})

# Only what a failure message needs crosses back to Python: axe's full results are large.
_RUN = """async () => {
    const results = await window.axe.run(document, {resultTypes: ['violations']});
    return results.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        targets: v.nodes.map((n) => n.target.flat(Infinity).join(' >>> ')),
    }));
}"""


@functools.cache
def _source() -> str:
    return AXE_SOURCE.read_text(encoding="utf-8")


def _load(page: Page) -> None:
    """Put ``window.axe`` in the page, once per document."""
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    page.evaluate(_source())
    if not page.evaluate("() => typeof window.axe === 'object' && typeof axe.run === 'function'"):
        raise RuntimeError(f"axe-core ({AXE_SOURCE}) did not define window.axe in {page.url}")


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical axe violations of the page as it is now.

    Each is ``{"id", "impact", "help", "helpUrl", "targets"}``; ``targets`` holds one CSS
    selector per offending node (`` >>> `` joins the steps into iframes and shadow roots)."""
    _load(page)
    violations: list[dict[str, Any]] = page.evaluate(_RUN)
    return [v for v in violations if v["impact"] in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    """One paragraph per violation: rule, impact, what to fix, and where."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        lines.extend(f"    {target}" for target in v["targets"])
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """Fail with the serious and critical violations of the page, if it has any."""
    violations = serious_violations(page)
    if violations:
        raise AssertionError(
            f"{len(violations)} serious accessibility violation(s) on {page.url}:\n"
            + describe(violations)
        )

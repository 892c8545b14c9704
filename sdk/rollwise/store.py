"""The client's current compiled rules, replaced by one atomic reference assignment."""

from __future__ import annotations

import threading

from rollwise.compiler import CompiledRules

__all__ = ["RulesStore"]


class RulesStore:
    """Holds the compiled rules in use; ``compiled`` is rebound, never mutated.

    A reader takes ``compiled`` once and sees either the whole old snapshot or the whole new one.
    """

    def __init__(self, compiled: CompiledRules | None = None) -> None:
        self._swap_lock = threading.Lock()
        self.compiled = compiled

    def swap(self, compiled: CompiledRules) -> CompiledRules | None:
        """Install ``compiled``; returns the snapshot it replaces."""
        with self._swap_lock:
            old = self.compiled
            self.compiled = compiled
            return old

    @property
    def revision(self) -> int | None:
        return None if self.compiled is None else self.compiled.document.revision

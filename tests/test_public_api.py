"""The public API: ``__all__`` lists exactly the public names, and each is documented."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import rollwise

DOCS = Path(__file__).resolve().parents[1] / "docs"
PUBLIC_MODULES = [
    "rollwise",
    "rollwise.aio",
    "rollwise.assignment",
    "rollwise.bucketing",
    "rollwise.client",
    "rollwise.durations",
    "rollwise.errors",
    "rollwise.events",
    "rollwise.rules",
    "rollwise.spec",
    "rollwise.testing",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == name
    }
    assert set(module.__all__) >= public, (
        f"{name}: missing from __all__: {public - set(module.__all__)}"
    )
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr}, which does not exist"


def test_root_reexports_are_the_same_objects() -> None:
    for attr in rollwise.__all__:
        value = getattr(rollwise, attr)
        home = getattr(value, "__module__", "rollwise")
        if home.startswith("rollwise.") and attr != "__version__":
            assert getattr(importlib.import_module(home), attr) is value


def test_every_root_name_is_documented() -> None:
    text = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    missing = [name for name in rollwise.__all__ if name != "__version__" and name not in text]
    assert missing == []

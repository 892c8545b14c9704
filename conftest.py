"""Runs the Python examples in the README and docs/ as tests (Sybil), from the repository root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent


def _setup(namespace: dict[str, Any]) -> None:
    namespace["__cwd__"] = os.getcwd()
    os.chdir(ROOT)


def _teardown(namespace: dict[str, Any]) -> None:
    os.chdir(namespace["__cwd__"])


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()

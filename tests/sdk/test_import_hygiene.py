"""``import rollwise`` imports no server or analysis dependency (the ruff ban, at run time)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = [
    "starlette",
    "uvicorn",
    "sqlite_utils",
    "psycopg",
    "cattrs",
    "statsmodels",
    "pandas",
    "numpy",
    "scipy",
    "matplotlib",
    "jinja2",
    "httpx",
    "rollwise_server",
]


def imported_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(sorted(set({FORBIDDEN!r}) & set(sys.modules)))"
    output = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return eval(output)  # noqa: S307 - our own subprocess printing a list literal


def test_import_rollwise_loads_no_heavy_dependency() -> None:
    assert imported_after("import rollwise") == []


def test_evaluating_loads_no_heavy_dependency() -> None:
    statement = (
        "import rollwise, rollwise.testing; "
        "c = rollwise.Client.offline('docs/examples/fraud-model.json'); "
        "c.variant('fraud-model', {'user_id': 'u1'})"
    )
    assert imported_after(statement) == []


def test_the_check_itself_can_fail() -> None:
    assert imported_after("import json, sqlite3; import unittest.mock") == []
    assert "scipy" in imported_after("import scipy")

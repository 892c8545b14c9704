"""The ``rollwise`` command is the server package's own entry point (issue 13, item 4): the SDK
never imports the server, and without the server extra the command says what to install."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_script_is_declared_by_the_server_package() -> None:
    (script,) = [
        e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "rollwise"
    ]
    assert script.value == "rollwise_server.console:main"
    assert not (ROOT / "sdk" / "rollwise" / "_cli.py").exists()


def test_the_command_runs_the_server_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from rollwise_server.console import main; main()", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert "flags" in done.stdout


def test_without_the_server_extra_the_command_says_what_to_install() -> None:
    """``click`` made unimportable, as in an environment with the SDK alone (a fault that
    would otherwise need a second virtual environment)."""
    code = (
        "import sys; sys.modules['click'] = None\n"
        "from rollwise_server.console import main; main()\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, this test's own code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "needs the server extra (click is not installed)" in done.stderr
    assert "pip install 'rollwise[server]'" in done.stderr
    assert "Traceback" not in done.stderr

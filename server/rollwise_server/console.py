"""The ``rollwise`` console script: the server's CLI, or how to install it.

Declared by the server package (``[project.scripts]``) so that the SDK never imports the server.
It imports nothing but the standard library before the CLI, so that a plain ``pip install
rollwise`` (the SDK alone: no click, no Starlette) gets a clear message, not a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    try:
        from rollwise_server.cli import main as cli
    except ImportError as exc:
        missing = exc.name or "a dependency"
        sys.stderr.write(
            f"the rollwise command needs the server extra ({missing} is not installed):\n"
            "    pip install 'rollwise[server]'\n"
        )
        raise SystemExit(1) from None
    cli()

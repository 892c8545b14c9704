"""The ``rollwise`` console script: the server's CLI, or a hint to install it."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    try:
        from rollwise_server.cli import main as server_main  # noqa: TID251 - the optional server CLI
    except ImportError as exc:
        sys.stderr.write(
            f"the rollwise command needs the server extra ({exc.name} is missing):\n"
            "    pip install 'rollwise[server]'\n"
        )
        raise SystemExit(1) from None
    server_main()

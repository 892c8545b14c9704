"""The ``rollwise`` command: run the server, bootstrap tokens, manage flags over the REST API."""

from __future__ import annotations

import sys

import click

from rollwise._version import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollwise")
def main() -> None:
    """rollwise: roll out ML model versions safely."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--db", envvar="ROLLWISE_DB", default=None, help="Database URL (ROLLWISE_DB).")
@click.option("--log-level", default="info", show_default=True, help="uvicorn log level.")
def serve(host: str, port: int, db: str | None, log_level: str) -> None:
    """Run the flag server (Starlette on uvicorn)."""
    import uvicorn

    from rollwise_server.app import create_app
    from rollwise_server.settings import Settings

    settings = Settings.from_env(db=db)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


@main.group()
def tokens() -> None:
    """API tokens: create, list, revoke."""


@tokens.command("create")
@click.option(
    "--role", required=True, type=click.Choice(["sdk", "viewer", "editor", "approver", "admin"])
)
@click.option("--name", default=None, help="Who or what uses it (the audit actor).")
@click.option("--env", "env", default=None, help="The environment of an sdk token.")
@click.option("--db", default=None, help="Create directly in this database (bootstrap).")
def tokens_create(role: str, name: str | None, env: str | None, db: str | None) -> None:
    """Create a token and print its secret once."""
    if db is None:
        raise click.UsageError("--db is required (the REST form arrives with the admin CLI)")
    from rollwise_server.auth import hash_secret, new_secret
    from rollwise_server.storage import open_store

    store = open_store(db)
    try:
        secret = new_secret()
        record = store.create_token(
            name=name or f"{role}-bootstrap",
            role=role,
            env=env,
            secret_hash=hash_secret(secret),
            actor="cli (direct database access)",
        )
    finally:
        store.close()
    click.echo(secret)
    click.echo(
        f"created {record.role} token {record.id} ({record.name}); the secret is shown once",
        err=True,
    )


if __name__ == "__main__":
    sys.exit(main())

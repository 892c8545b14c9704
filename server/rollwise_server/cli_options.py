"""Options that many ``rollwise`` commands share, said once."""

from __future__ import annotations

import click

__all__ = ["env_option", "json_option", "reason_option"]

env_option = click.option(
    "--env",
    "env",
    envvar="ROLLWISE_ENV",
    required=True,
    show_envvar=True,
    help="The environment (required: --env or ROLLWISE_ENV; there is no default).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON answer instead of a table."
)
reason_option = click.option("--reason", default=None, help="Why: kept in the history and audit.")

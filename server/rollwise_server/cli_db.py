"""``rollwise db``: commands on a database itself, run without a server.

``rollwise db copy --from sqlite:///./rollwise.db --to postgresql://...`` moves an installation
into a new database and checks the row counts of every table (``storage/copy.py``).
"""

from __future__ import annotations

import click

from rollwise.errors import RollwiseError
from rollwise_server.cli_options import json_option
from rollwise_server.cli_output import echo_json, note, table

__all__ = ["db"]


@click.group()
def db() -> None:
    """The database itself: copy an installation into a new database."""


@db.command("copy")
@click.option("--from", "source", required=True, help="The database to copy: a --db URL.")
@click.option(
    "--to", "target", required=True, help="A new database to copy into (made if need be)."
)
@json_option
def db_copy(source: str, target: str, as_json: bool) -> None:
    """Copy flags, segments, metrics, their history, the audit log, tokens, rollouts, webhook
    deliveries, console sessions and events into a new database, then count each table's rows
    on both sides.

    The source is read as of one moment (what a running server writes later is not copied);
    the target is written in one transaction (a failed copy leaves it empty). Exit status 1
    if a table's counts differ.
    """
    from rollwise_server.storage import database_errors, open_store
    from rollwise_server.storage.copy import copy_database

    if source == target:
        raise click.UsageError("--from and --to are the same database")
    try:
        reading = open_store(source)
        try:
            writing = open_store(target)
            try:
                copied = copy_database(reading, writing)
            finally:
                writing.close()
        finally:
            reading.close()
    except database_errors(RollwiseError, OSError) as exc:
        raise click.ClickException(f"cannot copy {source} to {target}: {exc}") from None
    if as_json:
        echo_json([{"table": c.table, "source": c.source, "target": c.target} for c in copied])
    else:
        table(
            ["TABLE", "SOURCE", "TARGET", ""],
            [[c.table, c.source, c.target, "" if c.complete else "DIFFERS"] for c in copied],
        )
    different = [c.table for c in copied if not c.complete]
    if different:
        raise click.ClickException(f"the counts of {', '.join(different)} differ")
    if not as_json:
        total = sum(c.target for c in copied)
        note(f"copied {total} rows in {len(copied)} tables; every count matches")

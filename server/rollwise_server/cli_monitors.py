"""``rollwise monitors``: put, list, show, acknowledge and delete a flag's monitors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import click

from rollwise_server.cli_options import env_option, json_option, reason_option
from rollwise_server.cli_output import echo, echo_json, fields, note, table, ts

__all__ = ["monitors"]


@click.group()
def monitors() -> None:
    """Monitors of a flag after its rollout: put, list, status, ack, delete.

    Each takes --env (ROLLWISE_ENV; required) and --json.
    """


def _when(value: Any) -> str | None:
    from datetime import UTC, datetime

    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@monitors.command("put")
@click.argument("key")
@click.argument("name")
@click.option("-f", "--file", "file", type=click.File("r"), required=True,
              help="The monitor's spec as JSON (- reads stdin): docs/monitors.md.")  # fmt: skip
@env_option
@reason_option
@json_option
@click.pass_obj
def monitors_put(
    remote: Any, key: str, name: str, file: Any, env: str, reason: str | None, as_json: bool
) -> None:
    """Create or replace a monitor; the server names every problem of the spec."""
    try:
        spec = json.load(file)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--file") from None
    if not isinstance(spec, dict):
        raise click.BadParameter("the spec must be a JSON object", param_hint="--file")
    body = {**spec, **({"reason": reason} if reason is not None else {})}
    data = remote.client().request("PUT", _path(env, key, name), body=body)
    if as_json:
        echo_json(data)
        return
    note(f"monitor {name} of {key} in {env} saved: version {data.get('version')}")


def _path(env: str, key: str, name: str | None = None, *rest: str) -> str:
    """``envs/{env}/flags/{key}/monitors[/{name}[/...]]``, each part quoted."""
    parts = ("envs", env, "flags", key, "monitors", *((name,) if name else ()), *rest)
    return "/".join(quote(part, safe="") for part in parts)


@monitors.command("list")
@click.argument("key")
@env_option
@json_option
@click.pass_obj
def monitors_list(remote: Any, key: str, env: str, as_json: bool) -> None:
    """List a flag's monitors with their status and last check."""
    data = remote.client().request("GET", _path(env, key))
    if as_json:
        echo_json(data)
        return
    table(
        ["NAME", "STATUS", "VARIANT", "CHECKS", "LAST_CHECK", "ALERTS"],
        ([m["name"], m["state"].get("status"), m["spec"].get("variant"),
          m["state"].get("checks"), _when(m["state"].get("last_check_at")),
          len(m["state"].get("alerts") or [])] for m in data.get("monitors") or []),
    )  # fmt: skip


def _alert_line(alert: Mapping[str, Any]) -> str:
    effect = alert.get("effect")
    shown = "" if effect is None else f" effect {effect:+.4g}"
    return f"{alert.get('at')} {alert.get('stream')}{shown} (score {alert.get('score'):.1f})"


@monitors.command("status")
@click.argument("key")
@click.argument("name")
@env_option
@json_option
@click.pass_obj
def monitors_status(remote: Any, key: str, name: str, env: str, as_json: bool) -> None:
    """Show a monitor: status, baseline, each stream's statistic, and its alerts."""
    data = remote.client().request("GET", _path(env, key, name))
    if as_json:
        echo_json(data)
        return
    state, spec = data.get("state") or {}, data.get("spec") or {}
    fields([
        ("monitor", f"{name} of {key} in {env} (version {data.get('version')})"),
        ("status", state.get("status")),
        ("variant", spec.get("variant")),
        ("baseline", json.dumps(state.get("baseline") or spec.get("baseline"))),
        ("checks", state.get("checks")),
        ("last check", _when(state.get("last_check_at"))),
        ("threshold", state.get("threshold")),
        ("action", spec.get("action")),
        ("alerts", [_alert_line(a) for a in reversed(state.get("alerts") or [])]),
        ("updated", ts(data.get("updated_at"))),
    ])  # fmt: skip
    streams = state.get("streams") or {}
    if streams:
        echo("")
        table(
            ["STREAM", "STATISTIC", "SCORE", "UNITS"],
            ([n, f"{s.get('statistic', 0):.2f}",
              None if s.get("z") is None else f"{s['z']:+.2f}", s.get("units")]
             for n, s in sorted(streams.items())),
        )  # fmt: skip


@monitors.command("ack")
@click.argument("key")
@click.argument("name")
@env_option
@reason_option
@json_option
@click.pass_obj
def monitors_ack(
    remote: Any, key: str, name: str, env: str, reason: str | None, as_json: bool
) -> None:
    """Acknowledge a monitor's alert: its status is ok again (the alerts stay listed)."""
    body = {"reason": reason} if reason is not None else {}
    data = remote.client().request("POST", _path(env, key, name, "acknowledge"), body=body)
    if as_json:
        echo_json(data)
        return
    note(f"monitor {name} of {key} in {env} acknowledged")


@monitors.command("delete")
@click.argument("key")
@click.argument("name")
@env_option
@reason_option
@json_option
@click.pass_obj
def monitors_delete(
    remote: Any, key: str, name: str, env: str, reason: str | None, as_json: bool
) -> None:
    """Delete a monitor (audited)."""
    remote.client().request("DELETE", _path(env, key, name), params={"reason": reason})
    if as_json:
        echo_json({"deleted": name})
        return
    note(f"monitor {name} of {key} in {env} deleted")

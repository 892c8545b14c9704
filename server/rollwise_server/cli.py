"""The ``rollwise`` command: run the server, bootstrap tokens, manage flags over the REST API.

Every command but ``serve`` and ``tokens create --db`` talks to a running server through
``rollwise_server.api_client`` (``ROLLWISE_URL``, ``ROLLWISE_TOKEN``). Readable tables by default,
the API's JSON with ``--json``. Expected failures (an error answer, an unreachable server) print
a message to stderr and exit 1; usage mistakes (a missing URL or token, a file that is not a
flag) exit 2; neither prints a traceback.

Importing this module stays cheap: uvicorn, the Starlette application and the storage layer are
imported by the commands that need them (``serve``, ``tokens create --db``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import click

from rollwise._version import __version__
from rollwise.durations import DurationError, parse_duration
from rollwise.errors import ConfigurationError, RollwiseError, TransportError
from rollwise.rules import FlagType
from rollwise_server.api_client import (
    ApiClient,
    ApiResponseError,
    Kind,
    ServerUnreachableError,
    strip_meta,
)
from rollwise_server.cli_db import db
from rollwise_server.cli_monitors import monitors
from rollwise_server.cli_options import env_option, json_option, reason_option
from rollwise_server.cli_output import echo, echo_json, fields, note, table, ts, visible
from rollwise_server.cli_profile import Profile, profile_path
from rollwise_server.cli_promotion import Difference, differences
from rollwise_server.cli_rollouts import results, rollouts

__all__ = ["main"]

Json = dict[str, Any]
ROLES = ("sdk", "viewer", "editor", "approver", "admin")


# --- the connection to the server --------------------------------------------------------------


class Remote:
    """The ``--url``/``--token`` of the invocation; the API client is built on first use."""

    def __init__(self, url: str | None, token: str | None) -> None:
        self.url = url
        self.token = token
        self._client: ApiClient | None = None

    def client(self) -> ApiClient:
        if self._client is None:
            if not self.url:
                raise click.UsageError(
                    "no server URL: set ROLLWISE_URL or pass --url (e.g. http://127.0.0.1:8000)"
                )
            if not self.url.startswith(("http://", "https://")):
                raise click.UsageError(
                    f"ROLLWISE_URL / --url must start with http:// or https://, not {self.url!r}"
                )
            if not self.token:
                raise click.UsageError(
                    "no API token: set ROLLWISE_TOKEN or pass --token (the first admin token "
                    "comes from `rollwise tokens create --role admin --db ...`)"
                )
            self._client = ApiClient(self.url, self.token)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _failure(exc: TransportError, hint: Sequence[str] = ()) -> click.ClickException:
    """The message for an error answer or an unreachable server (shown as ``Error: ...``)."""
    lines: list[str] = []
    if isinstance(exc, ApiResponseError):
        detail, problems = exc.detail, exc.problems
        summary = "; ".join(str(p) for p in problems)
        if summary and detail.endswith(f": {summary}"):  # the problems follow, one a line
            detail = detail.removesuffix(f": {summary}")
        if len(problems) == 1 and problems[0].path and detail.startswith(f"{problems[0].path}: "):
            problems = ()  # the detail says it already
        lines.append(f"{detail} (HTTP {exc.status}){':' if problems else ''}")
        lines += [f"  {p}" for p in problems]
        if exc.status == 401:
            lines.append("  check the token in ROLLWISE_TOKEN / --token")
    elif isinstance(exc, ServerUnreachableError):
        lines += [str(exc), "  is the server running? the URL comes from ROLLWISE_URL or --url"]
    else:
        lines.append(str(exc))
    lines += [f"  {h}" for h in hint]
    return click.ClickException(visible("\n".join(lines)))


class _Main(click.Group):
    """The top group: turns API and connection errors into a message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TransportError as exc:
            raise _failure(exc) from None


# --- output -------------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _condition(condition: Mapping[str, Any]) -> str:
    if "segment" in condition:
        text = f"segment {condition['segment']}"
    else:
        if "values" in condition:
            operand = "[" + ", ".join(_scalar(v) for v in condition["values"]) + "]"
        else:
            operand = _scalar(condition.get("value"))
        text = f"{condition.get('attribute')} {condition.get('operator')} {operand}"
        if condition.get("case_insensitive"):
            text += " (any case)"
    return f"NOT {text}" if condition.get("negate") else text


def _serve(serve: Mapping[str, Any]) -> str:
    split = serve.get("split")
    if not split:
        return str(serve.get("variant"))
    total = sum(arm["weight"] for arm in split) or 1
    arms = ", ".join(f"{arm['variant']} {100 * arm['weight'] / total:.4g}%" for arm in split)
    return f"split by {serve.get('bucket_by', 'user_id')}: {arms}"


_OPS = {"add": "+", "remove": "-", "replace": "~", "move": ">", "copy": "=", "test": "?"}


_MISSING = object()


def _at(body: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901) in ``body``, or ``_MISSING``."""
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(body, dict) and token in body:
            body = body[token]
        elif isinstance(body, list) and token.isdigit() and int(token) < len(body):
            body = body[int(token)]
        else:
            return _MISSING
    return body


def _shown(value: Any, limit: int = 24) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _change(op: Mapping[str, Any], before: Any) -> str:
    """One operation with its values: ``~/enabled true->false``, ``+/rules/2 {...}``,
    ``-/rules/1``."""
    path = str(op.get("path", ""))
    text = f"{_OPS.get(str(op.get('op', '')), '?')}{path}"
    if op.get("op") == "replace":
        old = _at(before, path) if before is not None else _MISSING
        new = _shown(op.get("value"))
        return f"{text} {new}" if old is _MISSING else f"{text} {_shown(old)}->{new}"
    if op.get("op") == "add":
        return f"{text} {_shown(op.get('value'))}"
    return text


def _changes(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> str:
    """The diff with old and new values: ``~/enabled true->false +/rules/2 {...}`` (+ added,
    - removed, ~ replaced: the old value from the version before, when the page has it)."""
    if previous is None and entry.get("version") == 1:
        return "(new)"
    if entry.get("archived"):
        return "(archived)"
    before = None if previous is None else previous.get("body")
    ops = [_change(op, before) for op in entry["diff"]]
    text, shown = "(restored) " if previous is not None and previous.get("archived") else "", 0
    if not ops:
        return text.strip() or "(no change)"
    for op in ops:
        if len(text) + len(op) > 100 and shown:
            break
        text, shown = f"{text}{op}; ", shown + 1
    rest = len(ops) - shown
    return text.strip().removesuffix(";") + (f" (+{rest} more)" if rest else "")


# --- options shared by many commands ------------------------------------------------------------


def _moment(text: str, now: datetime, sign: int) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration from ``now`` in the
    one grammar (``rollwise.durations``: 30m, 24h, 7d, 2w, 1h30m; with a unit, since a bare
    number could be a date): back for ``sign`` -1, forward for +1."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        seconds = parse_duration(text, "span", bare_seconds=False)
    except DurationError as exc:
        iso = "an ISO date/time (such as 2026-11-01 or 2026-11-01T09:30)"
        raise click.BadParameter(
            f"{exc.shown} is neither {iso} nor a duration: {exc.hint}"
            if exc.malformed
            else f"{exc.shown} is not {iso}, and as a duration it {exc.reason}"
        ) from None
    try:
        return now + sign * timedelta(seconds=seconds)
    except OverflowError:
        raise click.BadParameter(f"{text!r} is out of range") from None


def _iso(moment: datetime) -> str:
    """As the server writes its timestamps (UTC, microseconds), so that they compare as text."""
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):
        raise click.BadParameter(f"{moment.isoformat()} is out of range") from None


def _instant(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An ISO date or time or a span back from now (24h, 7d)."""
    if value is None:
        return None
    return _iso(_moment(value.strip(), datetime.now(UTC), -1))


def _expiry(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An RFC 3339 time or a span forward from now (12h, 30d); it must be in the future."""
    if value is None:
        return None
    now = datetime.now(UTC)
    moment = _moment(value.strip(), now, +1)
    if moment <= now:
        raise click.BadParameter(f"{value.strip()!r} is not in the future")
    return _iso(moment)


def _env_list(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """``staging,production`` as ``("staging", "production")``."""
    if value is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise click.BadParameter("name at least one environment, e.g. staging,production")
    return names


# --- the group ----------------------------------------------------------------------------------


@click.group("rollwise", cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollwise")
@click.option(
    "--url",
    envvar="ROLLWISE_URL",
    show_envvar=True,
    default=None,
    help="The flag server, e.g. http://127.0.0.1:8000.",
)
@click.option(
    "--token",
    envvar="ROLLWISE_TOKEN",
    show_envvar=True,
    default=None,
    help="An API token (prefer the variable: options show up in the process list).",
)
@click.pass_context
def main(ctx: click.Context, url: str | None, token: str | None) -> None:
    """rollwise: roll out ML model versions safely."""
    try:
        profile = Profile.load()
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"cannot read the profile: {exc}") from None
    remote = Remote(url or profile.url, token or profile.token)
    ctx.obj = remote
    ctx.call_on_close(remote.close)
    if profile.env:  # the default of every --env (ROLLWISE_ENV and the option still win)
        ctx.default_map = _env_defaults(ctx.command, profile.env)


def _env_defaults(command: click.Command, env: str) -> dict[str, Any]:
    """A ``default_map`` that gives ``env`` to every required ``--env`` of ``command``'s tree
    (not to the optional filters, such as ``audit --env``)."""
    if isinstance(command, click.Group):
        return {name: _env_defaults(sub, env) for name, sub in command.commands.items()}
    wanted = any(p.name == "env" and p.required for p in command.params)
    return {"env": env} if wanted else {}


@main.command()
@click.option(
    "--url", "login_url", required=True, help="The flag server, e.g. https://flags.example.com."
)
@click.option(
    "--env", "login_env", default=None, help="The environment commands act in by default."
)
@click.option(
    "--token", "login_token", prompt="API token", hide_input=True,
    help="The token (asked for without echo if not given; prefer that).",
)  # fmt: skip
@json_option
def login(login_url: str, login_env: str | None, login_token: str, as_json: bool) -> None:
    """Remember a server, a token and an environment in your profile (a user-only file).

    The token is checked against the server first. ROLLWISE_URL, ROLLWISE_TOKEN, ROLLWISE_ENV
    and the options still win over the profile.
    """
    remote = Remote(login_url, login_token.strip())
    try:
        known = [e["key"] for e in remote.client().environments().get("environments") or []]
    finally:
        remote.close()
    if login_env is not None and login_env not in known:
        raise click.UsageError(f"no environment {login_env!r} (there are: {', '.join(known)})")
    path = Profile(login_url, login_token.strip(), login_env).save()
    if as_json:
        echo_json({"url": login_url, "env": login_env, "profile": str(path)})
        return
    where = f", environment {login_env}" if login_env else ""
    echo(f"logged in to {login_url}{where}; profile written to {path} (only you can read it)")


@main.command()
@json_option
def logout(as_json: bool) -> None:
    """Forget the profile that login wrote."""
    path = profile_path()
    removed = path.exists()
    if removed:
        path.unlink()
    if as_json:
        echo_json({"profile": str(path), "removed": removed})
    elif removed:
        echo(f"removed {path}")
    else:
        note(f"no profile at {path}")


@main.command()
@click.option(
    "--host",
    envvar="ROLLWISE_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (ROLLWISE_HOST).",
)
@click.option(
    "--port",
    envvar="ROLLWISE_PORT",
    default=8000,
    show_default=True,
    type=int,
    help="Port, 0 for any free port (ROLLWISE_PORT).",
)
@click.option("--db", envvar="ROLLWISE_DB", default=None, help="Database URL (ROLLWISE_DB).")
@click.option(
    "--log-level",
    envvar="ROLLWISE_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"], case_sensitive=False),
    help="Log level (ROLLWISE_LOG_LEVEL).",
)
@click.option(
    "--log-format",
    envvar="ROLLWISE_LOG_FORMAT",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one object per line (ROLLWISE_LOG_FORMAT).",
)
def serve(host: str, port: int, db: str | None, log_level: str, log_format: str) -> None:
    """Run the flag server (Starlette on uvicorn)."""
    import uvicorn

    from rollwise_server.app import create_app
    from rollwise_server.logs import log_config
    from rollwise_server.settings import Settings

    try:
        settings = Settings.from_env(db=db)
    except ConfigurationError as exc:  # e.g. webhook URLs without a valid secret: do not start
        raise click.ClickException(str(exc)) from None
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level=log_level.lower(),
        log_config=log_config(log_level, "json" if log_format == "json" else "text"),
        access_log=False,  # rollwise.access logs failures and a sample (access.py)
    )  # fmt: skip


# --- flags, segments and metrics ---------------------------------------------------------------


def _read_body(file: Any, kind: Kind) -> Json:
    text = file.read()
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{file.name} is not valid JSON: {exc}", param_hint="'-f'"
        ) from None
    if not isinstance(body, dict):
        raise click.BadParameter(f"{file.name}: must hold one {kind} object", param_hint="'-f'")
    if not isinstance(body.get("key"), str):
        raise click.BadParameter(f'{file.name}: the {kind} needs its "key"', param_hint="'-f'")
    return body


def _flag_rows(flags: Iterable[Mapping[str, Any]], archived: bool) -> list[list[Any]]:
    rows = []
    for flag in flags:
        row = [
            flag["key"],
            flag.get("version"),
            flag.get("enabled"),
            ",".join(flag.get("variants") or {}),
            len(flag.get("rules") or []),
            flag.get("updated_by"),
            ts(flag.get("updated_at")),
        ]
        rows.append([*row, flag.get("archived")] if archived else row)
    return rows


_FLAG_HEADERS = ["KEY", "VERSION", "ENABLED", "VARIANTS", "RULES", "UPDATED_BY", "UPDATED_AT"]
_SEGMENT_HEADERS = ["KEY", "VERSION", "CONDITIONS", "DESCRIPTION", "UPDATED_BY", "UPDATED_AT"]


def _segment_rows(segments: Iterable[Mapping[str, Any]], archived: bool) -> list[list[Any]]:
    rows = []
    for segment in segments:
        row = [
            segment["key"],
            segment.get("version"),
            len(segment.get("conditions") or []),
            segment.get("description"),
            segment.get("updated_by"),
            ts(segment.get("updated_at")),
        ]
        rows.append([*row, segment.get("archived")] if archived else row)
    return rows


_METRIC_HEADERS = [
    "KEY", "VERSION", "KIND", "DIRECTION", "UNIT", "OWNER", "UPDATED_BY", "UPDATED_AT",
]  # fmt: skip


def _metric_rows(metrics: Iterable[Mapping[str, Any]], archived: bool) -> list[list[Any]]:
    rows = []
    for metric in metrics:
        row = [
            metric["key"],
            metric.get("version"),
            metric.get("kind"),
            metric.get("direction"),
            metric.get("unit") or None,
            metric.get("owner") or None,
            metric.get("updated_by"),
            ts(metric.get("updated_at")),
        ]
        rows.append([*row, metric.get("archived")] if archived else row)
    return rows


def _show_flag(flag: Mapping[str, Any], env: str) -> None:
    variants = [
        name
        + ("" if not isinstance(v, dict) or "value" not in v else
           f" = {json.dumps(v['value'], ensure_ascii=False)}")
        + ("" if not isinstance(v, dict) or v.get("payload") is None else
           f"  {json.dumps(v['payload'], ensure_ascii=False)}")
        for name, v in (flag.get("variants") or {}).items()
    ]  # fmt: skip
    schedule = flag.get("schedule")
    window = None
    if isinstance(schedule, dict):
        window = f"{schedule.get('start') or '(now)'} -> {schedule.get('end') or '(open)'}"
    fields(
        [
            ("flag", flag["key"]),
            ("environment", env),
            ("version", flag.get("version")),
            ("enabled", flag.get("enabled")),
            ("archived", flag.get("archived")),
            ("description", flag.get("description")),
            ("type", flag.get("type", "string")),
            ("variants", variants),
            ("off variant", flag.get("off_variant")),
            ("default", flag.get("default_variant")),
            ("schedule", window),
            ("cohorts", ", ".join(flag.get("cohort_attributes") or []) or None),
            ("shadow", _shadow_line(flag.get("shadow"))),
            ("salt", flag.get("salt")),
            ("updated", f"{ts(flag.get('updated_at'))} by {flag.get('updated_by')}"),
        ]
    )
    rules = flag.get("rules") or []
    echo("")
    if not rules:
        echo(f"no rules: everyone gets the default variant {flag.get('default_variant')}")
        return
    table(
        ["#", "RULE", "CONDITIONS", "SERVES"],
        (
            [
                i,
                rule.get("id"),
                " AND ".join(_condition(c) for c in rule.get("conditions") or []) or "(always)",
                _serve(rule.get("serve") or {}),
            ]
            for i, rule in enumerate(rules, 1)
        ),
    )


def _show_segment(segment: Mapping[str, Any], env: str) -> None:
    conditions = [_condition(c) for c in segment.get("conditions") or []]
    fields(
        [
            ("segment", segment["key"]),
            ("environment", env),
            ("version", segment.get("version")),
            ("archived", segment.get("archived")),
            ("description", segment.get("description")),
            ("conditions", [c if i == 0 else f"AND {c}" for i, c in enumerate(conditions)]),
            ("updated", f"{ts(segment.get('updated_at'))} by {segment.get('updated_by')}"),
        ]
    )


def _tolerance(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value:+g}" if value else "0"


def _show_metric(metric: Mapping[str, Any], env: str) -> None:
    ratio = []
    if metric.get("kind") == "ratio":
        ratio = [("ratio", f"{metric.get('numerator')} / {metric.get('denominator')}")]
    fields(
        [
            ("metric", metric["key"]),
            ("environment", env),
            ("version", metric.get("version")),
            ("archived", metric.get("archived")),
            ("kind", metric.get("kind")),
            *ratio,
            ("direction", metric.get("direction")),
            ("unit", metric.get("unit") or None),
            ("description", metric.get("description") or None),
            ("tolerance", _tolerance(metric.get("default_tolerance"))),
            ("owner", metric.get("owner") or None),
            ("updated", f"{ts(metric.get('updated_at'))} by {metric.get('updated_by')}"),
        ]
    )


def _show_undefined(undefined: Sequence[Mapping[str, Any]], env: str, after: bool) -> None:
    """The metrics that outcome events name but the catalogue does not define."""
    if not undefined:
        return
    if after:
        echo("")
    echo("seen in events but not defined:")
    table(
        ["METRIC", "EVENTS", "LAST_SEEN"],
        ([u.get("key"), u.get("events"), ts(u.get("last_seen"))] for u in undefined),
    )
    note(f"define them with: rollwise metrics apply -f FILE --env {env}")


_Rows = Callable[[Iterable[Mapping[str, Any]], bool], list[list[Any]]]
_Show = Callable[[Mapping[str, Any], str], None]
_VIEWS: dict[Kind, tuple[list[str], _Rows, _Show, str]] = {
    "flag": (_FLAG_HEADERS, _flag_rows, _show_flag, "the rules document"),
    "segment": (_SEGMENT_HEADERS, _segment_rows, _show_segment, "the rules document"),
    "metric": (_METRIC_HEADERS, _metric_rows, _show_metric, "the catalogue"),
}
"""Per kind: the list's columns, its rows, how ``get`` shows one, and what archiving leaves."""


def _show_history(data: Mapping[str, Any]) -> None:
    rows, previous = [], None
    for entry in data.get("versions") or []:
        action = str(entry.get("action", ""))
        rows.append(
            [
                entry.get("version"),
                action.split(".", 1)[-1],
                entry.get("actor"),
                ts(entry.get("ts")),
                entry.get("reason"),
                _changes(entry, previous),
            ]
        )
        previous = entry
    table(["VERSION", "ACTION", "ACTOR", "TS", "REASON", "CHANGES"], rows)
    if data.get("next_before") is not None:
        click.echo(f"older versions: --before {data['next_before']}")


def _resource_commands(group: click.Group, kind: Kind) -> None:
    """``list``, ``get``, ``apply``, ``archive``, ``history``: the same for flags, segments and
    metrics."""
    plural = f"{kind}s"
    headers, to_rows, show, container = _VIEWS[kind]

    @group.command(
        "list",
        help=f"List the {plural} of an environment."
        + (" Then the metrics seen in outcome events but not defined." if kind == "metric" else ""),
    )
    @env_option
    @click.option("--archived", is_flag=True, help=f"Include archived {plural}.")
    @json_option
    @click.pass_obj
    def list_(remote: Remote, env: str, archived: bool, as_json: bool) -> None:
        data = remote.client().list_resources(env, kind, archived=archived)
        if as_json:
            echo_json(data)
            return
        items = data.get(plural) or []
        if items:
            table([*headers, "ARCHIVED"] if archived else headers, to_rows(items, archived))
        else:
            note(f"no {plural} in {env}")
        if kind == "metric":
            _show_undefined(data.get("undefined") or [], env, after=bool(items))

    @group.command("get", help=f"Show one {kind}: its configuration at the current version.")
    @click.argument("key")
    @env_option
    @json_option
    @click.pass_obj
    def get(remote: Remote, key: str, env: str, as_json: bool) -> None:
        data = remote.client().get_resource(env, kind, key)
        if as_json:
            echo_json(data)
        else:
            show(data, env)

    @group.command(
        "apply",
        help=f"Create a {kind} from a JSON file, or replace it if it exists. The replacement "
        f'edits the file\'s "version" if it has one (a stale file gets a 409), else the '
        "current version. `-f -` reads standard input.",
    )
    @click.option(
        "-f", "--file", "file", required=True, type=click.File("r"), help=f"The {kind} as JSON."
    )
    @env_option
    @reason_option
    @json_option
    @click.pass_obj
    def apply(remote: Remote, file: Any, env: str, reason: str | None, as_json: bool) -> None:
        body = _read_body(file, kind)
        key = body["key"]
        try:
            outcome, data = remote.client().apply(env, kind, body, reason=reason)
        except ApiResponseError as exc:
            if exc.status != 409 or exc.current_version is None:
                raise
            if type(body.get("version")) is int:
                hint = [
                    f"your file edits version {body['version']}, the server has version "
                    f"{exc.current_version}: someone changed the {kind} since the file was written",
                    f"get the current one (rollwise {plural} get {key} --env {env} --json), "
                    "redo your change on it and apply again",
                    f'or drop "version" from the file to replace version {exc.current_version}',
                ]
            else:
                hint = [f"the {kind} changed while it was being applied: run the command again"]
            raise _failure(exc, hint) from None
        if as_json:
            echo_json(data)
        elif outcome == "created":
            echo(f"created {kind} {key} in {env} (version {data.get('version')})")
        elif outcome == "updated":
            before = body.get("version") if type(body.get("version")) is int else None
            was = f"version {before} -> " if before else "now version "
            echo(f"updated {kind} {key} in {env}: {was}{data.get('version')}")
        else:
            echo(f"{kind} {key} in {env} is unchanged (version {data.get('version')})")

    @group.command(
        "archive",
        help=f"Archive a {kind}. It leaves {container} (DELETE); its history stays.",
    )
    @click.argument("key")
    @env_option
    @reason_option
    @json_option
    @click.pass_obj
    def archive(remote: Remote, key: str, env: str, reason: str | None, as_json: bool) -> None:
        data = remote.client().archive_resource(env, kind, key, reason=reason)
        if as_json:
            echo_json(data)
        else:
            echo(
                f"archived {kind} {key} in {env}; its history stays "
                f"(rollwise {plural} history {key} --env {env})"
            )

    @group.command(
        "history",
        help=f"Show the versions of a {kind}, the newest --limit of them (older ones with "
        "--before). Action, actor, time, reason and a compact diff "
        "(+ added, - removed, ~ replaced; the JSON pointer of each change).",
    )
    @click.argument("key")
    @env_option
    @click.option(
        "--limit", type=click.IntRange(1, 100), default=20, show_default=True,
        help="How many versions.",
    )  # fmt: skip
    @click.option(
        "--before", type=click.IntRange(1), default=None,
        help="Only versions older than this one (the next page).",
    )  # fmt: skip
    @json_option
    @click.pass_obj
    def history(
        remote: Remote, key: str, env: str, limit: int, before: int | None, as_json: bool
    ) -> None:
        data = remote.client().history(env, kind, key, limit=limit, before=before)
        if as_json:
            echo_json(data)
        else:
            _show_history(data)


@main.group()
def flags() -> None:
    """Manage flags.

    list, get, apply, kill, revert, history, archive and promote; each takes --env
    (ROLLWISE_ENV; required) and --json.
    """


@main.group()
def segments() -> None:
    """Manage segments.

    Segments are named lists of conditions that rules refer to: list, get, apply, history and
    archive; each takes --env (ROLLWISE_ENV; required) and --json.
    """


@main.group()
def metrics() -> None:
    """Manage the metric catalogue.

    What each tracked metric is (kind, direction, unit, default tolerance), declared once per
    environment for rollout guardrails to use: list, get, apply, history and archive; each
    takes --env (ROLLWISE_ENV; required) and --json.
    """


_resource_commands(flags, "flag")
_resource_commands(segments, "segment")
_resource_commands(metrics, "metric")


@flags.command("kill")
@click.argument("key")
@env_option
@click.option("--reason", required=True, help="Why: kept in the history and audit.")
@json_option
@click.pass_obj
def flags_kill(remote: Remote, key: str, env: str, reason: str, as_json: bool) -> None:
    """Serve the off variant to everyone now.

    A new version with enabled: false, applied to whatever version is current.
    """
    data = remote.client().kill(env, key, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(
        f"killed flag {key} in {env}: version {data.get('version')} serves the off variant "
        f"{data.get('off_variant')} to everyone"
    )


@contextlib.contextmanager
def _reason_hint(env: str) -> Iterator[None]:
    """A refusal for want of a reason gets the hint to pass ``--reason``."""
    try:
        yield
    except ApiResponseError as exc:
        if exc.status != 422 or not any(p.path == "reason" for p in exc.problems):
            raise
        raise _failure(exc, [f"say why with --reason: {env} is a protected environment"]) from None


@flags.command("create")
@click.argument("key")
@click.option(
    "--variants", required=True, callback=lambda ctx, param, value: _names(value),
    help="Its variants, comma-separated, e.g. v1,v2 (each serves its key; payloads: apply).",
)  # fmt: skip
@click.option(
    "--type", "flag_type", type=click.Choice([t.value for t in FlagType]), default="string",
    show_default=True, help="What its variants' values are; it cannot change later.",
)  # fmt: skip
@click.option(
    "--value", "values", multiple=True, metavar="VARIANT=VALUE",
    help="A variant's value (repeat per variant): JSON for boolean, integer, float and json "
    "flags (on=true, size=50, cfg='{\"k\": 1}'), text for a string flag (its key otherwise).",
)  # fmt: skip
@click.option("--default", "default", default=None, help="Served when no rule matches (first).")
@click.option("--off", "off", default=None, help="Served when it is disabled (the default).")
@click.option("--description", default="", help="What it is for.")
@env_option
@reason_option
@json_option
@click.pass_obj
def flags_create(
    remote: Remote, key: str, variants: tuple[str, ...], flag_type: str, values: tuple[str, ...],
    default: str | None, off: str | None, description: str, env: str, reason: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Create a flag that serves its default variant to everyone.

    Rules, splits and payloads come after, with apply or set-weights; a flag that exists is
    a conflict (exit 1), never overwritten. A typed flag needs a --value for each variant.
    """
    default = default or variants[0]
    bodies: dict[str, dict[str, Any]] = {v: {} for v in variants}
    for name, value in _values(values, flag_type, variants):
        bodies[name]["value"] = value
    body = {"key": key, "description": description, "variants": bodies,
            "default_variant": default, "off_variant": off or default}  # fmt: skip
    if flag_type != FlagType.STRING:
        body["type"] = flag_type
    data = remote.client().create_resource(env, "flag", body, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(f"created flag {key} in {env}: version {data.get('version')}, serves {default}")


@flags.command("disable")
@click.argument("key")
@env_option
@reason_option
@json_option
@click.pass_obj
def flags_disable(remote: Remote, key: str, env: str, reason: str | None, as_json: bool) -> None:
    """Serve the off variant to everyone (enabled: false), written at the version read.

    The same effect as kill, for planned changes: a protected environment needs --reason.
    """
    with _reason_hint(env):
        data = remote.client().set_enabled(env, key, False, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(
        f"disabled flag {key} in {env}: version {data.get('version')} serves the off variant "
        f"{data.get('off_variant')} to everyone"
    )


@flags.command("enable")
@click.argument("key")
@env_option
@reason_option
@json_option
@click.pass_obj
def flags_enable(remote: Remote, key: str, env: str, reason: str | None, as_json: bool) -> None:
    """Serve a killed (or disabled) flag's rules again.

    A new version with enabled: true, written at the version read (a change made meanwhile is
    a conflict, never overwritten).
    """
    data = remote.client().set_enabled(env, key, True, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(f"enabled flag {key} in {env}: version {data.get('version')} serves its rules again")


@flags.command("revert")
@click.argument("key")
@click.option(
    "--to-version", "to_version", required=True, type=click.IntRange(min=1),
    help="The version whose configuration comes back.",
)  # fmt: skip
@env_option
@click.option("--reason", required=True, help="Why: kept in the history and audit.")
@json_option
@click.pass_obj
def flags_revert(
    remote: Remote, key: str, to_version: int, env: str, reason: str, as_json: bool
) -> None:
    """Bring back an earlier version's configuration, as a new version."""
    data = remote.client().revert(env, key, to_version=to_version, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(
        f"reverted flag {key} in {env} to the configuration of version {to_version}: "
        f"now version {data.get('version')}"
    )


def _describe(difference: Difference, target_env: str) -> str:
    """One line for a resource's difference: ``segment eu: same``, ``flag fraud-model:
    ~/enabled false->true; ...``."""
    what = f"{difference.kind} {difference.key}"
    if difference.target is None:
        return f"{what}: not in {target_env}"
    if difference.same:
        return f"{what}: same"
    before = strip_meta(difference.target)
    return f"{what}: " + "; ".join(_change(op, before) for op in difference.patch)


def _values(
    items: tuple[str, ...], flag_type: str, variants: tuple[str, ...]
) -> Iterator[tuple[str, Any]]:
    """``--value VARIANT=VALUE`` items, each VALUE read as the flag's type reads it (JSON text,
    or plain text for a string flag); the server checks the type and names what is wrong."""
    for item in items:
        name, sign, text = item.partition("=")
        name = name.strip()
        if not sign or name not in variants:
            raise click.BadParameter(
                f"{item!r}: write VARIANT=VALUE for one of the variants {', '.join(variants)}",
                param_hint="'--value'",
            )
        if flag_type == FlagType.STRING:
            yield name, text
            continue
        try:
            yield name, json.loads(text)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: the value of a {flag_type} flag is JSON (true, 50, 0.5, "
                "'{\"k\": 1}'), not " + repr(text),
                param_hint="'--value'",
            ) from None


def _names(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise click.BadParameter("name at least one variant, e.g. v1,v2")
    return names


def _weights(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, int]:
    """``v1=90 v2=10`` (percentages summing to 100) as weights in basis points."""
    shares: dict[str, float] = {}
    for item in value:
        name, _, number = item.partition("=")
        try:
            shares[name.strip()] = float(number)
        except ValueError:
            raise click.BadParameter(f"{item!r}: write VARIANT=PERCENT, e.g. v2=10") from None
    if not shares or any(not name or share < 0 for name, share in shares.items()):
        raise click.BadParameter("write VARIANT=PERCENT for each variant, e.g. v1=90 v2=10")
    if abs(sum(shares.values()) - 100) > 1e-6:
        raise click.BadParameter(f"the percentages add up to {sum(shares.values()):g}, not 100")
    weights = {name: round(share * 100) for name, share in shares.items()}
    if any(abs(share * 100 - weights[name]) > 1e-6 for name, share in shares.items()):
        raise click.BadParameter("give the percentages to at most two decimals (basis points)")
    return weights


@flags.command("set-weights")
@click.argument("key")
@click.argument("weights", nargs=-1, required=True, callback=_weights, metavar="VARIANT=PERCENT...")
@click.option("--rule", required=True, help="The id of the rule whose split changes.")
@env_option
@reason_option
@json_option
@click.pass_obj
def flags_set_weights(
    remote: Remote, key: str, weights: dict[str, int], rule: str, env: str, reason: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Set the split of one rule, in percentages: rollwise flags set-weights KEY v1=90 v2=10.

    Written at the version read (a change made meanwhile is a conflict). A rule under an
    active rollout belongs to the controller: the server refuses (409).
    """
    client = remote.client()
    current = client.get_resource(env, "flag", key)
    body = strip_meta(current)
    target = next((r for r in body.get("rules") or [] if r.get("id") == rule), None)
    if target is None:
        ids = ", ".join(str(r.get("id")) for r in body.get("rules") or []) or "none"
        raise click.UsageError(f"flag {key} has no rule {rule!r} (its rules: {ids})")
    serve = dict(target.get("serve") or {})
    serve.pop("variant", None)
    serve["split"] = [{"variant": name, "weight": weight} for name, weight in weights.items()]
    target["serve"] = serve
    data = client.replace_resource(
        env, "flag", key, {**body, "key": key}, version=int(current["version"]), reason=reason
    )
    if as_json:
        echo_json(data)
        return
    echo(f"flag {key} in {env}, rule {rule}: {_serve(serve)}; now version {data.get('version')}")


@flags.command("diff")
@click.argument("key")
@click.option(
    "--env", "envs", multiple=True, required=True,
    help="The two environments, source first: --env staging --env production.",
)  # fmt: skip
@json_option
@click.pass_obj
def flags_diff(remote: Remote, key: str, envs: tuple[str, ...], as_json: bool) -> None:
    """What differs for a flag, and the segments it uses, between two environments.

    The second environment's values on the left of ->, the first's on the right: what a
    promotion from the first to the second would change.
    """
    if len(envs) != 2:
        raise click.UsageError("name two environments: --env SOURCE --env TARGET")
    source, target = envs
    found = list(differences(remote.client(), key, source, target))
    if as_json:
        echo_json({"from": source, "to": target, "resources": [d.to_json() for d in found]})
        return
    echo(f"{source} -> {target}")
    for difference in found:
        echo(_describe(difference, target))


@flags.command("promote")
@click.argument("key")
@env_option
@click.option("--to", "to", required=True, help="The environment to copy the flag to.")
@click.option(
    "--with-segments", is_flag=True,
    help="Copy the segments its rules use first (each missing or different one).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what would change, and change nothing.")
@reason_option
@json_option
@click.pass_obj
def flags_promote(
    remote: Remote, key: str, env: str, to: str, with_segments: bool, dry_run: bool,
    reason: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Copy a flag to another environment.

    The configuration in --env becomes a new version in --to (an audited change there). A
    protected --to needs a --reason. --with-segments copies the segments its rules use first;
    --dry-run shows the differences and changes nothing.
    """
    client = remote.client()
    found = list(differences(client, key, env, to))
    if dry_run:
        if as_json:
            echo_json({"from": env, "to": to, "resources": [d.to_json() for d in found]})
            return
        echo(f"{env} -> {to} (dry run: nothing changed)")
        for difference in found:
            echo(_describe(difference, to))
        return
    missing = [d.key for d in found if d.kind == "segment" and not d.same]
    if missing and not with_segments:
        hint = f"promote them too with --with-segments (see: rollwise flags diff {key} "
        hint += f"--env {env} --env {to})"
        raise click.ClickException(
            f"flag {key} uses segments that differ in {to} or are not there: "
            f"{', '.join(missing)}\n  {hint}"
        )
    promoted = []
    for difference in found:
        if difference.kind == "segment" and not difference.same:
            body = {**strip_meta(difference.source), "key": difference.key}
            client.apply(to, "segment", body, reason=reason)
            promoted.append(difference.key)
    with _reason_hint(to):
        data = client.promote(env, key, to=to, reason=reason)
    if as_json:
        echo_json({**data, "segments_promoted": promoted})
        return
    if promoted:
        echo(f"promoted segments {', '.join(promoted)} from {env} to {to}")
    echo(f"promoted flag {key} from {env} to {to}: version {data.get('version')} in {to}")


# --- tokens -------------------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """API tokens: create, list, revoke."""


def _create_token_in_database(
    db: str,
    role: str,
    name: str,
    env: str | None,
    *,
    owner: str,
    envs: Sequence[str] | None,
    expires_at: str | None,
) -> Json:
    from rollwise_server.auth import hash_secret, new_secret
    from rollwise_server.storage import database_errors, open_store

    try:
        store = open_store(db)
        try:
            secret = new_secret()
            record = store.create_token(
                name=name,
                role=role,
                env=env,
                secret_hash=hash_secret(secret),
                actor="cli (direct database access)",
                owner=owner,
                envs=envs,
                expires_at=expires_at,
            )
        finally:
            store.close()
    except database_errors(RollwiseError, OSError) as exc:
        raise click.ClickException(f"cannot create the token in {db}: {exc}") from None
    data = attrs.asdict(record)
    data["envs"] = None if record.envs is None else list(record.envs)
    return {**data, "token": secret}


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--name", default=None, help="What the token is for, e.g. ci-deploy (a label).")
@click.option(
    "--owner",
    default=None,
    help="The person it belongs to, named as the actor in the audit log (required but for sdk "
    "tokens, which default to --name).",
)
@click.option("--env", "env", default=None, help="The environment of an sdk token.")
@click.option(
    "--envs",
    "envs",
    default=None,
    callback=_env_list,
    help="The environments the role applies to, comma-separated (default: all).",
)
@click.option(
    "--expires",
    default=None,
    callback=_expiry,
    help="When it stops working: an RFC 3339 time, or a span from now such as 12h, 30d or 2w "
    "(default: never).",
)
@click.option(
    "--db",
    default=None,
    help="Create it directly in this database, without a server (bootstraps the first admin).",
)
@json_option
@click.pass_obj
def tokens_create(
    remote: Remote,
    role: str,
    name: str | None,
    owner: str | None,
    env: str | None,
    envs: tuple[str, ...] | None,
    expires: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Create a token and print its secret once.

    The secret alone goes to stdout, the note about it to stderr. With --db the token is
    written straight into the database (no server needed): how the first admin is made.
    """
    if role == "sdk" and env is None:
        raise click.UsageError("an sdk token is bound to one environment: pass --env")
    if role != "sdk" and env is not None:
        raise click.UsageError(
            "only sdk tokens are bound to an environment: drop --env (--envs limits other roles)"
        )
    if role == "sdk" and envs is not None:
        raise click.UsageError("an sdk token has one environment: pass --env, not --envs")
    if db is not None:
        name = name or f"{role}-bootstrap"
        data = _create_token_in_database(
            db, role, name, env, owner=owner or name, envs=envs, expires_at=expires
        )
    else:
        if owner is None and role != "sdk":
            article = "an" if role[0] in "aeiou" else "a"
            raise click.UsageError(
                f"{article} {role} token belongs to a person: pass --owner (e.g. --owner alice), "
                "whom the audit log names for its changes"
            )
        data = remote.client().create_token(
            role=role, name=name or (f"{role}-{env}" if env else role), env=env, owner=owner,
            envs=envs, expires_at=expires,
        )  # fmt: skip
    if as_json:
        echo_json(data)
        return
    echo(data["token"])
    about = [str(data["name"]), f"owner {data.get('owner') or data['name']}"]
    if role != "sdk" and data.get("envs") is not None:
        about.append(f"envs {','.join(data['envs'])}")
    if data.get("expires_at"):
        about.append(f"expires {ts(data['expires_at'])}")
    note(
        f"created {data['role']} token {data['id']} ({', '.join(about)}); the secret is shown once"
    )


@tokens.command("list")
@json_option
@click.pass_obj
def tokens_list(remote: Remote, as_json: bool) -> None:
    """List the tokens, revoked ones included (never their secrets).

    Each with its owner, the environments its role applies to and when it expires.
    """
    data = remote.client().tokens()
    if as_json:
        echo_json(data)
        return
    table(
        ["ID", "NAME", "OWNER", "ROLE", "ENVS", "EXPIRES", "CREATED_BY", "CREATED_AT",
         "REVOKED_AT"],
        (
            [t["id"], t["name"], t.get("owner") or None, t["role"], _token_envs(t),
             ts(t.get("expires_at")) or "never", t.get("created_by"),
             ts(t.get("created_at")), ts(t.get("revoked_at"))]
            for t in data.get("tokens") or []
        ),
    )  # fmt: skip


def _token_envs(token: Mapping[str, Any]) -> str:
    """Where a token's role applies: its environments, or ``all``."""
    envs = token.get("envs")
    if isinstance(envs, list) and envs:
        return ",".join(str(e) for e in envs)
    return str(token.get("env") or "all")


@tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@json_option
@click.pass_obj
def tokens_revoke(remote: Remote, token_id: str, as_json: bool) -> None:
    """Revoke a token by its id (tok_...).

    It stops working at once (within about a second on other replicas), streams included.
    """
    data = remote.client().revoke_token(token_id)
    if as_json:
        echo_json(data)
        return
    echo(f"revoked token {data['id']} ({data['name']}) at {ts(data.get('revoked_at'))}")


# --- environments and audit ---------------------------------------------------------------------


@main.group()
def envs() -> None:
    """Environments: list, create, protect, unprotect."""


@envs.command("list")
@json_option
@click.pass_obj
def envs_list(remote: Remote, as_json: bool) -> None:
    """List the environments, whether each is protected, and their rules revision."""
    data = remote.client().environments()
    if as_json:
        echo_json(data)
        return
    table(
        ["KEY", "PROTECTED", "REVISION", "CREATED_AT"],
        (
            [e["key"], bool(e.get("protected")), e.get("revision"), ts(e.get("created_at"))]
            for e in data["environments"]
        ),
    )


@envs.command("create")
@click.argument("key")
@click.option("--protected", is_flag=True, help="Protect it from the start (see protect).")
@reason_option
@json_option
@click.pass_obj
def envs_create(
    remote: Remote, key: str, protected: bool, reason: str | None, as_json: bool
) -> None:
    """Create an environment (admin)."""
    data = remote.client().create_environment(key, protected=protected, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(f"created {'protected ' if data.get('protected') else ''}environment {data['key']}")


def _protection(remote: Remote, key: str, protected: bool, reason: str, as_json: bool) -> None:
    data = remote.client().set_protected(key, protected=protected, reason=reason)
    if as_json:
        echo_json(data)
        return
    echo(f"environment {data['key']} is {'' if data.get('protected') else 'not '}protected")


@envs.command("protect")
@click.argument("key")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@json_option
@click.pass_obj
def envs_protect(remote: Remote, key: str, reason: str, as_json: bool) -> None:
    """Protect an environment (admin).

    Kills, reverts, promotions into it and rollout rollbacks and aborts then need a reason,
    and a rollout's approver must be another person than its starter and its plan's author.
    """
    _protection(remote, key, True, reason, as_json)


@envs.command("unprotect")
@click.argument("key")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@json_option
@click.pass_obj
def envs_unprotect(remote: Remote, key: str, reason: str, as_json: bool) -> None:
    """Lift an environment's protection (admin)."""
    _protection(remote, key, False, reason, as_json)


@main.command()
@click.option("--env", "env", default=None, help="Only this environment.")
@click.option("--flag", default=None, help="Only this flag and its rollout.")
@click.option("--segment", default=None, help="Only this segment.")
@click.option("--metric", default=None, help="Only this metric (its catalogue entry).")
@click.option(
    "--actor", default=None, help="Only changes by this person (a token's owner, or controller)."
)
@click.option("--action", default=None, help="Only this action, e.g. flag.kill.")
@click.option("--since", callback=_instant, help="From: 2026-11-01, or 24h, 7d.")
@click.option("--until", callback=_instant, help="Before this time (same forms).")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Most entries."
)
@click.option("--before", type=int, default=None, help="Older than this entry id (next page).")
@json_option
@click.pass_obj
def audit(
    remote: Remote,
    env: str | None,
    flag: str | None,
    segment: str | None,
    metric: str | None,
    actor: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    before: int | None,
    as_json: bool,
) -> None:
    """Show the audit log, newest first.

    Who changed what, with which token, when and why; --flag includes the flag's rollout,
    --before pages back.
    """
    data = remote.client().audit(
        env=env, flag=flag, segment=segment, metric=metric, actor=actor, action=action,
        since=since, until=until, limit=limit, before=before,
    )  # fmt: skip
    if as_json:
        echo_json(data)
        return
    entries = data.get("entries") or []
    if not entries:
        note("no audit entries match")
        return
    table(
        ["ID", "TS", "ACTOR", "TOKEN", "ACTION", "ENV", "RESOURCE", "VERSION", "REASON"],
        (
            [e["id"], ts(e.get("ts")), e.get("owner") or e.get("actor"), e.get("token_id"),
             e.get("action"), e.get("env"),
             f"{e.get('resource_type')}:{e.get('resource_key')}", e.get("version"),
             e.get("reason")]
            for e in entries
        ),
    )  # fmt: skip
    if data.get("next_before") is not None:
        note(f"more entries: rollwise audit --before {data['next_before']} ...")


# --- webhooks -----------------------------------------------------------------------------------


@main.group()
def webhooks() -> None:
    """Webhook deliveries and secrets."""


@webhooks.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "delivered", "failed"]),
    default=None,
    help="Only deliveries in this state.",
)
@click.option("--event", default=None, help="Only this event, e.g. rollout.rollback.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Most rows."
)
@click.option("--before", type=int, default=None, help="Older than this delivery id (next page).")
@json_option
@click.pass_obj
def webhooks_list(
    remote: Remote,
    state: str | None,
    event: str | None,
    limit: int,
    before: int | None,
    as_json: bool,
) -> None:
    """Show webhook deliveries, newest first (admin).

    Each event for each endpoint, with its state, attempts, last answer and next attempt;
    endpoints appear as scheme://host[:port], never with their path or query.
    """
    data = remote.client().webhook_deliveries(state=state, event=event, limit=limit, before=before)
    if as_json:
        echo_json(data)
        return
    rows = data.get("deliveries") or []
    if not rows:
        note("no webhook deliveries match")
        return
    table(
        ["ID", "EVENT", "ENDPOINT", "STATE", "ATTEMPTS", "CREATED_AT", "NEXT_ATTEMPT", "LAST"],
        (
            [d["id"], d.get("event"), d.get("endpoint"), d.get("state"), d.get("attempts"),
             ts(d.get("created_at")), ts(d.get("next_attempt_at")),
             d.get("last_error") or d.get("last_status")]
            for d in rows
        ),
    )  # fmt: skip
    if data.get("next_before") is not None:
        note(f"more deliveries: rollwise webhooks list --before {data['next_before']} ...")


@webhooks.command("secret")
@json_option
def webhooks_secret(as_json: bool) -> None:
    """Print a new signing secret for ROLLWISE_WEBHOOK_SECRET.

    whsec_ and 32 random bytes in base64 (Standard Webhooks); give the same value to the
    receivers, which verify each delivery with it.
    """
    from rollwise_server.webhooks.signing import new_secret

    secret = new_secret()
    if as_json:
        echo_json({"secret": secret})
        return
    echo(secret)


main.add_command(rollouts)
main.add_command(monitors)
main.add_command(db)
main.add_command(results)


if __name__ == "__main__":
    sys.exit(main())


def _shadow_line(shadow: Any) -> str | None:
    """``v2 for 25% of units by user_id (never served)``, or ``None`` without a shadow."""
    if not isinstance(shadow, dict):
        return None
    share = shadow.get("share")
    shown = f"{share * 100:g}%" if isinstance(share, int | float) else "?"
    return (
        f"{shadow.get('variant')} for {shown} of units by {shadow.get('bucket_by', 'user_id')}"
        " (never served)"
    )

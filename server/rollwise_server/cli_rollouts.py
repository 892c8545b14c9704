"""``rollwise rollouts …`` and ``rollwise results``: rollouts and their evidence from a terminal.

A rollout is driven through the same endpoints as any client (``…/flags/{key}/rollout`` and its
actions, ``…/flags/{key}/results``), so the server's rules hold here too: roles, protected
environments, the two-person rule. Registered on the ``rollwise`` group by ``cli.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from rollwise.analysis.compare import compare
from rollwise.analysis.reduce import ReductionResult
from rollwise.analysis.suffstats import SufficientStats
from rollwise_server.api_client import ApiResponseError
from rollwise_server.cli_options import env_option, json_option, reason_option
from rollwise_server.cli_output import echo, echo_json, fields, note, table, ts

__all__ = ["results", "rollouts"]

Json = dict[str, Any]

ACTIONS = {
    "start": "Start at stage 1: its share is written to the flag.",
    "pause": "Freeze the controller's decisions (the plan stays frozen).",
    "resume": "Unfreeze them (an errored rollout restarts on its stage's weights).",
    "advance": "Move to the next stage now (not past a stage that needs approval).",
    "approve": "Approve the stage that awaits approval (an approver; in a protected environment "
    "another person than the rollout's starter and its plan's author). The last stage of a plan "
    "with several candidates is approved with --winner.",
    "rollback": "Serve the control to everyone now (rolled_back).",
    "abort": "End the rollout (aborted) and serve the control.",
}


@click.group()
def rollouts() -> None:
    """Rollouts: plan, status, list, and start, pause, resume, advance, approve, rollback, abort.

    Each takes --env (ROLLWISE_ENV; required) and --json.
    """


def _stage(plan: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    stages = plan.get("stages") or []
    number = state.get("stage")
    if not isinstance(number, int) or not 1 <= number <= len(stages):
        return f"- of {len(stages)}"
    if stages[number - 1].get("shadow") is not None:
        return f"{number} of {len(stages)} (shadow)"
    return f"{number} of {len(stages)} ({100 * stages[number - 1]['share']:.4g}%)"


def _shadow_line(shadow: Any) -> str | None:
    """A shadow stage's last reading in one line (``None`` outside a shadow stage)."""
    if not isinstance(shadow, Mapping):
        return None

    def shown(value: Any, form: str, scale: float = 1.0) -> str:
        return "-" if value is None else format(value * scale, form)

    return (
        f"{shadow.get('paired_units')} paired of {shadow.get('runs')} runs, agreement "
        f"{shown(shadow.get('agreement'), '.2f', 100)}%, p99 "
        f"{shown(shadow.get('latency_p99_ms'), '.1f')} ms (control "
        f"{shown(shadow.get('live_latency_p99_ms'), '.1f')} ms), errors {shadow.get('errors')}, "
        f"timeouts {shadow.get('timeouts')}"
    )


def _candidates(plan: Mapping[str, Any]) -> str | None:
    """The plan's candidate, or its candidates joined by commas."""
    listed = plan.get("candidates")
    if isinstance(listed, list) and listed:
        return ",".join(str(c) for c in listed)
    return plan.get("candidate")


def _dropped(state: Mapping[str, Any]) -> str | None:
    """The candidates dropped in this run, with the stage of each (``None``: none)."""
    found = [
        f"{d.get('candidate')} (stage {d.get('stage')}, by {d.get('by')})"
        for d in state.get("dropped") or [] if isinstance(d, Mapping)
    ]  # fmt: skip
    return "; ".join(found) or None


def _summary(key: str, env: str, data: Mapping[str, Any]) -> str:
    state, plan = data.get("state") or {}, data.get("plan") or {}
    text = f"rollout of {key} in {env}: {state.get('status')}, stage {_stage(plan, state)}"
    if state.get("end_reason"):
        text += f", {state['end_reason']}"
    if state.get("winner"):
        text += f", winner {state['winner']}"
    return text


@rollouts.command("plan")
@click.argument("key")
@click.option(
    "-f", "--file", "file", type=click.File("r"), required=True,
    help="The plan as JSON (- reads stdin): control, candidate, rule, stages, guardrails, ...",
)  # fmt: skip
@env_option
@reason_option
@json_option
@click.pass_obj
def rollouts_plan(
    remote: Any, key: str, file: Any, env: str, reason: str | None, as_json: bool
) -> None:
    """Write a flag's rollout plan (a draft, or a new plan for an ended rollout).

    The server checks it against the flag and the metric catalogue and names every problem.
    """
    try:
        plan = json.load(file)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--file") from None
    if not isinstance(plan, dict):
        raise click.BadParameter("the plan must be a JSON object", param_hint="--file")
    data = remote.client().put_rollout(env, key, plan, reason=reason)
    if as_json:
        echo_json(data)
        return
    stages = len((data.get("plan") or {}).get("stages") or [])
    echo(
        f"plan of {key} in {env} saved: version {data.get('version')}, "
        f"{(data.get('state') or {}).get('status')}, {stages} stages"
    )


@rollouts.command("status")
@click.argument("key")
@env_option
@json_option
@click.pass_obj
def rollouts_status(remote: Any, key: str, env: str, as_json: bool) -> None:
    """Show a rollout: where it is, its stages, and the controller's last decision and why."""
    data = remote.client().rollout(env, key)
    if as_json:
        echo_json(data)
        return
    state, plan = data.get("state") or {}, data.get("plan") or {}
    evidence = state.get("evidence") or {}
    fields([
        ("flag", f"{key} in {env} (rollout version {data.get('version')})"),
        ("status", state.get("status")),
        ("stage", _stage(plan, state)),
        ("control", plan.get("control")),
        ("candidate", _candidates(plan)),
        ("dropped", _dropped(state)),
        ("winner", state.get("winner")),
        ("rule", plan.get("rule")),
        ("plan by", state.get("plan_by")),
        ("started by", state.get("started_by")),
        ("ended", state.get("end_reason")),
        ("last look", ts(evidence.get("at"))),
        ("decision", evidence.get("decision")),
        ("why", evidence.get("reason")),
        ("shadow", _shadow_line(evidence.get("shadow"))),
        ("updated", ts(data.get("updated_at"))),
    ])  # fmt: skip
    echo("")
    stage = state.get("stage")
    table(
        ["STAGE", "SHARE", "MIN_DURATION_S", "MIN_UNITS", "APPROVAL", ""],
        (
            [i, "shadow" if s.get("shadow") else f"{100 * s['share']:.4g}%",
             s.get("min_duration"), s.get("min_units"),
             s.get("approval"), "<- now" if i == stage else ""]
            for i, s in enumerate(plan.get("stages") or [], start=1)
        ),
    )  # fmt: skip
    guardrails = plan.get("guardrails") or []
    if guardrails:
        echo("")
        table(
            ["GUARDRAIL", "KIND", "HARM", "TOLERANCE", "COHORTS"],
            (
                [g.get("metric"), g.get("kind"), g.get("harm"), g.get("tolerance"),
                 ",".join(g.get("cohorts") or []) or None]
                for g in guardrails
            ),
        )  # fmt: skip


@rollouts.command("list")
@env_option
@json_option
@click.pass_obj
def rollouts_list(remote: Any, env: str, as_json: bool) -> None:
    """List the flags of an environment that have a rollout plan, with where each is."""
    client = remote.client()
    found = []
    for flag in client.list_resources(env, "flag").get("flags") or []:
        try:
            found.append(client.rollout(env, flag["key"]))
        except ApiResponseError as exc:
            if exc.status != 404:
                raise
    if as_json:
        echo_json({"rollouts": found})
        return
    if not found:
        note(f"no flag in {env} has a rollout plan")
        return
    table(
        ["FLAG", "STATUS", "STAGE", "CANDIDATE", "UPDATED_AT"],
        (
            [r["flag"], (r.get("state") or {}).get("status"),
             _stage(r.get("plan") or {}, r.get("state") or {}),
             _candidates(r.get("plan") or {}), ts(r.get("updated_at"))]
            for r in found
        ),
    )  # fmt: skip


@rollouts.command("runs")
@click.argument("key")
@env_option
@json_option
@click.pass_obj
def rollouts_runs(remote: Any, key: str, env: str, as_json: bool) -> None:
    """List the runs of a flag's rollout, newest first (the ids that review takes)."""
    data = remote.client().rollout_runs(env, key)
    if as_json:
        echo_json(data)
        return
    table(
        ["RUN", "STATUS", "STARTED_AT", "STARTED_BY", "ENDED_AT", "END_REASON"],
        ([r["id"], r["status"], ts(r["started_at"]), r["started_by"], ts(r.get("ended_at")),
          r.get("end_reason")] for r in data.get("runs") or []),
    )  # fmt: skip


def _run_of(remote: Any, env: str, key: str, run: int | None) -> int:
    """``run``, or the latest run of the flag's rollout."""
    if run is not None:
        return run
    found = remote.client().rollout_runs(env, key).get("runs") or []
    if not found:
        raise click.ClickException(f"flag {key!r} has no rollout run in {env!r}")
    return int(found[0]["id"])


@rollouts.command("review")
@click.argument("key")
@env_option
@click.option("--run", "run", type=click.IntRange(min=1), default=None,
              help="The run (rollwise rollouts runs); the latest by default.")  # fmt: skip
@click.option("--format", "form", type=click.Choice(["markdown", "html", "json"]),
              default="markdown", show_default=True, help="The document's form.")  # fmt: skip
@json_option
@click.pass_obj
def rollouts_review(
    remote: Any, key: str, env: str, run: int | None, form: str, as_json: bool
) -> None:
    """Print the post-deployment review of a rollout run: timeline, decisions and evidence,
    approvals, post-rollback verification, monitors and lessons learned."""
    number = _run_of(remote, env, key, run)
    # stored text (reasons, lessons) made visible: it never drives the terminal
    echo(remote.client().rollout_review(env, key, number, "json" if as_json else form), nl=False)


@rollouts.command("lessons")
@click.argument("key")
@env_option
@click.option("--run", "run", type=click.IntRange(min=1), default=None,
              help="The run (rollwise rollouts runs); the latest by default.")  # fmt: skip
@click.option("-f", "--file", "file", type=click.File("r"), required=True,
              help="The lessons as Markdown (- reads stdin); replaces the last text.")  # fmt: skip
@reason_option
@json_option
@click.pass_obj
def rollouts_lessons(
    remote: Any, key: str, env: str, run: int | None, file: Any, reason: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Write the lessons learned of a rollout run (every edit is kept in the audit log)."""
    number = _run_of(remote, env, key, run)
    data = remote.client().put_lessons(env, key, number, file.read(), reason)
    if as_json:
        echo_json(data)
        return
    note(f"lessons of run {number} of {key} in {env} saved (edit {data['edit']}, "
         f"{data['edits']} so far)")  # fmt: skip


def _action_command(action: str, help_text: str) -> Any:
    @rollouts.command(action, help=help_text)
    @click.argument("key")
    @env_option
    @click.option(
        "--reason", default=None,
        help="Why: kept in the history and audit (required to roll back or abort in a "
        "protected environment).",
    )  # fmt: skip
    @json_option
    @click.pass_obj
    def command(
        remote: Any, key: str, env: str, reason: str | None, as_json: bool,
        winner: str | None = None,
    ) -> None:  # fmt: skip
        data = remote.client().rollout_action(env, key, action, reason=reason, winner=winner)
        if as_json:
            echo_json(data)
            return
        echo(_summary(key, env, data))

    return command


for _action, _help in ACTIONS.items():
    _command = _action_command(_action, _help)
    if _action == "approve":
        click.option(
            "--winner", default=None,
            help="The last stage of a plan with several candidates: the surviving candidate "
            "that wins (the others are dropped).",
        )(_command)  # fmt: skip


# --- results ------------------------------------------------------------------------------------


def _mean(row: Mapping[str, Any], kind: str) -> float | None:
    if kind == "ratio":
        return row["total"] / row["den_total"] if row.get("den_total") else None
    return row["total"] / row["n"] if row.get("n") else None


@click.command()
@click.argument("key")
@env_option
@click.option("--metric", required=True, help="A metric of the environment's catalogue.")
@click.option("--cohort", default=None, help="A cohort attribute, e.g. country.")
@click.option("--bands", default=None, help="Edges that band a numeric cohort, e.g. 0,100,500.")
@click.option("--window", default=None, help="Attribution window, e.g. 14d, 2w or none.")
@click.option("--kind", default=None, help="Another reading of the metric (binary, mean, ...).")
@click.option("--denominator", default=None, help="A ratio's denominator metric.")
@click.option("--control", default=None, help="Compare: the control variant, e.g. v1.")
@click.option("--candidate", default=None, help="Compare: the candidate variant, e.g. v2.")
@click.option(
    "--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=0.05, show_default=True,
    help="The comparison's error rate (always-valid: it holds however often you look).",
)  # fmt: skip
@json_option
@click.pass_obj
def results(
    remote: Any, key: str, env: str, metric: str, cohort: str | None, bands: str | None,
    window: str | None, kind: str | None, denominator: str | None, control: str | None,
    candidate: str | None, alpha: float, as_json: bool,
) -> None:  # fmt: skip
    """A flag's results for one metric: units, values and the mean per variant (and cohort).

    The sufficient statistics the rollout controller and rollwise.analysis use, reduced in the
    server's database; --json prints them whole (n, totals, centred sums of squares). With
    --control and --candidate, the candidate's effect and its always-valid interval, overall
    and per cohort (the same test as the rollout controller's).
    """
    if (control is None) != (candidate is None):
        raise click.UsageError("compare with both --control and --candidate")
    data = remote.client().results(
        env, key, metric=metric, cohort=cohort, bands=bands, window=window, kind=kind,
        denominator=denominator,
    )  # fmt: skip
    if as_json:
        echo_json(data)
        return
    reading = data.get("kind", "")
    echo(f"{metric} ({reading}) for {key} in {env}, window {data.get('window')}")
    rows = data.get("cells") if cohort else data.get("overall")
    headers = ["VARIANT", *(["COHORT"] if cohort else []), "UNITS", "N", "MEAN"]
    table(
        headers,
        (
            [r["variant"], *([r.get("cohort")] if cohort else []), r.get("units"), r.get("n"),
             None if (m := _mean(r, reading)) is None else f"{m:.6g}"]
            for r in rows or []
        ),
    )  # fmt: skip
    if control is not None and candidate is not None:
        echo("")
        _comparisons(data, control, candidate, alpha, by_cohort=cohort is not None)
    diagnostics = data.get("diagnostics") or {}
    if diagnostics.get("multiple_variants"):
        note(f"{diagnostics['multiple_variants']} units saw more than one variant: left out")


def _comparisons(
    data: Mapping[str, Any], control: str, candidate: str, alpha: float, *, by_cohort: bool
) -> None:
    """``candidate`` against ``control``: the effect and its always-valid interval (mSPRT, as
    the controller computes it), overall and, with a cohort, per cohort."""
    result = ReductionResult.from_json(data)
    scopes: list[tuple[str, Mapping[str, SufficientStats]]] = [("overall", result.overall())]
    if by_cohort:
        cells: dict[str, dict[str, SufficientStats]] = {}
        for cell in result.cells:
            cells.setdefault(str(cell.cohort), {})[cell.variant] = cell.stats
        scopes += sorted(cells.items())
    missing = {control, candidate} - set(result.overall())
    if missing:
        raise click.UsageError(f"no results for variant {', '.join(sorted(missing))}")
    rows = []
    for scope, stats in scopes:
        if control not in stats or candidate not in stats:
            rows.append([scope, None, None, None, "an arm has no units"])
            continue
        found = compare(stats[control], stats[candidate], alpha=alpha)
        interval = f"[{found.ci_low:+.4g}, {found.ci_high:+.4g}]"
        rows.append([scope, f"{found.effect:+.4g}", interval, f"{found.p_value:.3g}",
                     found.note or ""])  # fmt: skip
    echo(f"{candidate} vs {control}: effect and {1 - alpha:.0%} always-valid interval")
    table(["SCOPE", "EFFECT", "INTERVAL", "P", "NOTE"], rows)

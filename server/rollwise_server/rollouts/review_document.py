"""The review of a rollout run as a document: Markdown (for a wiki, a ticket, a terminal) and a
standalone HTML page (the same sections, with the interval plots of the console)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from markupsafe import Markup

from rollwise_server.rollouts.review import Review
from rollwise_server.storage.base import AuditEntry
from rollwise_server.ui import charts
from rollwise_server.ui.render import templates

__all__ = ["context", "html", "markdown"]

MAX_TIMELINES = 8
"""Interval plots in the HTML document: the overall scopes first."""


def _cell(value: Any) -> str:
    """A Markdown table cell: no line breaks, pipes escaped, ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _share(value: Any) -> str | None:
    return None if not isinstance(value, int | float) else f"{100 * value:.4g}%"


def _number(value: Any, form: str = "+.4f") -> str | None:
    return None if not isinstance(value, int | float) else format(value, form)


def stage_rows(plan: Mapping[str, Any]) -> list[list[Any]]:
    return [
        [i, "shadow" if s.get("shadow") else "live",
         "serves no one" if s.get("shadow") else _share(s.get("share")), s.get("min_units"),
         s.get("min_duration"), "yes" if s.get("approval") else "no"]
        for i, s in enumerate(plan.get("stages") or [], start=1)
    ]  # fmt: skip


def guardrail_rows(plan: Mapping[str, Any]) -> list[list[Any]]:
    rows = [
        [g.get("metric"), g.get("kind"), g.get("harm"), g.get("tolerance"),
         ", ".join(g.get("cohorts") or []) or None]
        for g in plan.get("guardrails") or []
    ]  # fmt: skip
    for stage in plan.get("stages") or []:
        for check in (stage.get("shadow") or {}).get("scores") or []:
            harm = "decrease" if check.get("rule") == "match" else "increase"
            cohorts = ", ".join(check.get("cohorts") or []) or None
            name = f"{check.get('metric')} ({check.get('rule')}, shadow)"
            rows.append([name, "paired", harm, check.get("tolerance"), cohorts])
    return rows


def finding_rows(evidence: Mapping[str, Any]) -> list[list[Any]]:
    findings = [*((evidence.get("shadow") or {}).get("findings") or []),
                *(evidence.get("findings") or [])]  # fmt: skip
    return [
        [f.get("metric"), charts.scope_of(f), _number(f.get("effect")),
         None if f.get("ci_low") is None else
         f"[{_number(f.get('ci_low'))}, {_number(f.get('ci_high'))}]",
         f"{f.get('n_control')} / {f.get('n_candidate')}", f.get("verdict")]
        for f in findings
    ]  # fmt: skip


def shadow_line(shadow: Mapping[str, Any]) -> str:
    agreement = shadow.get("agreement")
    p99, live = shadow.get("latency_p99_ms"), shadow.get("live_latency_p99_ms")
    return (
        f"{shadow.get('paired_units')} paired units of {shadow.get('runs')} shadow runs; "
        f"agreement {'-' if agreement is None else f'{100 * agreement:.2f}%'}; candidate p99 "
        f"{'-' if p99 is None else f'{p99:.1f} ms'} "
        f"(control {'-' if live is None else f'{live:.1f} ms'}); "
        f"{shadow.get('errors')} errors, {shadow.get('timeouts')} timeouts"
    )


def _ended(review: Review) -> str:
    end = review.run.end
    if end is None:
        return "not yet: the rollout is still active"
    return f"{review.run.status.replace('_', ' ')} {end.ts} by {end.actor}: {end.reason or '-'}"


def _post_rollback(review: Review) -> str:
    if review.run.status != "rolled_back":
        return "Not rolled back."
    post = review.post_rollback
    if post is None and review.latest:
        return "Not verified yet: the controller's next round counts the candidate's exposures."
    if post is None:
        return "No verification kept: the controller keeps it for the latest run only."
    stale = " An SDK may have served stale rules." if post.get("stale_sdk_suspected") else ""
    return (
        f"{post.get('candidate_exposures_after_rollback')} exposures of the candidate after "
        f"the rollback; the last at {post.get('last_candidate_exposure') or '-'}.{stale}"
    )


def monitor_lines(review: Review) -> list[str]:
    """The flag's monitors and what they found since the run started (Markdown)."""
    found = review.monitor_findings()
    if not found:
        return ["None attached to this flag."]
    rows = []
    for m in found:
        alerts = "; ".join(
            f"{a.get('at')} {a.get('stream')}"
            + ("" if a.get("effect") is None else f" effect {a['effect']:+.4g}")
            for a in m["alerts"]
        )  # fmt: skip
        rows.append([m["name"], m["variant"], m["status"], m["checks"], alerts or "none"])
    return _table(["Monitor", "Variant", "Status", "Checks", "Alerts since the run started"],
                  rows)  # fmt: skip


def _decision_title(entry: AuditEntry) -> str:
    return f"{entry.ts}: {entry.action.removeprefix('rollout.')} by {entry.actor}"


def _candidates(plan: Mapping[str, Any]) -> str:
    """The plan's candidate, or its candidates (a plan with several)."""
    listed = plan.get("candidates")
    return ", ".join(map(str, listed)) if isinstance(listed, list) else str(plan.get("candidate"))


def markdown(review: Review) -> str:
    """The review as Markdown."""
    run, plan = review.run, review.plan
    out = [
        f"# Post-deployment review: {review.flag} in {review.env}, run {run.id}", "",
        *_table(["", ""], [
            ["Candidate / control", f"{_candidates(plan)} / {plan.get('control')}"],
            ["Rule", plan.get("rule")],
            ["Started", f"{run.start.ts} by {run.start.actor}"],
            ["Outcome", run.status.replace("_", " ")],
            ["Ended", _ended(review)],
        ]),
        "", "## Plan", "",
    ]  # fmt: skip
    if not review.plan_recorded:
        out += ["_This run started before plans were recorded with it: this is the current plan._",
                ""]  # fmt: skip
    out += _table(["Stage", "Kind", "Share", "Min units", "Min duration (s)", "Approval"],
                  stage_rows(plan))  # fmt: skip
    guardrails = guardrail_rows(plan)
    if guardrails:
        out += ["", *_table(["Guardrail", "Kind", "Harm", "Tolerance", "Cohorts"], guardrails)]
    out += ["", "## Timeline", ""]
    out += _table(
        ["When", "Action", "By", "Stage", "Candidate share", "Reason"],
        [[e.ts, e.action, e.actor, e.details.get("to_stage") or e.details.get("stage"),
          _share(e.details.get("share")), e.reason] for e in run.entries],
    )  # fmt: skip
    out += ["", "## Decisions and their evidence", ""]
    if not review.decisions:
        out += ["No decision of the controller in this run.", ""]
    for entry in review.decisions:
        evidence = entry.details["evidence"]
        out += [
            f"### {_decision_title(entry)}",
            "",
            f"{evidence.get('reason') or entry.reason}",
            "",
        ]
        out += [f"Test: {evidence.get('test')}, alpha {evidence.get('alpha')}; units on control "
                f"{evidence.get('units_control')}, on candidate {evidence.get('units_candidate')}.",
                ""]  # fmt: skip
        if isinstance(evidence.get("shadow"), Mapping):
            out += [f"Shadow: {shadow_line(evidence['shadow'])}.", ""]
        rows = finding_rows(evidence)
        if rows:
            out += [
                *_table(["Metric", "Scope", "Effect", "Interval", "Units", "Verdict"], rows),
                "",
            ]
    out += ["## Approvals", ""]
    if review.approvals:
        rows = [[e.ts, e.actor, e.details.get("stage"), e.reason] for e in review.approvals]
        out += _table(["When", "By", "Stage", "Reason"], rows)
    else:
        out += ["None given in this run."]
    out += ["", "## After the rollback", "", _post_rollback(review), "", "## Monitors", ""]
    out += monitor_lines(review)
    out += ["", "## Lessons learned", ""]
    if review.lessons:
        current = review.lessons[0]
        out += [str(current.details.get("text", "")), "",
                f"_Last edited {current.ts} by {current.actor}; {len(review.lessons)} edit(s) in "
                "the audit log._"]  # fmt: skip
    else:
        out += ["_None written yet: `rollwise rollouts lessons` or `PUT …/rollouts/{id}/lessons`._"]
    return "\n".join(out) + "\n"


def _series(review: Review) -> list[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """Each finding's interval at every decision of the run, overall scopes first."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in review.decisions:
        evidence = entry.details["evidence"]
        findings = [*((evidence.get("shadow") or {}).get("findings") or []),
                    *(evidence.get("findings") or [])]  # fmt: skip
        for finding in findings:
            key = (str(finding.get("metric")), charts.scope_of(finding))
            out.setdefault(key, []).append({**finding, "at": entry.ts})
    return sorted(out.items(), key=lambda item: (not item[0][1].endswith("overall"), item[0]))


def context(review: Review) -> dict[str, Any]:
    """What ``_review_body.html`` shows: the sections, the forest of the last decision and each
    finding's interval over the run."""
    last = review.last_evidence
    findings = [] if last is None else [*((last.get("shadow") or {}).get("findings") or []),
                                        *(last.get("findings") or [])]  # fmt: skip
    forest = (
        charts.forest_plot(
            findings,
            title="Last decision: effect of the candidate by cohort",
            id_prefix="review-forest",
        )
        if findings
        else None
    )
    timelines = [
        {"metric": metric, "scope": scope,
         "svg": charts.interval_timeline(points, title=f"{metric}, {scope}: interval over time",
                                         id_prefix=f"review-timeline-{i}")}
        for i, ((metric, scope), points) in enumerate(_series(review)[:MAX_TIMELINES])
    ]  # fmt: skip
    decisions = [
        {"title": _decision_title(e), "evidence": e.details["evidence"],
         "shadow": shadow_line(e.details["evidence"]["shadow"])
         if isinstance(e.details["evidence"].get("shadow"), Mapping) else None,
         "rows": finding_rows(e.details["evidence"]), "reason": e.reason}
        for e in review.decisions
    ]  # fmt: skip
    return {
        "review": review, "run": review.run, "plan": review.plan,
        "stages": stage_rows(review.plan), "guardrails": guardrail_rows(review.plan),
        "ended": _ended(review), "post_rollback": _post_rollback(review),
        "decisions": decisions, "forest": forest, "timelines": timelines, "share": _share,
        "lessons": review.lessons[0] if review.lessons else None,
        "monitors": review.monitor_findings(),
    }  # fmt: skip


def html(review: Review) -> str:
    """The review as a standalone HTML page (the console's styles inlined)."""
    style = resources.files("rollwise_server.ui").joinpath("static/console.css").read_text()
    return templates.get_template("review.html").render(
        style=Markup(style),  # noqa: S704 - the package's own stylesheet
        **context(review),
    )

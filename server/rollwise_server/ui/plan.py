"""The rollout plan editor: stages, guardrails from the metric catalogue, cohorts from the
flag's cohort attributes, approval stages — and how long each stage would take.

"Check" validates with the same ``parse_plan`` the API's ``PUT …/rollout`` runs and shows the
power calculation; "Save plan" sends the plan through the API. The power calculation is the
fixed-horizon sample size (``rollwise.analysis.fixed_horizon``) to see a change of the
guardrail's tolerance (or the smallest harm you enter) in its first metric, from the metric's
recent outcomes (baseline rate or variance) and the flag's recent traffic; the always-valid
test the controller runs needs more units than that for the same power, so the figure is a
lower bound and the page says so.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.responses import RedirectResponse, Response

from rollwise.durations import format_duration
from rollwise.rules import Flag
from rollwise_server.api.common import threaded
from rollwise_server.errors import BadRequest
from rollwise_server.models.rollouts import MAX_GUARDRAILS, MAX_STAGES
from rollwise_server.rollouts.plan import parse_plan
from rollwise_server.rollouts.transitions import catalogue
from rollwise_server.ui.changes import Change, changes
from rollwise_server.ui.context import Console, Form, endpoint, whole

__all__ = ["plan_page"]

WINDOW = 200_000
Draft = dict[str, Any]


def _indices(form: Form, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d{1,3})-")
    return sorted({int(m.group(1)) for n in form.names() if (m := pattern.match(n))})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def default_draft(flag: dict[str, Any], metrics: list[str]) -> Draft:
    variants = list(flag.get("variants") or {})
    rules = [r.get("id") for r in flag.get("rules") or []]
    return {
        "control": flag.get("default_variant", variants[0] if variants else ""),
        "candidate": next((v for v in variants if v != flag.get("default_variant")), ""),
        "rule": rules[0] if rules else "",
        "outcome_delay": "60s",
        "alpha": "0.05",
        "on_breach": "rollback",
        "srm": True,
        "stages": [
            {"share": "1", "min_duration": "1h", "min_units": "500", "approval": False},
            {"share": "10", "min_duration": "1h", "min_units": "2000", "approval": False},
            {"share": "50", "min_duration": "2h", "min_units": "5000", "approval": True},
            {"share": "100", "min_duration": "1h", "min_units": "5000", "approval": False},
        ],
        "guardrails": [
            {
                "metric": metrics[0] if metrics else "",
                "tolerance": "",
                "relative": False,
                "cohorts": [],
            }
        ],
        "mde": "",
    }


SHOWN = frozenset({"control", "candidate", "candidates", "rule", "outcome_delay", "alpha",
                   "on_breach", "srm",
                   "stages", "guardrails"})  # fmt: skip
"""The plan fields the editor shows; the others (deadline, attribution window, …) are carried
through the form unchanged, so that saving a plan never drops what the form does not show."""
GUARDRAIL_SHOWN = frozenset({"metric", "tolerance", "relative", "cohorts"})


def _hidden(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


def _carried(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("the plan's hidden fields are damaged; open the editor again") from None
    if not isinstance(value, dict):
        raise BadRequest("the plan's hidden fields are damaged; open the editor again")
    return value


def from_plan(plan: dict[str, Any]) -> Draft:
    listed = plan.get("candidates") if isinstance(plan.get("candidates"), list) else None
    named = listed or [plan.get("candidate")]  # a plan with two candidates: the second below
    return {
        "extra": _hidden({k: v for k, v in plan.items() if k not in SHOWN}),
        "control": _text(plan.get("control")),
        "candidate": _text(named[0]),
        "second": _text(named[1]) if len(named) > 1 else "",
        "rule": _text(plan.get("rule")),
        "outcome_delay": format_duration(float(plan.get("outcome_delay") or 0)),
        "alpha": _text(plan.get("alpha", 0.05)),
        "on_breach": _text(plan.get("on_breach", "rollback")),
        "srm": bool(plan.get("srm", True)),
        "stages": [
            {
                "share": f"{100 * float(s.get('share', 0)):.6g}",
                "shown": f"{100 * float(s.get('share', 0)):.6g}",
                "exact": repr(float(s.get("share", 0))),
                "min_duration": format_duration(float(s.get("min_duration") or 0)),
                "min_units": _text(s.get("min_units", 0)),
                "approval": bool(s.get("approval")),
            }
            for s in plan.get("stages") or []
        ],
        "guardrails": [
            {
                "metric": _text(g.get("metric")),
                "tolerance": _text(g.get("tolerance")),
                "relative": bool(g.get("relative")),
                "cohorts": list(g.get("cohorts") or []),
                "extra": _hidden({k: v for k, v in g.items() if k not in GUARDRAIL_SHOWN}),
            }
            for g in plan.get("guardrails") or []
        ],
        "mde": "",
    }


def from_form(form: Form) -> Draft:
    return {
        "extra": form.get("extra"),
        "control": form.get("control"),
        "candidate": form.get("candidate"),
        "second": form.get("candidates-1"),
        "rule": form.get("rule"),
        "outcome_delay": form.get("outcome_delay").strip(),
        "alpha": form.get("alpha").strip(),
        "on_breach": form.get("on_breach", "rollback"),
        "srm": form.get("srm") == "on",
        "stages": [
            {
                "share": form.get(f"stages-{i}-share").strip(),
                "shown": form.get(f"stages-{i}-shown"),
                "exact": form.get(f"stages-{i}-exact"),
                "min_duration": form.get(f"stages-{i}-min_duration").strip(),
                "min_units": form.get(f"stages-{i}-min_units").strip(),
                "approval": form.get(f"stages-{i}-approval") == "on",
            }
            for i in _indices(form, "stages-")[:MAX_STAGES]
        ],
        "guardrails": [
            {
                "metric": form.get(f"guardrails-{i}-metric"),
                "tolerance": form.get(f"guardrails-{i}-tolerance").strip(),
                "relative": form.get(f"guardrails-{i}-relative") == "on",
                "cohorts": form.all(f"guardrails-{i}-cohorts"),
                "extra": form.get(f"guardrails-{i}-extra"),
            }
            for i in _indices(form, "guardrails-")[:MAX_GUARDRAILS]
        ],
        "mde": form.get("mde").strip(),
    }


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def to_plan(draft: Draft) -> tuple[dict[str, Any], dict[str, str]]:
    problems: dict[str, str] = {}
    stages = []
    for i, stage in enumerate(draft["stages"]):
        share = _number(stage["share"])
        fraction = None if share is None else share / 100
        if share is not None and stage.get("exact") and stage["share"] == stage.get("shown"):
            fraction = _number(stage["exact"])  # as stored, not as rounded to be shown
        if share is None:
            problems[f"stages-{i}-share"] = "must be a percentage, e.g. 5"
        units = stage["min_units"]
        if whole(units) is None:
            problems[f"stages-{i}-min_units"] = "must be a whole number"
        stages.append(
            {
                "share": fraction,
                "min_duration": stage["min_duration"] or 0,
                "min_units": whole(units),
                "approval": stage["approval"],
            }
        )
    guardrails = []
    for i, guard in enumerate(draft["guardrails"]):
        item: dict[str, Any] = {
            **_carried(guard.get("extra", "")),
            "metric": guard["metric"],
            "relative": guard["relative"],
        }
        if guard["tolerance"]:
            tolerance = _number(guard["tolerance"])
            if tolerance is None:
                problems[f"guardrails-{i}-tolerance"] = "must be a number (or empty)"
            item["tolerance"] = tolerance
        if guard["cohorts"]:
            item["cohorts"] = guard["cohorts"]
        guardrails.append(item)
    alpha = _number(draft["alpha"])
    if alpha is None:
        problems["alpha"] = "must be a number such as 0.05"
    plan = {
        **_carried(draft.get("extra", "")),
        "control": draft["control"],
        **(
            {"candidates": [draft["candidate"], draft["second"]]}
            if draft.get("second")
            else {"candidate": draft["candidate"]}
        ),
        "rule": draft["rule"],
        "alpha": alpha,
        "outcome_delay": draft["outcome_delay"] or 0,
        "on_breach": draft["on_breach"],
        "srm": draft["srm"],
        "stages": stages,
        "guardrails": guardrails,
    }
    return plan, problems


def _field(path: str) -> str:
    return re.sub(r"\[(\d+)\]", r"-\1", path).replace(".", "-").removeprefix("plan-")


CENTURY = 100 * 365.25 * 86_400


def _duration(seconds: float) -> str:
    return format_duration(seconds) if seconds < CENTURY else "more than 100 years"


def power(
    plan: Any, catalogue_: dict[str, Any], traffic: dict[str, float], mde: float | None
) -> dict[str, Any]:
    """Units per arm each stage needs to see a change of ``mde`` (else the guardrail's
    tolerance) in the first guardrail's metric, and the time that takes at recent traffic."""
    if plan is None or not plan.guardrails:
        return {"error": "add a guardrail to compute how long the stages take"}
    try:  # statsmodels: the analysis extra, which a server may run without
        from rollwise.analysis.fixed_horizon import sample_size_binary, sample_size_mean
    except ImportError:
        return {"error": "the power calculation needs the analysis extra: "
                "pip install 'rollwise[analysis]'"}  # fmt: skip
    guard = plan.guardrails[0]
    metric = catalogue_.get(guard.metric)
    change = mde if mde else abs(guard.tolerance or 0.0)
    out: dict[str, Any] = {
        "metric": guard.metric,
        "change": change,
        "stages": [],
        "traffic": traffic,
    }
    if not change:
        out["error"] = (
            f"guardrail {guard.metric} tolerates no change (tolerance 0): enter the "
            "smallest harm you want to detect to see how long the stages take"
        )
        return out
    try:
        if metric is not None and metric.kind == "binary":
            base = traffic["mean"] if traffic["outcomes"] else 0.5
            base = min(max(base, 0.01), 0.99)
            delta = -change if base - change > 0.0 else change  # a harm that stays a rate
            needed = sample_size_binary(base, delta, alpha=plan.alpha)
            out["baseline"] = f"rate {base:.3g}" + (
                "" if traffic["outcomes"] else " (assumed: no recent outcomes)"
            )
        else:
            sd = (
                math.sqrt(traffic["variance"])
                if traffic["outcomes"] > 1 and traffic["variance"] > 0
                else None
            )
            if sd is None:
                out["error"] = f"no recent outcomes of {guard.metric} to estimate its spread"
                return out
            needed = sample_size_mean(sd, change, alpha=plan.alpha)
            out["baseline"] = f"mean {traffic['mean']:.4g}, standard deviation {sd:.4g}"
    except (ValueError, ZeroDivisionError, ArithmeticError) as exc:
        out["error"] = f"cannot compute: {exc}"
        return out
    rate = traffic["units"] / traffic["span"] if traffic["span"] > 0 else 0.0
    out["rate"] = rate
    for number, stage in enumerate(plan.stages, start=1):
        smaller = min(stage.share, 1 - stage.share) if stage.share < 1 else stage.share
        seconds = needed / (rate * smaller) if rate > 0 and smaller > 0 else None
        out["stages"].append(
            {
                "number": number,
                "share": stage.share,
                "needed": max(needed, stage.min_units),
                "time": None if seconds is None else _duration(max(seconds, stage.min_duration)),
                "final": stage.share >= 1,
            }
        )
    return out


@endpoint
async def plan_page(console: Console) -> Response:
    env, key = console.request.path_params["env"], console.request.path_params["key"]
    environment = console.environment(env)
    console.require_write(env)
    store = console.store
    flag = await threaded(store.get_resource, env, "flag", key)
    metrics = await threaded(catalogue, store, env)
    record = await threaded(store.get_rollout, env, key)
    form = console.form
    if console.request.method == "GET":
        draft = (
            from_plan(dict(record.plan))
            if record is not None
            else default_draft(dict(flag.body), sorted(metrics))
        )
    else:
        draft = from_form(form)
    action = form.get("action")
    problems: dict[str, str] = {}
    report: dict[str, Any] | None = None
    difference: list[Change] | None = None
    if action.startswith(("add-", "remove-")):
        name, _, where = action.partition(":")
        rows = draft["stages"] if "stage" in name else draft["guardrails"]
        if name.startswith("add-"):
            rows.append(
                {"share": "", "min_duration": "1h", "min_units": "1000", "approval": False}
                if "stage" in name
                else {"metric": "", "tolerance": "", "relative": False, "cohorts": []}
            )
        elif (at := whole(where)) is not None and at < len(rows):
            del rows[at]
    elif action in ("check", "save"):
        body, problems = to_plan(draft)
        if not problems:
            parsed_flag = Flag.from_json(
                {k: v for k, v in flag.body.items()},
                key=key,
                segments=[s.key for s in await threaded(store.list_resources, env, "segment")],
            )
            plan, found = parse_plan(body, parsed_flag, metrics)
            problems = {_field(p.path) or "_form": p.message for p in found}
            if plan is not None:
                mde = _number(draft["mde"]) if draft["mde"] else None
                traffic = await threaded(
                    store.recent_traffic,
                    env,
                    key,
                    plan.guardrails[0].metric if plan.guardrails else "",
                    window=WINDOW,
                )
                report = power(plan, metrics, traffic, mde)
                difference = changes(dict(record.plan) if record else {}, plan.to_json())
        if action == "save" and not problems:
            reason = form.get("reason").strip()
            answer = await console.api(
                "PUT",
                f"/api/v1/envs/{env}/flags/{key}/rollout",
                {**body, **({"reason": reason} if reason else {})},
                if_match=whole(form.get("version")),
            )
            if answer.ok:
                return RedirectResponse(f"/ui/envs/{env}/flags/{key}/rollout?done=plan", 303)
            problems = {
                _field(str(p.get("path", ""))) or "_form": str(p.get("message"))
                for p in answer.problems
            } or {"_form": answer.detail}
    body_flag = dict(flag.body)
    return console.page(
        "plan.html",
        422 if problems else 200,
        env=env,
        environment=environment,
        key=key,
        draft=draft,
        errors=problems,
        report=report,
        difference=difference,
        variants=list(body_flag.get("variants") or {}),
        rules=[r.get("id") for r in body_flag.get("rules") or []],
        cohorts=list(body_flag.get("cohort_attributes") or []),
        metrics=metrics,
        version=0 if record is None else record.version,
        reason=form.get("reason"),
    )

"""A rollout's post-deployment review: what was decided, on what evidence, by whom, and how it
ended, read back from the audit log, with the lessons people add afterwards.

A flag's rollout may run several times (started again after a rollback); each run is the audit
entries from its ``rollout.start`` (and the ``rollout.plan`` just before it) to the next plan or
start, and its id is the id of its ``rollout.start`` entry. Nothing here is stored apart from
the audit log: the lessons learned are ``rollout.lessons`` entries naming the run, so that every
edit is kept with its author and time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from rollwise_server.errors import NotFound
from rollwise_server.storage.base import AuditEntry, AuditQuery, MonitorRecord, Store

__all__ = ["LESSONS", "Review", "Run", "lessons_of", "review", "runs"]

LESSONS = "rollout.lessons"
"""The audit action of an edit of a run's lessons learned."""
MAX_ENTRIES = 20_000
"""The audit entries of one flag's rollouts read for its runs: far more than any flag has."""
_PAGE = 1000
ENDINGS = {"rollout.complete": "completed", "rollout.rollback": "rolled_back",
           "rollout.abort": "aborted"}  # fmt: skip


@attrs.frozen
class Run:
    """One run of a flag's rollout: its audit entries, oldest first."""

    id: int
    entries: tuple[AuditEntry, ...]

    @property
    def start(self) -> AuditEntry:
        return next(e for e in self.entries if e.action == "rollout.start")

    @property
    def end(self) -> AuditEntry | None:
        """The entry that ended it (completed, rolled back or aborted), if it has ended."""
        for entry in self.entries:
            if entry.details.get("to_status") in ENDINGS.values() or entry.action in ENDINGS:
                return entry
        return None

    @property
    def status(self) -> str:
        end = self.end
        if end is None:
            return "active"
        return str(end.details.get("to_status") or ENDINGS[end.action])

    def summary(self) -> dict[str, Any]:
        end = self.end
        plan = self.start.details.get("plan") or {}
        return {
            "id": self.id, "status": self.status, "started_at": self.start.ts,
            "started_by": self.start.actor, "ended_at": None if end is None else end.ts,
            "end_reason": None if end is None else end.reason,
            "control": plan.get("control"), "candidate": plan.get("candidate"),
            **({"candidates": plan["candidates"]} if plan.get("candidates") else {}),
        }  # fmt: skip


def _entries(store: Store, env: str, key: str) -> list[AuditEntry]:
    """Every audit entry of the flag's rollout, oldest first."""
    out: list[AuditEntry] = []
    before = None
    while len(out) < MAX_ENTRIES:
        page = store.audit(AuditQuery(env=env, resource_type="rollout", resource_key=key,
                                      before_id=before, limit=_PAGE))  # fmt: skip
        out += page
        if len(page) < _PAGE:
            break
        before = page[-1].id
    return list(reversed(out))


def runs(store: Store, env: str, key: str) -> list[Run]:
    """The flag's rollout runs, oldest first."""
    entries = [e for e in _entries(store, env, key) if e.action != LESSONS]
    out: list[Run] = []
    current: list[AuditEntry] = []
    pending_plan: AuditEntry | None = None
    for entry in entries:
        if entry.action == "rollout.plan":  # a new plan: the run before it is over
            if current:
                out.append(Run(_start_id(current), tuple(current)))
                current = []
            pending_plan = entry
            continue
        if entry.action == "rollout.start":
            if current:
                out.append(Run(_start_id(current), tuple(current)))
            current = [pending_plan, entry] if pending_plan is not None else [entry]
            pending_plan = None
            continue
        if current:
            current.append(entry)
    if current:
        out.append(Run(_start_id(current), tuple(current)))
    return out


def _start_id(entries: Sequence[AuditEntry]) -> int:
    return next(e.id for e in entries if e.action == "rollout.start")


def find_run(store: Store, env: str, key: str, run_id: int | None) -> Run:
    """The run ``run_id`` of the flag (``None``: the latest); 404 without one."""
    found = runs(store, env, key)
    if run_id is None:
        if not found:
            raise NotFound(f"flag {key!r} has no rollout run in {env!r}")
        return found[-1]
    for run in found:
        if run.id == run_id:
            return run
    raise NotFound(f"flag {key!r} has no rollout run {run_id} in {env!r}")


def lessons_of(store: Store, env: str, key: str, run_id: int) -> list[AuditEntry]:
    """The edits of a run's lessons learned, newest first."""
    entries = store.audit(AuditQuery(env=env, resource_type="rollout", resource_key=key,
                                     action=LESSONS, limit=_PAGE))  # fmt: skip
    return [e for e in entries if e.details.get("run") == run_id]


@attrs.frozen
class Review:
    """Everything the review document shows about one run."""

    env: str
    flag: str
    run: Run
    plan: Mapping[str, Any]
    plan_recorded: bool
    """The plan was recorded at the start (runs started before reviews existed: the current
    plan, which may differ)."""
    post_rollback: Mapping[str, Any] | None
    lessons: Sequence[AuditEntry]
    """Newest first: the first is the current text."""
    latest: bool = True
    """The flag's latest run (the only one whose post-rollback verification is kept)."""
    monitors: Sequence[MonitorRecord] = ()
    """The flag's monitors now (their alerts since the run started are its findings)."""

    def monitor_findings(self) -> list[dict[str, Any]]:
        """Each monitor with its status and the alerts raised since the run started."""
        start = self.run.start.ts
        return [
            {"name": m.name, "variant": m.spec.get("variant"), "status": m.state.get("status"),
             "checks": m.state.get("checks", 0),
             "alerts": [a for a in m.state.get("alerts") or [] if str(a.get("at", "")) >= start]}
            for m in self.monitors
        ]  # fmt: skip

    @property
    def decisions(self) -> list[AuditEntry]:
        """The entries that carry the controller's evidence."""
        return [e for e in self.run.entries if isinstance(e.details.get("evidence"), Mapping)]

    @property
    def approvals(self) -> list[AuditEntry]:
        return [e for e in self.run.entries if e.action == "rollout.approve"]

    @property
    def last_evidence(self) -> Mapping[str, Any] | None:
        decisions = self.decisions
        return decisions[-1].details["evidence"] if decisions else None

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env, "flag": self.flag, "run": self.run.summary(), "plan": dict(self.plan),
            "plan_recorded": self.plan_recorded,
            "timeline": [_entry_json(e) for e in self.run.entries],
            "approvals": [_entry_json(e) for e in self.approvals],
            "post_rollback": None if self.post_rollback is None else dict(self.post_rollback),
            "monitors": self.monitor_findings(),
            "lessons": None if not self.lessons else _lessons_json(self.lessons[0]),
            "lessons_edits": len(self.lessons),
        }  # fmt: skip


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "ts": entry.ts, "action": entry.action, "actor": entry.actor,
            "reason": entry.reason, "details": dict(entry.details)}  # fmt: skip


def _lessons_json(entry: AuditEntry) -> dict[str, Any]:
    return {"text": entry.details.get("text", ""), "by": entry.actor, "at": entry.ts,
            "edit": entry.id}  # fmt: skip


def review(store: Store, env: str, key: str, run_id: int | None) -> Review:
    """The review of run ``run_id`` (``None``: the latest) of the flag's rollout."""
    run = find_run(store, env, key, run_id)
    recorded = run.start.details.get("plan")
    record = store.get_rollout(env, key)
    plan = recorded if isinstance(recorded, Mapping) else (record.plan if record else {})
    post = None
    latest = runs(store, env, key)[-1]
    for entry in run.entries:  # the controller's last verification of this run
        if entry.action == "rollout.verify" and isinstance(entry.details.get("post_rollback"),
                                                             Mapping):  # fmt: skip
            post = entry.details["post_rollback"]
    if post is None and record is not None and latest.id == run.id:
        found = record.state.get("post_rollback")
        post = found if isinstance(found, Mapping) else None
    return Review(env, key, run, plan, isinstance(recorded, Mapping), post,
                  lessons_of(store, env, key, run.id), latest.id == run.id,
                  store.monitors(env, key))  # fmt: skip

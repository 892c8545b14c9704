"""The rollout controller: evaluates every active rollout on an interval and acts.

Its rounds run in the process that leads (``Store.lead``: on PostgreSQL the one replica that
holds an advisory lock, which passes to another when that replica dies).

For each running rollout it takes the rollout's lease in the database (so that no two loops,
in this process or another replica, evaluate it at once), gathers the evidence by SQL, decides
with ``decide.decide`` and applies the decision as a ``transitions`` change: a rollback is a new
flag version serving the control to everyone, published to the SDK streams at once, with a
webhook and the evidence in the audit log. State lives in the database, so a restarted server
carries on where it stopped. After a rollback it keeps watching for ten minutes and reports
when the last candidate exposure arrived, flagging SDKs that keep serving the candidate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from rollwise_server.errors import Conflict, StorageFull
from rollwise_server.monitoring.check import check as monitor_check
from rollwise_server.monitoring.spec import parse_monitor
from rollwise_server.rollouts import ownership, transitions
from rollwise_server.rollouts.decide import Decision, decide
from rollwise_server.rollouts.evidence import gather, iso
from rollwise_server.rollouts.pairing import shadow_evidence
from rollwise_server.rollouts.plan import RolloutPlan
from rollwise_server.rollouts.tally import Snapshot
from rollwise_server.rollouts.weights import (
    SCALE,
    arm_weights,
    candidate_share,
    candidates_of,
    dropped_of,
    served_weights,
)
from rollwise_server.storage.base import ACTIVE_ROLLOUT, MonitorRecord, RolloutRecord, Store
from rollwise_server.webhooks import Webhooks

__all__ = ["Controller"]

logger = logging.getLogger("rollwise.server")

WATCH_AFTER_ROLLBACK = 600.0
STALE_AFTER = 60.0
_TRANSITION = {
    "advance": "advance",
    "complete": "complete",
    "await_approval": "await",
    "rollback": "rollback",
    "pause": "pause",
    "drop": "drop",
}


class Controller:
    """One process's controller loop."""

    def __init__(
        self,
        store: Store,
        webhooks: Webhooks,
        publish: Callable[[str, int], None],
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.publish = publish
        self.interval = interval
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.rounds = 0
        self.last_round_seconds = 0.0
        self.last_round_at = 0.0
        self.leading = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                leading = await asyncio.to_thread(self.store.lead)
                if leading != self.leading:
                    logger.info(
                        "rollwise: this process %s the rollout controller",
                        "now runs" if leading else "no longer runs",
                    )
                    self.leading = leading
                    if leading:  # a leader that died mid-round left its leases behind
                        await asyncio.to_thread(self.store.release_leases, self.owner)
                if not leading:
                    continue  # another replica runs the rounds
                await self.round()
            except StorageFull:  # logged once by the store; the next round retries
                pass
            except Exception:  # the loop must survive anything; the next round retries
                logger.exception("rollwise: a controller round failed")

    async def round(self) -> list[tuple[str, str, Decision]]:
        """Evaluate every active rollout once; returns the decisions taken."""
        started = time.perf_counter()
        records = await asyncio.to_thread(self.store.active_rollouts)
        snapshot = await asyncio.to_thread(Snapshot, self.store) if records else None
        taken = []
        for record in records:
            try:  # each rollout in its own error boundary: one broken plan stops no other
                outcome = await asyncio.to_thread(self._evaluate, record, snapshot)
            except StorageFull:
                raise  # no rollout's fault: none is marked errored, the round stops here
            except Exception as exc:
                logger.exception("rollwise: evaluating rollout %s/%s failed", record.env,
                                 record.flag)  # fmt: skip
                await asyncio.to_thread(self._errored, record, exc)
                continue
            if outcome is not None:
                taken.append((record.env, record.flag, outcome))
        for env in sorted({record.env for record in records}):  # decisions and repairs
            self.publish(env, await asyncio.to_thread(self.store.revision, env))
        for record in await asyncio.to_thread(self._recently_rolled_back):
            await asyncio.to_thread(self._verify_rollback, record)
        for monitor in await asyncio.to_thread(self.store.monitors):
            try:  # each monitor in its own error boundary, as each rollout
                await asyncio.to_thread(self._check_monitor, monitor)
            except StorageFull:
                raise
            except Exception:
                logger.exception("rollwise: checking monitor %s of %s/%s failed", monitor.name,
                                 monitor.env, monitor.flag)  # fmt: skip
        self.rounds += 1
        self.last_round_seconds = time.perf_counter() - started
        self.last_round_at = time.time()
        return taken

    def _evaluate(self, record: RolloutRecord, snapshot: Snapshot | None) -> Decision | None:
        if not self.store.lease_rollout(
            record.env, record.flag, self.owner, 3 * self.interval + 30
        ):
            return None
        try:
            current, plan, _ = transitions.load(self.store, record.env, record.flag)
            if self._repair_weights(current, plan):
                current, plan, _ = transitions.load(self.store, record.env, record.flag)
            if current.state.get("status") != "running":
                return None
            now = self.clock()
            evidence, keep = gather(
                self.store, record.env, record.flag, plan, current.state, now, snapshot
            )
            stage = plan.stages[int(current.state.get("stage", 1)) - 1]
            if stage.shadow is not None:  # the candidate beside the control, on the same units
                shadowed = shadow_evidence(
                    self.store, record.env, record.flag, plan, stage.shadow,
                    float(current.state["stage_started_at"]), now - plan.outcome_delay,
                )  # fmt: skip
                evidence = attrs.evolve(evidence, shadow=shadowed)
            decision = decide(plan, current.state, evidence)
            evidence_json = {**evidence.to_json(), "at": iso(now), "decision": decision.action,
                             "reason": decision.reason, "alpha": plan.alpha,
                             "test": "always-valid normal mixture (mSPRT)"}  # fmt: skip
            if decision.action == "none":
                self.store.put_rollout_state(
                    record.env,
                    record.flag,
                    {**current.state, **keep, "evidence": evidence_json},
                    expected_version=current.version,
                )  # a change made meanwhile (a kill, a pause) wins over this reading
                return None
            try:  # decided on this reading: a change made meanwhile (a person's advance, a
                # pause, another replica's decision) wins, and the next round decides afresh
                transitions.transition(
                    self.store, record.env, record.flag, _TRANSITION[decision.action],
                    actor="controller", reason=decision.reason, evidence=evidence_json,
                    expected=current.version, now=None if self.clock is time.time else now,
                    drop=decision.dropped,
                )  # fmt: skip
            except Conflict:
                logger.info("rollwise: rollout %s/%s changed while it was evaluated: %s not "
                            "taken", record.env, record.flag, decision.action)  # fmt: skip
                return None
            logger.info("rollwise: rollout %s/%s stage %s: %s (%s)", record.env, record.flag,
                        current.state.get("stage"), decision.action, decision.reason)  # fmt: skip
            if decision.action in ("rollback", "pause", "await_approval", "complete", "drop"):
                self._notify(record, decision, evidence_json)
            return decision
        finally:
            self.store.release_rollout(record.env, record.flag, self.owner)

    def _check_monitor(self, record: MonitorRecord) -> None:
        """One check of a monitor if it is due; its alerts audited, sent as ``monitor.retrain``
        webhooks, and with ``action: rollback`` the flag's rollout rule put on its control."""
        flag, _, _ = transitions.flag_of(self.store, record.env, record.flag)
        spec, problems = parse_monitor(record.spec, flag, None)
        if spec is None:
            raise ValueError(f"the stored spec no longer parses: {problems}")
        checked = monitor_check(self.store, record, spec, self.clock())
        if checked is None or not self.store.put_monitor_state(
            record.env, record.flag, record.name, checked.state, expected_version=record.version,
            expected_updated_at=record.updated_at,
        ):  # fmt: skip
            return  # not due, or a person changed the monitor meanwhile: the next round
        for alert in checked.alerts:
            text = alert.text(record.env, record.flag, record.name)
            evidence = f"/api/v1/envs/{record.env}/flags/{record.flag}/monitors/{record.name}"
            self.store.append_audit(
                actor="controller", action="monitor.alert", env=record.env,
                resource_type="monitor", resource_key=record.flag, version=record.version,
                reason=text, details={"monitor": record.name, "alert": alert.to_json()},
            )  # fmt: skip
            logger.warning("%s", text)
            self.webhooks.notify("monitor.retrain", text, {
                "env": record.env, "flag": record.flag, "monitor": record.name,
                **alert.to_json(), "evidence": evidence,
            })  # fmt: skip
        if checked.alerts and spec.action == "rollback":
            self._monitor_rollback(record, spec.variant, checked.alerts[0])

    def _monitor_rollback(self, record: MonitorRecord, variant: str, alert: Any) -> None:
        """Serve the rollout plan's control on its rule again (the previous version): a rollback
        of the rollout while it is active, else a flag version with the control's weights.
        Only while the flag's plan still has the watched variant as its candidate: a plan put
        since for another candidate names no rule of this variant."""
        rollout = self.store.get_rollout(record.env, record.flag)
        control = None if rollout is None else rollout.plan.get("control")
        reason = f"monitor {record.name}: {alert.stream} fired; serving the control {control!r}"
        if rollout is None or variant not in candidates_of(rollout.plan):
            logger.warning("rollwise: monitor %s of %s/%s fired, but the flag's rollout plan no "
                           "longer has %r as its candidate: no rollback", record.name,
                           record.env, record.flag, variant)  # fmt: skip
            return
        try:
            if rollout.state.get("status") in ACTIVE_ROLLOUT:
                transitions.transition(
                    self.store, record.env, record.flag, "rollback", actor="controller",
                    reason=reason, expected=rollout.version,
                )  # fmt: skip
            else:
                flag = self.store.get_resource(record.env, "flag", record.flag)
                change = ownership.control_change(flag.body, flag.version, rollout.plan)
                if change is None:
                    return
                self.store.write_resource(
                    record.env, "flag", record.flag, change["body"],
                    expected_version=flag.version, action="monitor.rollback",
                    actor="controller", reason=reason,
                    details={"monitor": record.name, "stream": alert.stream},
                )  # fmt: skip
        except Conflict:  # changed meanwhile: the alert stands, a person decides
            logger.warning(
                "rollwise: monitor %s of %s/%s: the rollback was not applied (the flag changed "
                "meanwhile)", record.name, record.env, record.flag,
            )  # fmt: skip
            return
        self.publish(record.env, self.store.revision(record.env))

    def _errored(self, record: RolloutRecord, exc: Exception) -> None:
        """Put a rollout that could not be evaluated on the control, ``errored``, and say so."""
        error = f"{type(exc).__name__}: {exc}"
        try:
            marked = transitions.mark_errored(self.store, record.env, record.flag, error)
        except Exception:  # the store itself failing: the next round tries again
            logger.exception("rollwise: marking rollout %s/%s errored failed", record.env,
                             record.flag)  # fmt: skip
            return
        if marked is None:
            return
        logger.error("rollwise: rollout %s/%s stage %s: ERRORED, on the control (%s)",
                     record.env, record.flag, marked.state.get("stage"), error)  # fmt: skip
        self.webhooks.notify(
            "rollout.errored",
            f"rollwise: rollout of {record.flag} in {record.env} ERRORED and waits on the "
            f"control: {error}",
            {"env": record.env, "flag": record.flag, "reason": error},
        )

    def _repair_weights(self, current: RolloutRecord, plan: RolloutPlan) -> bool:
        """Put the stage's weights back if the served flag differs from them (audited as
        ``rollout.repair`` and a ``flag.rollout`` version); ``True`` if it did."""
        if current.state.get("status") not in ACTIVE_ROLLOUT:
            return False
        expected = plan.stages[int(current.state["stage"]) - 1].share
        flag = self.store.get_resource(current.env, "flag", current.flag)
        if plan.multi:
            weights = arm_weights(plan, expected, dropped_of(current.state))
            shown = served_weights(flag.body, plan)
            if shown == weights:
                return False
            reason = (
                f"the served weights ({shown}) differed from stage {current.state['stage']}'s "
                f"{weights}: put back"
            )
        else:
            served = candidate_share(flag.body, plan)
            if served is not None and round(served * SCALE) == round(expected * SCALE):
                return False  # compared as the weights ``with_share`` writes (0.00005 included)
            reason = (
                f"the served weights (candidate {served if served is None else f'{served:.2%}'}) "
                f"differed from stage {current.state['stage']}'s {expected:.2%}: put back"
            )
        transitions.transition(
            self.store, current.env, current.flag, "repair", actor="controller", reason=reason,
            expected=current.version, now=None if self.clock is time.time else self.clock(),
        )  # fmt: skip
        logger.warning("rollwise: rollout %s/%s: %s", current.env, current.flag, reason)
        return True

    def _notify(self, record: RolloutRecord, decision: Decision, evidence: dict[str, Any]) -> None:
        verb = {"rollback": "ROLLED BACK", "pause": "PAUSED", "await_approval": "awaits approval",
                "complete": "completed", "drop": "DROPPED"}[decision.action]  # fmt: skip
        text = f"rollwise: rollout of {record.flag} in {record.env} {verb}: {decision.reason}"
        self.webhooks.notify(
            f"rollout.{decision.action}",
            text,
            {
                "env": record.env,
                "flag": record.flag,
                "reason": decision.reason,
                "evidence": evidence,
            },
        )

    def _recently_rolled_back(self) -> list[RolloutRecord]:
        now = self.clock()
        out = []
        for record in self.store.all_rollouts():
            state = record.state
            age = now - float(state.get("rolled_back_at", 0))
            if state.get("status") == "rolled_back" and age < WATCH_AFTER_ROLLBACK:
                out.append(record)
        return out

    def _verify_rollback(self, record: RolloutRecord) -> None:
        """When did the last candidate exposure arrive after the rollback was published?"""
        state = record.state
        plan = record.plan
        since = iso(float(state["rolled_back_at"]))
        candidates = candidates_of(plan)
        marks = ", ".join("?" for _ in candidates)
        row = (
            self.store.reader()
            .execute(
                "SELECT count(*), max(ts), max(received_at) FROM exposures"  # noqa: S608
                f" WHERE env = ? AND flag = ? AND variant IN ({marks}) AND ts >= ?",
                (record.env, record.flag, *candidates, since),
            )
            .fetchone()
        )
        count, last_ts, last_received = int(row[0]), row[1], row[2]
        stale = False
        if last_ts is not None:
            lag = datetime.fromisoformat(last_ts).timestamp() - float(state["rolled_back_at"])
            stale = lag > STALE_AFTER
        verification = {"candidate_exposures_after_rollback": count,
                        "last_candidate_exposure": last_ts, "last_received": last_received,
                        "stale_sdk_suspected": stale}  # fmt: skip
        if state.get("post_rollback") != verification and self.store.put_rollout_state(
            record.env, record.flag, {**state, "post_rollback": verification},
            expected_version=record.version,
        ):  # fmt: skip
            # audited too, so that the run's review keeps it after the rollout runs again
            self.store.append_audit(
                actor="controller", action="rollout.verify", env=record.env,
                resource_type="rollout", resource_key=record.flag, version=record.version,
                reason=f"{count} exposure(s) of the candidate after the rollback"
                + (": an SDK may serve stale rules" if stale else ""),
                details={"post_rollback": verification},
            )  # fmt: skip

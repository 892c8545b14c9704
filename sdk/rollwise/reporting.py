"""What an online client reports and records, whichever way its rules and events travel:
``track()``, ``status()`` and ``stats()``, shared by ``Client`` (threads) and
``rollwise.aio.AsyncClient`` (asyncio tasks) through ``OnlineState``."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from rollwise.evaluation import Evaluation
from rollwise.events import json_scalar
from rollwise.online import OnlineState
from rollwise.status import ClientStatus

__all__ = ["Reporting"]

logger = logging.getLogger("rollwise")


class Reporting(Evaluation):
    """Outcomes, status and counters of a client; ``_online`` is ``None`` offline."""

    _online: OnlineState | None

    def _awaiting_server(self) -> str | None:
        online = self._online
        return None if online is None or online.ready.is_set() else online.rules_in_use()

    def track(
        self,
        metric: str,
        unit: str | int,
        value: float | int | bool,
        *,
        unit_type: str = "user_id",
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an outcome: the measured result of the model for one unit. Never raises.

        ``value`` is a finite number (``True``/``False`` count as 1/0 for binary metrics).
        Outcomes are sent in the background like exposures; an offline client drops them.
        """
        try:
            if isinstance(value, bool):
                value = int(value)
            unit_text = (
                unit if isinstance(unit, str) else str(unit) if isinstance(unit, int) else ""
            )
            if (
                not isinstance(metric, str)
                or not metric
                or not unit_text
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                self._report_once(
                    f"track:{metric!r}",
                    "rollwise: track(%r, %r, %r) ignored: needs a metric name, a unit and a "
                    "finite number",
                    metric,
                    unit,
                    value,
                )
                return
            online = self._online
            if online is None or not online.config.send_events:
                return
            clean = None if attrs is None else {str(k): json_scalar(v) for k, v in attrs.items()}
            online.outcomes.put(metric, unit_type, unit_text, float(value), clean)
        except Exception:
            logger.exception("rollwise: track() failed")

    def status(self) -> ClientStatus:
        """Where the rules in use came from, how old they are, and the connection's state."""
        online = self._online
        revision = self._store.revision
        if online is None:
            return ClientStatus(
                revision=revision, origin="offline", age_seconds=None,
                connection="closed" if self._closed else "offline", ready=True,
                last_sync=None, last_error=None,
            )  # fmt: skip
        state = online.sync.state
        received = online.received_at
        return ClientStatus(
            revision=revision,
            origin=online.origin,
            age_seconds=None if received is None else max(0.0, time.time() - received),
            connection="closed" if online.closed else state.connection,
            ready=online.ready.is_set(),
            last_sync=state.last_sync,
            last_error=state.last_error,
        )

    def stats(self) -> dict[str, Any]:
        """Counters: evaluations, exposures and outcomes at each step, the last sync and error."""
        log = self._exposures
        out: dict[str, Any] = {
            "revision": self._store.revision,
            "evaluations": self.evaluations,
            "exposures_recorded": log.recorded,
            "exposures_duplicated": log.duplicates,
            "exposures_dropped": log.dropped,
            "shadow_runs": self._shadow_pool.runs,
            "shadow_errors": self._shadow_pool.errors,
            "shadow_timeouts": self._shadow_pool.timeouts,
            "shadow_dropped": self._shadow_pool.dropped,
            "predictions_recorded": self._predictions.recorded,
            "change_listener_calls": self._changes.delivered,
            "change_listener_errors": self._changes.errors,
            "change_listener_dropped": self._changes.dropped,
        }
        online = self._online
        if online is not None:
            sender = online.sender.stats
            spool = online.spool
            out.update(
                exposures_queued=len(log),
                exposures_sent=sender.sent["exposures"],
                exposures_rejected=sender.rejected["exposures"],
                outcomes_tracked=online.outcomes.tracked,
                outcomes_queued=len(online.outcomes),
                outcomes_sent=sender.sent["outcomes"],
                outcomes_rejected=sender.rejected["outcomes"],
                outcomes_dropped=online.outcomes.dropped,
                predictions_queued=len(self._predictions),
                predictions_sent=sender.sent["predictions"],
                predictions_rejected=sender.rejected["predictions"],
                predictions_dropped=self._predictions.dropped,
                events_duplicates_at_server=sum(sender.duplicates.values()),
                events_spooled=sender.spooled,
                events_replayed=sender.replayed,
                events_in_spool=0 if spool is None else len(spool),
                events_dropped_at_spool_cap=0 if spool is None else spool.dropped,
                events_dropped_unspoolable=online.sender.dropped_unspoolable,
                last_sync=online.sync.state.last_sync,
                last_error=online.sync.state.last_error or sender.last_error,
            )
        return out

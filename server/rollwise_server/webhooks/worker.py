"""The delivery worker: one thread per server that sends the outbox's due rows, one at a time.

Each attempt is a POST of the stored body, signed anew (``signing``), with a time-out and
without following redirects: only a 2xx answer delivers. A 3xx, another status, a time-out or
a connection error schedules the next attempt with exponential backoff and jitter (a
``Retry-After`` of a 429 or 503 is honoured), until the policy's budget of attempts or time is
spent and the row is ``failed``; a 410 Gone fails it at once. The worker sleeps until the
earliest pending row is due, or until ``notify`` wakes it, and looks at the table at least once
a second, so rows left by a stopped server or queued by another process are picked up.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import attrs
import requests

from rollwise._version import __version__
from rollwise_server.storage.base import Store, WebhookDelivery, WebhookOutcome
from rollwise_server.webhooks.endpoints import Endpoints, scrub
from rollwise_server.webhooks.signing import signed_headers

__all__ = ["DeliveryWorker", "RetryPolicy", "describe_failure"]

_RANDOM = random.Random()  # noqa: S311 - jitter and sampling, not secrets
"""The retry jitter's own generator: it never moves the global ``random`` state, which
applications (and Hypothesis, in the tests) own."""

logger = logging.getLogger("rollwise.server")

REQUEST_TIMEOUT = (5.0, 15.0)
"""Seconds to connect, and to wait for the answer (the specification suggests 15 to 30)."""
LEASE_SECONDS = 60.0
"""A claimed row is due again after this long if its worker died mid-request."""
IDLE_POLL_SECONDS = 1.0
BATCH = 20


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How long a delivery is tried: at most ``max_attempts`` attempts, none later than
    ``give_up_after`` seconds after the event; the n-th retry waits a uniformly drawn time
    between half and all of ``min(cap, first_delay * 2**(n-1))``."""

    max_attempts: int = 25
    give_up_after: float = 86_400.0
    first_delay: float = 5.0
    cap: float = 3_600.0

    def delay(self, attempts: int, rng: Callable[[], float] = _RANDOM.random) -> float:
        """Seconds before the attempt after ``attempts`` failed ones (``attempts >= 1``)."""
        ceiling = min(self.cap, self.first_delay * 2.0 ** min(attempts - 1, 64))
        return ceiling * (0.5 + 0.5 * rng())


def describe_failure(exc: Exception) -> str:
    """A short reason for a failed request, from the exception's class and its innermost
    operating-system error (requests' own messages repeat the URL, so they are not used)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    kind = "TLS error" if isinstance(exc, requests.exceptions.SSLError) else "connection failed"
    if not isinstance(exc, requests.ConnectionError):
        kind = type(exc).__name__
    seen: list[BaseException] = [exc]
    for error in seen:  # breadth first through causes, contexts and wrapped reasons
        if isinstance(error, OSError) and error.strerror:
            return f"{kind}: {error.strerror}"
        for inner in (error.__cause__, error.__context__, getattr(error, "reason", None),
                      *error.args):  # fmt: skip
            if isinstance(inner, BaseException) and inner not in seen and len(seen) < 20:
                seen.append(inner)
    return kind


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class DeliveryWorker:
    """Sends due outbox rows from one background thread (``start``/``close``)."""

    def __init__(
        self,
        store: Store,
        endpoints: Endpoints,
        key: bytes | None,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = _RANDOM.random,
    ) -> None:
        self.store = store
        self.endpoints = endpoints
        self.policy = policy
        self.wake = threading.Event()
        self._key = key
        self._clock = clock
        self._rng = rng
        self._stop = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="rollwise-webhooks", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = sum(REQUEST_TIMEOUT) + 5) -> None:
        """Stop after the attempt in flight (if any) is recorded."""
        self._stop.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._session.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            try:
                handled = self.run_once()
                due = None if handled else self.store.next_webhook_due()
            except Exception:  # the worker must outlive a bad moment of the database
                if not self._failing:
                    logger.exception("rollwise: the webhook worker cannot read its outbox")
                self._failing, handled, due = True, 0, None
            else:
                if self._failing:
                    logger.warning("rollwise: the webhook worker reads its outbox again")
                self._failing = False
            if handled:
                continue
            wait = IDLE_POLL_SECONDS if due is None else due - self._clock()
            self.wake.wait(min(max(wait, 0.0), IDLE_POLL_SECONDS))

    def run_once(self) -> int:
        """Claim the due rows and attempt each; how many were claimed."""
        now = self._clock()
        claimed = self.store.claim_webhooks(now, now + LEASE_SECONDS, BATCH)
        for position, delivery in enumerate(claimed):
            if self._stop.is_set():  # shutting down: hand the rest back, due at once
                for rest in claimed[position:]:
                    self.store.finish_webhook(rest.id, WebhookOutcome(
                        state="pending", at=_iso(self._clock()), attempted=False,
                        error=rest.last_error, next_attempt=self._clock(),
                    ))  # fmt: skip
                break
            self.store.finish_webhook(delivery.id, self._attempt(delivery))
        return len(claimed)

    def _attempt(self, delivery: WebhookDelivery) -> WebhookOutcome:
        now = self._clock()
        at = _iso(now)
        where = f"webhook {delivery.id} ({delivery.event}) to {delivery.endpoint_label}"
        endpoint = self.endpoints.get(delivery.endpoint)
        if endpoint is None or self._key is None:
            gone = "its endpoint is no longer in ROLLWISE_WEBHOOK_URLS"
            logger.warning("rollwise: %s not sent: %s", where, gone)
            return WebhookOutcome(state="failed", at=at, attempted=False, error=gone)
        if now - delivery.created > self.policy.give_up_after:
            late = (
                f"not delivered within {self.policy.give_up_after:g} s of the event "
                f"(last: {delivery.last_error or 'no attempt'})"
            )
            logger.error("rollwise: %s failed for good: %s", where, late)
            return WebhookOutcome(state="failed", at=at, attempted=False, error=late)
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"rollwise/{__version__}",
            **signed_headers(self._key, delivery.message_id, int(now), body),
        }
        status: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            with self._session.post(
                endpoint.url, data=body, headers=headers, timeout=REQUEST_TIMEOUT,
                allow_redirects=False, stream=True,
            ) as response:  # fmt: skip
                status = response.status_code
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (requests.RequestException, ValueError, OSError) as exc:
            error = scrub(describe_failure(exc), endpoint.url)
        attempts = delivery.attempts + 1
        if status is not None and 200 <= status < 300:
            logger.info("rollwise: %s delivered (HTTP %d, attempt %d)", where, status, attempts)
            return WebhookOutcome(state="delivered", at=at, status=status)
        if status is not None:
            error = f"HTTP {status}"
            if 300 <= status < 400:
                error += ": a redirect, not followed (point ROLLWISE_WEBHOOK_URLS at its target)"
            elif status == 410:
                error += " Gone: the receiver wants no more deliveries"
        delay = self.policy.delay(attempts, self._rng)
        if status in (429, 503) and retry_after is not None:
            delay = min(max(delay, retry_after), self.policy.cap)
        spent = now + delay - delivery.created > self.policy.give_up_after
        if status == 410 or attempts >= self.policy.max_attempts or spent:
            logger.error("rollwise: %s failed for good after %d attempts: %s", where, attempts,
                         error)  # fmt: skip
            return WebhookOutcome(state="failed", at=at, status=status, error=error)
        logger.warning("rollwise: %s attempt %d failed: %s; next in %.1f s", where, attempts,
                       error, delay)  # fmt: skip
        return WebhookOutcome(
            state="pending", at=at, status=status, error=error, next_attempt=now + delay
        )

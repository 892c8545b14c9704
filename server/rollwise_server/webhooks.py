"""Outgoing notifications: JSON POSTs signed with HMAC-SHA256, retried with backoff.

The body has a Slack-compatible ``text`` field beside the structured event, so a Slack incoming
webhook shows a readable line. ``X-Rollwise-Signature: sha256=<hex>`` is the HMAC of the raw
body with the shared secret, so a receiver can check where it came from. Delivery runs on a
background thread and never delays the controller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from rollwise.backoff import backoff_delay

__all__ = ["Webhooks", "sign"]

logger = logging.getLogger("rollwise.server")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, urls: Sequence[str], secret: str, attempts: int = 4) -> None:
        self.urls = [u for u in urls if u]
        self.secret = secret
        self.attempts = attempts
        self.delivered = 0
        self.failed = 0

    def notify(self, event: str, text: str, payload: Mapping[str, Any]) -> list[threading.Thread]:
        """Send to every URL in the background; returns the threads (tests join them)."""
        body = json.dumps({"event": event, "text": text, **payload}, sort_keys=True).encode()
        threads = []
        for url in self.urls:
            thread = threading.Thread(target=self._deliver, args=(url, body), daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _deliver(self, url: str, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Rollwise-Signature": sign(self.secret, body),
        }
        for attempt in range(self.attempts):
            try:
                response = requests.post(url, data=body, headers=headers, timeout=5)
                if response.status_code < 500:
                    self.delivered += 1
                    if response.status_code >= 400:
                        logger.warning(
                            "rollwise: webhook %s refused: %s", url, response.status_code
                        )
                    return
            except requests.RequestException as exc:
                logger.warning("rollwise: webhook %s failed: %s", url, exc)
            time.sleep(backoff_delay(attempt, base=0.5, cap=10.0))
        self.failed += 1
        logger.error("rollwise: webhook %s gave up after %d attempts", url, self.attempts)

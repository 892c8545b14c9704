"""Throttling of failed authentications, per client address.

An address that fails authentication ``limit`` times within a minute (counted from its first
failure) is refused every request that needs a token — good token or not — with 429 until that
minute is over. Refusing the good tokens too is what makes guessing useless: a throttled
address learns nothing about the tokens it tries. Forbidden requests (a valid token whose role
may not do something) are not failures.

Memory is bounded: at most ``max_addresses`` windows are kept (a ``cachetools.TTLCache``, the
least recently used evicted first; 100,000 take about 36 MB), so an attacker with many
addresses cannot grow it, only dilute it. An IPv6 client is counted by its /64 network, since
one host usually holds a whole /64. The address is the one uvicorn gives: the TCP peer, or the
client in ``X-Forwarded-For`` when the peer is a proxy it trusts (``FORWARDED_ALLOW_IPS``,
``127.0.0.1`` by default); behind any other proxy every request seems to come from the proxy.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections.abc import Callable

import attrs
import cachetools

__all__ = ["WINDOW_SECONDS", "AuthThrottle", "client_key"]

WINDOW_SECONDS = 60.0


def client_key(host: str | None) -> str:
    """The address that failures are counted against: the host, an IPv6 host's /64."""
    if host is None:
        return "unknown"
    if ":" not in host:  # IPv4, which the server gives in its one dotted form, or not an IP
        return host
    return _ipv6_key(host)


@functools.lru_cache(maxsize=4096)
def _ipv6_key(host: str) -> str:
    """Parsing costs ~25 µs, hence the cache of recent clients (a pure function's memo)."""
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


@attrs.define
class _Window:
    started: float
    failures: int = 0


class AuthThrottle:
    """Counts failures per address in fixed one-minute windows. Used from the event loop
    only (no lock): ``retry_after`` before a token is looked up, ``failed`` after a 401."""

    def __init__(
        self,
        limit: int,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._windows: cachetools.TTLCache[str, _Window] = cachetools.TTLCache(
            maxsize=max_addresses, ttl=WINDOW_SECONDS, timer=clock
        )

    def __len__(self) -> int:
        return len(self._windows)

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or ``None`` if it is not throttled."""
        window = self._windows.get(address)
        if window is None or window.failures < self.limit:
            return None
        left = window.started + WINDOW_SECONDS - self._clock()
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, address: str) -> bool:
        """Count a failure; ``True`` for the one that reaches the limit (log it, once)."""
        window = self._windows.get(address)
        if window is None:
            # The TTLCache drops the entry a minute after this insertion: a fixed window.
            window = self._windows[address] = _Window(self._clock())
        window.failures += 1
        return window.failures == self.limit

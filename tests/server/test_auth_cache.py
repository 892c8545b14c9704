"""The token cache never keeps a lookup that a revocation overtook (a race once kept it)."""

from __future__ import annotations

import threading

import pytest

from rollwise_server.auth import TokenAuth, hash_secret
from rollwise_server.errors import Unauthorized
from rollwise_server.storage.base import TokenRecord

RECORD = TokenRecord("tok_1", "n", "viewer", None, "t", "x", None, "alice", None, None)


class SlowStore:
    """A store whose lookup waits, so that a revocation lands between read and cache write
    (a race no real request can be made to hit on purpose)."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.proceed = threading.Event()

    def token_by_hash(self, digest: str) -> TokenRecord | None:
        self.reading.set()
        assert self.proceed.wait(10)
        return RECORD


def test_a_lookup_overtaken_by_a_revocation_is_not_cached() -> None:
    store = SlowStore()
    auth = TokenAuth(store, cache_seconds=60)  # type: ignore[arg-type]
    header = "Bearer rw_secret"
    looked_up = []
    worker = threading.Thread(target=lambda: looked_up.append(auth.lookup(header)))
    worker.start()
    assert store.reading.wait(10)
    auth.forget()  # the token is revoked while the lookup reads the old row
    store.proceed.set()
    worker.join(10)
    assert looked_up[0].token_id == RECORD.id  # that request was already in flight
    assert auth.cached(header) is None  # but nothing stale stays for the next one
    assert hash_secret("rw_secret") not in auth._cache


def test_forget_tokens_drops_only_those() -> None:
    store = SlowStore()
    store.proceed.set()
    auth = TokenAuth(store, cache_seconds=60)  # type: ignore[arg-type]
    auth.lookup("Bearer rw_a")
    assert auth.cached_token_ids() == ["tok_1"]
    auth.forget_tokens(["tok_other"])
    assert auth.cached("Bearer rw_a") is not None
    auth.forget_tokens(["tok_1"])
    assert auth.cached("Bearer rw_a") is None
    with pytest.raises(Unauthorized):
        auth.cached("Basic rw_a")


class SteppingClock:
    """A clock that moves ``step`` seconds each time it is read: the expiry of a cached
    lookup can fall between two readings within one lookup (seen once in a soak, a valid
    token answered 401, under a server slowed by tracing)."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("start", [i / 10 for i in range(10)])
def test_a_lookup_expiring_while_it_is_read_is_looked_up_again_never_401(start: float) -> None:
    store = SlowStore()
    store.proceed.set()
    clock = SteppingClock(0.1)
    auth = TokenAuth(store, cache_seconds=1, timer=clock)  # type: ignore[arg-type]
    header = "Bearer rw_a"
    assert auth.lookup(header).token_id == RECORD.id
    clock.now += start  # the lookups below read the clock at every phase of the expiry
    for _ in range(30):
        assert auth.lookup(header).token_id == RECORD.id
        cached = auth.cached(header)
        assert cached is None or cached.token_id == RECORD.id

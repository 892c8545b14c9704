"""API tokens and roles.

A token is ``rw_`` followed by 32 random bytes (URL-safe base64). Only its SHA-256 is stored;
lookups compare hashes with ``hmac.compare_digest``. Roles grant permissions:

| role | permissions |
| --- | --- |
| ``sdk`` | read its one environment's rules, post its events |
| ``viewer`` | read flags, segments, history, audit, environments |
| ``editor`` | viewer + change flags and segments |
| ``approver`` | viewer + approve rollout stages |
| ``admin`` | everything, including tokens and environments |

A role applies to the environments the token lists (``envs``), or to all of them; tokens,
creating environments and the audit log of every environment need a token for all of them.
A token belongs to a person (``owner``): the audit log records the owner and the token id, and
the two-person rule compares owners.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Literal

import attrs
import cachetools

from rollwise_server.errors import Forbidden, Unauthorized
from rollwise_server.storage.base import Actor, Store, TokenRecord

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "Principal",
    "TokenAuth",
    "bearer_secret",
    "hash_secret",
    "new_secret",
    "require",
    "same_person",
]

Permission = Literal["sdk", "read", "write", "approve", "admin"]
ROLES = ("sdk", "viewer", "editor", "approver", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "sdk": frozenset({"sdk"}),
    "viewer": frozenset({"read"}),
    "editor": frozenset({"read", "write"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset({"read", "write", "approve", "admin"}),
}


def new_secret() -> str:
    return "rw_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse_time(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@attrs.frozen
class Principal:
    """Who is calling: the token's id, name, owner (the person: the audit actor), role, the
    environments the role applies to (``None``: all) and when the token expires."""

    token_id: str
    name: str
    role: str
    env: str | None
    owner: str = ""
    envs: tuple[str, ...] | None = None
    expires_at: float | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.owner or self.name, self.token_id, self.owner or self.name)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    @classmethod
    def of(cls, record: TokenRecord) -> Principal:
        return cls(
            record.id, record.name, record.role, record.env, record.owner, record.envs,
            _parse_time(record.expires_at),
        )  # fmt: skip


def same_person(owner: str) -> str:
    """The form in which owners are compared: ``Alice``, `` alice``, full-width letters
    and ``alice`` with a zero-width space are one person (NFKC, format characters dropped,
    spaces collapsed, case folded)."""
    folded = unicodedata.normalize("NFKC", owner)
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", " ".join(visible.split()).casefold())


def bearer_secret(authorization: str | None) -> str:
    """The secret of an ``Authorization: Bearer <token>`` header; any other scheme is 401."""
    if not authorization:
        raise Unauthorized("a bearer token is required (Authorization: Bearer rw_...)")
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


class TokenAuth:
    """Resolves bearer tokens to principals, with a short cache in front of the store.

    The scheme and the expiry are checked on every request, cached or not; a revocation made
    in this process drops the cache at once, one made by another replica (or ``--db``) within
    about a second (``app._end_tokens`` asks the database which cached tokens ended)."""

    def __init__(
        self, store: Store, cache_seconds: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._cache: cachetools.TTLCache[str, Principal | None] = cachetools.TTLCache(
            maxsize=10_000, ttl=cache_seconds, timer=timer
        )
        self._lock = threading.Lock()
        self._generation = 0

    def forget(self) -> None:
        """Drop cached lookups (after a token is revoked in this process). A lookup that read
        the database before this call does not put its (stale) answer in the cache."""
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def forget_tokens(self, token_ids: Collection[str]) -> None:
        """Drop the cached lookups of these tokens (revoked or expired, maybe elsewhere)."""
        ended = set(token_ids)
        with self._lock:
            self._generation += 1
            for digest, principal in list(self._cache.items()):
                if principal is not None and principal.token_id in ended:
                    del self._cache[digest]

    def cached_token_ids(self) -> list[str]:
        """The tokens with a cached lookup: the ones a revocation elsewhere must reach."""
        with self._lock:
            return sorted({p.token_id for p in self._cache.values() if p is not None})

    def _cached(self, digest: str) -> tuple[bool, Principal | None]:
        """Whether a lookup is cached, and what it found (``None``: no usable token), read in
        one step: ``digest in cache`` then ``cache.get`` read the clock twice, and an entry
        that expired between them was taken for a cached "no such token", a 401."""
        try:
            return True, self._cache[digest]
        except KeyError:
            return False, None

    @staticmethod
    def _valid(principal: Principal | None) -> Principal:
        if principal is None:
            raise Unauthorized("unknown or revoked token")
        if principal.expired():
            raise Unauthorized("the token expired")
        return principal

    def lookup(self, authorization: str | None) -> Principal:
        """Runs in a worker thread on a cache miss (it reads the database)."""
        digest = hash_secret(bearer_secret(authorization))
        with self._lock:
            generation = self._generation
            found, principal = self._cached(digest)
        if not found:
            record = self._store.token_by_hash(digest)
            usable = record is not None and record.revoked_at is None
            principal = Principal.of(record) if record is not None and usable else None
            with self._lock:
                if generation == self._generation:  # no revocation since the read
                    self._cache[digest] = principal
        return self._valid(principal)

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal if the lookup is cached (no database access), else ``None``.

        A malformed header, an unknown, revoked or expired token raise ``Unauthorized``."""
        digest = hash_secret(bearer_secret(authorization))
        with self._lock:
            found, principal = self._cached(digest)
        return self._valid(principal) if found else None


def require(
    principal: Principal,
    permission: Permission,
    env: str | None = None,
    *,
    everywhere: bool = False,
) -> Principal:
    """Raise ``Forbidden`` unless ``principal`` may do ``permission`` (in ``env``; with
    ``everywhere``, only a token whose role applies to every environment may)."""
    if permission not in PERMISSIONS.get(principal.role, frozenset()):
        raise Forbidden(f"role {principal.role!r} may not do this (needs {permission!r})")
    if principal.role == "sdk" and env is not None and principal.env != env:
        raise Forbidden(f"this SDK token is for environment {principal.env!r}, not {env!r}")
    if principal.envs is not None:
        if everywhere:
            raise Forbidden(
                f"this token's role applies only to {', '.join(principal.envs)}; "
                "this needs a token for every environment"
            )
        if env is not None and env not in principal.envs:
            raise Forbidden(
                f"this token's role {principal.role!r} applies to "
                f"{', '.join(principal.envs)}, not to {env!r}"
            )
    return principal

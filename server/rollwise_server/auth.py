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
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

import attrs
import cachetools

from rollwise_server.errors import Forbidden, Unauthorized
from rollwise_server.storage.base import Store, TokenRecord

__all__ = ["PERMISSIONS", "ROLES", "Principal", "TokenAuth", "hash_secret", "new_secret"]

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


@attrs.frozen
class Principal:
    """Who is calling: the token's id, name (the audit actor), role and environment."""

    token_id: str
    name: str
    role: str
    env: str | None

    @property
    def actor(self) -> str:
        return self.name


class TokenAuth:
    """Resolves bearer tokens to principals, with a short cache in front of the store."""

    def __init__(self, store: Store, cache_seconds: float) -> None:
        self._store = store
        self._cache: cachetools.TTLCache[str, TokenRecord | None] = cachetools.TTLCache(
            maxsize=10_000, ttl=cache_seconds
        )

    def forget(self) -> None:
        """Drop cached lookups (after a token is revoked in this process)."""
        self._cache.clear()

    def lookup(self, authorization: str | None) -> Principal:
        """Runs in a worker thread on a cache miss (it reads the database)."""
        if not authorization:
            raise Unauthorized("a bearer token is required (Authorization: Bearer rw_...)")
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        digest = hash_secret(secret.strip())
        try:
            record = self._cache[digest]
        except KeyError:
            record = self._store.token_by_hash(digest)
            self._cache[digest] = record
        if record is None or record.revoked_at is not None:
            raise Unauthorized("unknown or revoked token")
        return Principal(record.id, record.name, record.role, record.env)

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal if the lookup is cached (no database access), else ``None``."""
        if not authorization:
            return None
        _, _, secret = authorization.partition(" ")
        record = self._cache.get(hash_secret(secret.strip()))
        if record is None or record.revoked_at is not None:
            return None
        return Principal(record.id, record.name, record.role, record.env)


def require(principal: Principal, permission: Permission, env: str | None = None) -> Principal:
    """Raise ``Forbidden`` unless ``principal`` may do ``permission`` (in ``env``)."""
    if permission not in PERMISSIONS.get(principal.role, frozenset()):
        raise Forbidden(f"role {principal.role!r} may not do this (needs {permission!r})")
    if principal.role == "sdk" and env is not None and principal.env != env:
        raise Forbidden(f"this SDK token is for environment {principal.env!r}, not {env!r}")
    return principal

"""The Standard Webhooks signature (https://www.standardwebhooks.com, spec version 1.0.0).

Every attempt carries ``webhook-id`` (the message id, the same on every retry and endpoint: a
receiver's idempotency key), ``webhook-timestamp`` (the attempt's Unix time in seconds: a
receiver refuses old ones, so a captured request cannot be replayed later) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. The key is the
secret ``whsec_<base64>`` decoded: 24 to 64 random bytes, as the specification asks. Any
Standard Webhooks library verifies it (Python: ``standardwebhooks``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from rollwise.errors import ConfigurationError

__all__ = [
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "new_secret",
    "parse_secret",
    "signature",
    "signed_headers",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def parse_secret(text: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; a ``ConfigurationError`` that says what is
    wrong (never quoting the secret) otherwise."""
    where = "ROLLWISE_WEBHOOK_SECRET"
    form = (
        f"a Standard Webhooks secret: {SECRET_PREFIX} and the base64 of {MIN_SECRET_BYTES} to "
        f"{MAX_SECRET_BYTES} random bytes (`rollwise webhooks secret` makes one)"
    )
    if not text:
        raise ConfigurationError(f"{where}: required when ROLLWISE_WEBHOOK_URLS is set; {form}")
    if not text.startswith(SECRET_PREFIX):
        raise ConfigurationError(f"{where}: must be {form}")
    encoded = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{where}: the part after {SECRET_PREFIX} is not base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ConfigurationError(f"{where}: decodes to {len(key)} bytes; it must be {form}")
    return key


def new_secret(size: int = 32) -> str:
    """A fresh secret: ``whsec_`` and ``size`` random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{message_id}.{timestamp}.{body}">``."""
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt (signed anew each time: the timestamp is the attempt's)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body),
    }

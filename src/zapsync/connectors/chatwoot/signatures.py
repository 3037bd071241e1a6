"""Checking a webhook Chatwoot signed (CHATWOOT.md §6, lib/webhooks/trigger.rb).

`X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Chatwoot-Timestamp>.<raw body>")>`,
keyed with the webhook's (or API inbox's) `secret`, not the inbox's `hmac_token` (the mix-up
of issue #13809). The body is the exact bytes received: parsing and re-serializing it would
change what was signed. A timestamp more than five minutes away from now, either side, is
refused, so a captured delivery cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
TOLERANCE_SECONDS = 300
_PREFIX = "sha256="


class SignatureRefused(ValueError):
    """The webhook is not provably Chatwoot's, or is too old; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value Chatwoot sends for `body` at `timestamp`."""
    signed = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Return the delivery's timestamp when `signature` is Chatwoot's for `body`; raise
    SignatureRefused otherwise. Headers are passed as received (None when absent)."""
    if not secret:
        raise SignatureRefused("no webhook secret is configured to check signatures with")
    if not signature:
        raise SignatureRefused(f"missing {SIGNATURE_HEADER}")
    if not timestamp:
        raise SignatureRefused(f"missing {TIMESTAMP_HEADER}")
    stamp = timestamp.strip()
    if not stamp.isascii() or not stamp.isdigit():
        raise SignatureRefused(f"{TIMESTAMP_HEADER} is not unix seconds")
    sent_at = int(stamp)
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise SignatureRefused(f"{TIMESTAMP_HEADER} is more than {tolerance} s from now")
    given = signature.strip()
    if not given.lower().startswith(_PREFIX):
        raise SignatureRefused(f"{SIGNATURE_HEADER} is not sha256=<hex>")
    wanted = expected_signature(secret, stamp, body)
    # Constant-time, and on bytes: a non-ASCII header must not raise instead of refusing.
    if not hmac.compare_digest(
        _PREFIX.encode() + given[len(_PREFIX) :].lower().encode("utf-8", "replace"),
        wanted.encode("ascii"),
    ):
        raise SignatureRefused(f"{SIGNATURE_HEADER} does not match the body")
    return sent_at

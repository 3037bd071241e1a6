"""Who may deliver a webhook: one rule for every gateway (and for Chatwoot's later).

Every credential a delivery presents must be right, and it must present one: the gateway's
signature (checked against the session's signing key) and the session secret (the
`X-Zapsync-Token` header or `?token=`). A signature that is there and wrong is refused
whatever else is right; a right one is refused once it is older than the replay window,
where the gateway signs a time. Why a delivery was refused is a `Refusal`, so logs and
metrics count the same reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from zapsync.providers.base import Gateway, Signature
from zapsync.security.tokens import secrets_equal
from zapsync.services.errors import Refusal, WebhookRefused
from zapsync.services.ingest.secrets import WebhookSecrets

TOKEN_HEADER = "x-zapsync-token"
TOKEN_PARAM = "token"


# One answer for an unknown session and for every wrong credential: a caller without the
# secret learns nothing about which session ids exist.
NOT_YOURS = "unknown session, or a wrong webhook secret or signature"


def authenticate(
    gateway: Gateway,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: bytes,
    secrets: WebhookSecrets,
    *,
    window: timedelta,
    now: datetime,
) -> None:
    """Raise WebhookRefused unless the delivery proves it comes from the session's gateway.
    `headers` are lower-cased."""
    check = gateway.verify_webhook(headers, body, secrets.signing_key)
    if check.signature is Signature.INVALID:
        raise WebhookRefused(Refusal.BAD_SIGNATURE, NOT_YOURS)
    presented = [v for v in (headers.get(TOKEN_HEADER), query.get(TOKEN_PARAM)) if v is not None]
    if any(not secrets_equal(given, secrets.secret) for given in presented):
        raise WebhookRefused(Refusal.WRONG_SECRET, NOT_YOURS)
    if check.signature is Signature.ABSENT and not presented:
        raise WebhookRefused(Refusal.WRONG_SECRET, NOT_YOURS)
    if check.signed_at is not None and abs(now - check.signed_at) > window:
        raise WebhookRefused(
            Refusal.EXPIRED_SIGNATURE,
            f"the delivery was signed at {check.signed_at.isoformat()}, outside the "
            f"{int(window.total_seconds())} s replay window (ZAPSYNC_WEBHOOK_REPLAY_WINDOW)",
        )

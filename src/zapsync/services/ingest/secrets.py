"""A session's webhook credentials, encrypted at rest like the gateway keys.

Two of them, so the signing key never travels: the *secret* goes with every delivery (a
custom header, or `?token=` for gateways that cannot send headers), and the *signing key* is
only handed to gateways that sign (WAHA's `hmac.key`). Were they one value, anyone who saw one
delivery could sign the next.

Rows written before migration 0003 hold the secret in clear (at most 64 characters, where a
Fernet token is always longer) and no signing key: the gateway was told to sign with the
secret itself. They keep working as they are; start-up seals their secret
(`seal_legacy_secrets`), and their signing key stays the old shared one until the webhook is
registered again.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from zapsync.runtime.context import AppContext
from zapsync.security.crypto import Cipher
from zapsync.security.tokens import new_webhook_secret
from zapsync.store.models import Session
from zapsync.store.sessions import sessions_with_short_secrets

log = structlog.get_logger(__name__)

LEGACY_MAX_LENGTH = 64  # the old String(64) column; Fernet tokens are at least 100 characters


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    secret: str  # travels with each delivery
    signing_key: str  # what the gateway signs with; never sent


def is_sealed(stored: str) -> bool:
    return len(stored) > LEGACY_MAX_LENGTH


def new_secrets(cipher: Cipher, session: Session) -> WebhookSecrets:
    """Give a new session its own secret and signing key (stored encrypted)."""
    fresh = WebhookSecrets(secret=new_webhook_secret(), signing_key=new_webhook_secret())
    session.webhook_secret_encrypted = cipher.encrypt_text(fresh.secret)
    session.webhook_signing_key_encrypted = cipher.encrypt_text(fresh.signing_key)
    return fresh


def secrets_of(cipher: Cipher, session: Session) -> WebhookSecrets:
    stored = session.webhook_secret_encrypted
    secret = cipher.decrypt_text(stored) if is_sealed(stored) else stored
    key = session.webhook_signing_key_encrypted
    return WebhookSecrets(secret=secret, signing_key=cipher.decrypt_text(key) if key else secret)


async def seal_legacy_secrets(ctx: AppContext) -> int:
    """Encrypt the secrets still stored in clear (rows from before 0003); how many were."""
    async with ctx.db.session() as db:
        rows = await sessions_with_short_secrets(db, LEGACY_MAX_LENGTH)
        for session in rows:
            session.webhook_secret_encrypted = ctx.cipher.encrypt_text(
                session.webhook_secret_encrypted
            )
        await db.commit()
    if rows:
        log.info("webhook secrets sealed", sessions=len(rows))
    return len(rows)

"""The gateway adapter of a stored session (credentials decrypted only here)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.providers.base import Gateway
from zapsync.runtime.context import AppContext
from zapsync.store.models import Session


def sandbox_instance_name(session_id: int) -> str:
    return f"zapsync-{session_id}"


def gateway_for(ctx: AppContext, session: Session) -> Gateway:
    config = ctx.cipher.decrypt_json(session.config_encrypted)
    return ctx.gateways.build(session.provider, config, sandbox_instance_name(session.id))


async def release(db: AsyncSession) -> None:
    """End the open transaction before a gateway call (what it read stays loaded), so no
    lock and no pooled connection is held while the gateway answers: on SQLite every
    transaction holds the write lock, and webhooks would wait behind it."""
    await db.commit()

"""Sandbox sessions and world data for the message store and import tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import func, select

from tests.conftest import Tenant
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import SimChat, SimInstance, SimMessage
from zapsync.services.sessions.gateway import sandbox_instance_name
from zapsync.store.models import Contact, Conversation, Message, PendingAck, Session


async def sandbox_session(ctx: AppContext, tenant: Tenant, name: str = "Loja") -> int:
    """A connected `sandbox` session row, inserted directly."""
    async with ctx.db.session() as db:
        session = Session(
            organization_id=tenant.organization_id,
            created_by=tenant.user_id,
            name=name,
            provider="sandbox",
            gateway_key=f"sandbox:{name}",
            config_encrypted=ctx.cipher.encrypt_json({}),
            webhook_secret_encrypted=ctx.cipher.encrypt_text("hook-secret"),
            status="connected",
            check_failures=0,
            heal_attempts=0,
        )
        db.add(session)
        await db.commit()
        return session.id


def instance_of(ctx: AppContext, session_id: int) -> SimInstance:
    name = sandbox_instance_name(session_id)
    return ctx.world.get(name) or ctx.world.create(name)


def person_chats(inst: SimInstance) -> Iterator[SimChat]:
    for chat in inst.chats.values():
        if not chat.is_group and chat.jid != "status@broadcast":
            yield chat


def messages_since(chat: SimChat, since: datetime | None) -> list[SimMessage]:
    floor = since.timestamp() if since else 0
    return [m for m in chat.messages if m.timestamp >= floor]


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def row_counts(ctx: AppContext) -> dict[str, int]:
    async with ctx.db.session() as db:
        return {
            model.__tablename__: int(await db.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Contact, Conversation, Message, PendingAck)
        }

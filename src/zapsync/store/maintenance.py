"""Queries of the maintenance jobs: which conversations went quiet, and resolving them. Each
takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Conversation

OPEN_STATUSES = ("open", "pending")


async def quiet_conversations(
    db: AsyncSession, cutoff: datetime, *, organization_id: int | None
) -> list[tuple[int, int]]:
    """(id, organization id) of open or pending conversations created before `cutoff` with
    no message since, by id. A helpdesk channel's conversation (no session) keeps the
    helpdesk's status: resolving it here would contradict the helpdesk, which owns it."""
    query = select(Conversation.id, Conversation.organization_id).where(
        Conversation.session_id.is_not(None),
        Conversation.status.in_(OPEN_STATUSES),
        or_(Conversation.last_message_at.is_(None), Conversation.last_message_at < cutoff),
        Conversation.created_at < cutoff,
    )
    if organization_id is not None:
        query = query.where(Conversation.organization_id == organization_id)
    rows = await db.execute(query.order_by(Conversation.id))
    return [(conv_id, org_id) for conv_id, org_id in rows.all()]


async def resolve_conversations(db: AsyncSession, ids: Collection[int]) -> None:
    if ids:
        await db.execute(
            update(Conversation).where(Conversation.id.in_(list(ids))).values(status="resolved")
        )

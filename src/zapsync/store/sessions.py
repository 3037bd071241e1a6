"""Queries of the `sessions` table for the webhook path."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Session


async def provider_of(db: AsyncSession, session_id: int) -> str | None:
    """The session's provider, None when no such session exists."""
    found: str | None = await db.scalar(select(Session.provider).where(Session.id == session_id))
    return found


async def sessions_by_id(db: AsyncSession, ids: Iterable[int]) -> dict[int, Session]:
    found = await db.scalars(select(Session).where(Session.id.in_(sorted(set(ids)))))
    return {s.id: s for s in found.all()}

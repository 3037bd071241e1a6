"""Queries of the `outbox` table for the writers that queue work in it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import OutboxItem


def queue_item(
    db: AsyncSession,
    *,
    organization_id: int,
    session_id: int | None,
    message_id: int | None,
    kind: str,
    payload: dict[str, Any],
    next_attempt_at: datetime,
) -> OutboxItem:
    """A new pending item on the caller's unit of work, due at `next_attempt_at`."""
    item = OutboxItem(
        organization_id=organization_id,
        session_id=session_id,
        message_id=message_id,
        kind=kind,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=next_attempt_at,
    )
    db.add(item)
    return item

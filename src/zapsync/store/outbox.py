"""Queries of the `outbox` table: queueing, claiming with a lease, and each item's outcome.

Every statement is keyed by `kind`, so a connector's jobs (Chatwoot's pushes) share the
queue, its lease and its per-session order with the sends, each worker serving its kinds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from zapsync.domain.gateway import Ack
from zapsync.store.models import Message, OutboxItem
from zapsync.store.types import utcnow
from zapsync.store.upsert import table_of

outbox = table_of(OutboxItem)
messages = table_of(Message)


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


async def due_items(db: AsyncSession, kind: str, now: datetime, limit: int) -> list[Any]:
    """`(id, session_id)` of due items in queue order, leaving out those queued behind a
    not-yet-due item (a retry waiting, or one in flight) of the same session."""
    earlier = aliased(OutboxItem)
    held_back = exists().where(
        earlier.kind == kind,
        earlier.status == "pending",
        earlier.session_id == OutboxItem.session_id,
        earlier.id < OutboxItem.id,
        earlier.next_attempt_at > now,
    )
    stmt = (
        select(OutboxItem.id, OutboxItem.session_id)
        .where(
            OutboxItem.kind == kind,
            OutboxItem.status == "pending",
            OutboxItem.next_attempt_at <= now,
            ~held_back,
        )
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())


async def nearest_pending(db: AsyncSession, kind: str, now: datetime) -> datetime | None:
    """When the next not-yet-due item of `kind` falls due (a retry, or a lease's end)."""
    return await db.scalar(
        select(func.min(OutboxItem.next_attempt_at)).where(
            OutboxItem.kind == kind,
            OutboxItem.status == "pending",
            OutboxItem.next_attempt_at > now,
        )
    )


async def claim(db: AsyncSession, item_id: int, lease: timedelta) -> Any | None:
    """Take a due item for one attempt: attempts + 1 and `next_attempt_at` at the lease's end,
    so no other worker takes it meanwhile. None when another worker got it first."""
    now = utcnow()
    stmt = (
        update(outbox)
        .where(
            outbox.c.id == item_id,
            outbox.c.status == "pending",
            outbox.c.next_attempt_at <= now,
        )
        # `last_error` is cleared while in flight: a set one marks a retry that waits, the
        # only kind `hurry_session` may hurry.
        .values(
            attempts=outbox.c.attempts + 1,
            next_attempt_at=now + lease,
            last_error=None,
            updated_at=now,
        )
        .returning(
            outbox.c.id,
            outbox.c.attempts,
            outbox.c.session_id,
            outbox.c.message_id,
            outbox.c.payload,
        )
    )
    return (await db.execute(stmt)).first()


async def mark_done(db: AsyncSession, item_id: int) -> None:
    await db.execute(
        update(outbox)
        .where(outbox.c.id == item_id)
        .values(status="done", last_error=None, updated_at=utcnow())
    )


async def schedule_retry(db: AsyncSession, item_id: int, at: datetime, reason: str) -> None:
    await db.execute(
        update(outbox)
        .where(outbox.c.id == item_id, outbox.c.status == "pending")
        .values(next_attempt_at=at, last_error=reason, updated_at=utcnow())
    )


async def mark_failed(db: AsyncSession, item_id: int, reason: str) -> None:
    await db.execute(
        update(outbox)
        .where(outbox.c.id == item_id)
        .values(status="failed", last_error=reason, updated_at=utcnow())
    )


async def hurry_session(db: AsyncSession, kind: str, session_id: int) -> int:
    """The session's items waiting out a retry delay are due now (those in flight are left
    alone); how many."""
    now = utcnow()
    result = await db.execute(
        update(outbox)
        .where(
            outbox.c.session_id == session_id,
            outbox.c.kind == kind,
            outbox.c.status == "pending",
            outbox.c.last_error.is_not(None),
            outbox.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def earlier_echo(
    db: AsyncSession, message: Message, *, kind: str, local_prefix: str
) -> Any | None:
    """`(pmid, ack)` of the gateway's echo of `message` stored since it was queued, if an
    earlier attempt reached the gateway after all: same conversation, type and text, and
    not a message zapsync queued itself."""
    ours = exists().where(OutboxItem.message_id == Message.id, OutboxItem.kind == kind)
    stmt = (
        select(Message.provider_message_id.label("pmid"), Message.ack)
        .where(
            Message.conversation_id == message.conversation_id,
            Message.direction == "out",
            Message.id != message.id,
            Message.created_at >= message.created_at,
            Message.type == message.type,
            Message.body.is_not_distinct_from(message.body),
            Message.caption.is_not_distinct_from(message.caption),
            ~Message.provider_message_id.startswith(local_prefix),
            ~ours,
        )
        .order_by(Message.id)
        .limit(1)
    )
    return (await db.execute(stmt)).first()


async def fail_pending_message(db: AsyncSession, message_id: int) -> Message | None:
    """A send that will not go: a still-pending message shows `failed`; the row, re-read."""
    await db.execute(
        update(messages)
        .where(messages.c.id == message_id, messages.c.ack == Ack.PENDING.value)
        .values(ack=Ack.FAILED.value)
    )
    return await db.scalar(
        select(Message).where(Message.id == message_id).execution_options(populate_existing=True)
    )

"""The outbox is a queue of work by kind (`gateway.send` today; `chatwoot.*` next): rows that
must reach something outside, surviving restarts and outages. Whoever queues wakes the worker
on the same unit of work: once the transaction commits, this process's outbox worker takes a
pass (`runtime/outbox_worker.py`); another process's finds the row at its next poll."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.store import outbox as outbox_store
from zapsync.store.models import OutboxItem
from zapsync.store.types import utcnow

QUEUED: Final = "outbox_queued"


def wake_on_commit(db: AsyncSession, organization_id: int, kind: str) -> None:
    """Wake the outbox worker once `db` commits (nothing if it rolls back)."""
    publish_on_commit(db, Event(QUEUED, organization_id, {"kind": kind}))


def enqueue(
    db: AsyncSession,
    *,
    kind: str,
    organization_id: int,
    payload: dict[str, Any],
    session_id: int | None = None,
    message_id: int | None = None,
    due: datetime | None = None,
) -> OutboxItem:
    """Queue one item of `kind`, due now (or at `due`), and wake the worker on commit; the
    caller commits."""
    item = outbox_store.queue_item(
        db,
        organization_id=organization_id,
        session_id=session_id,
        message_id=message_id,
        kind=kind,
        payload=payload,
        next_attempt_at=due or utcnow(),
    )
    wake_on_commit(db, organization_id, kind)
    return item

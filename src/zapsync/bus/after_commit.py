"""Publish events only once their transaction committed, so no client ever sees a change
that was rolled back (Zulip's send_event_on_commit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from zapsync.bus.events import Event
from zapsync.bus.memory import EventBus

_KEY = "zapsync.pending_events"
_HOOKED = "zapsync.hooked"


def publish_on_commit(db: AsyncSession, bus: EventBus, event: Event) -> None:
    sync: Session = db.sync_session
    if not sync.info.get(_HOOKED):
        sync.info[_HOOKED] = True

        def _flush(session: Session) -> None:
            for pending in session.info.pop(_KEY, []):
                bus.publish(pending)

        def _drop(session: Session, *_: Any) -> None:
            session.info.pop(_KEY, None)

        sa_event.listen(sync, "after_commit", _flush)
        sa_event.listen(sync, "after_soft_rollback", _drop)
    sync.info.setdefault(_KEY, []).append(event)

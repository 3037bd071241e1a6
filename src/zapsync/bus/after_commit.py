"""Publish events only once their transaction committed, so no client ever sees a change
that was rolled back (Zulip's send_event_on_commit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from zapsync.bus.events import Event
from zapsync.store.db import PUBLISHER_KEY

_KEY = "zapsync.pending_events"
_HOOKED = "zapsync.hooked"


def publish_on_commit(db: AsyncSession, event: Event) -> None:
    """Queue `event` on the unit of work `db`: published to the bus the session was opened
    with (`Database(publisher=...)`) once it commits, dropped if it rolls back."""
    sync: Session = db.sync_session
    publisher = sync.info.get(PUBLISHER_KEY)
    if publisher is None:
        raise RuntimeError("this session was opened without a publisher: open it with ctx.db")
    if not sync.info.get(_HOOKED):
        sync.info[_HOOKED] = True

        def _flush(session: Session) -> None:
            for pending in session.info.pop(_KEY, []):
                publisher(pending)

        def _drop(session: Session, *_: Any) -> None:
            session.info.pop(_KEY, None)

        sa_event.listen(sync, "after_commit", _flush)
        sa_event.listen(sync, "after_soft_rollback", _drop)
    sync.info.setdefault(_KEY, []).append(event)

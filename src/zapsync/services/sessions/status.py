"""The one place a session's stored status changes: history row, fields, event after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.bus.memory import EventBus
from zapsync.domain.gateway import (
    HistoryArrived,
    MessageAcked,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    StatusChanged,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.store.models import Session, SessionStatusEvent
from zapsync.store.sessions import add_status_event
from zapsync.store.sessions import status_history as stored_history
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

# The status_reason of a session whose instance the gateway says does not exist.
GONE = "gone"


def is_gone(session: Session) -> bool:
    """The gateway said the instance does not exist: nothing will bring it back, so checks,
    healing and pairing leave the session alone until someone deletes it."""
    reason = session.status_reason or ""
    return session.status == SessionStatus.FAILED.value and reason.startswith(f"{GONE}:")


def moves_logged_out(status: SessionStatus, source: StatusSource) -> bool:
    """A logged-out session moves only with a new pairing: someone connects it (a manual
    change), or the gateway reports it connected. A stray `connecting` from a gateway's
    reconnect loop, or a QR nobody asked for, leaves it logged out."""
    return source is StatusSource.MANUAL or status is SessionStatus.CONNECTED


def counts_as_activity(what: SessionStatus | WebhookEvent) -> bool:
    """Activity is messages or a connected session, never status noise: a gateway that cannot
    reach WhatsApp reports `connecting` (and a new QR) every few seconds for ever, and that
    must not keep a dead session from cleanup (`last_activity_at`)."""
    if isinstance(what, SessionStatus):
        return what is SessionStatus.CONNECTED
    if isinstance(what, StatusChanged):
        return what.status is SessionStatus.CONNECTED
    if isinstance(what, HistoryArrived):
        return bool(what.messages)
    return isinstance(what, MessageReceived | MessageAcked | MessageEdited | MessageDeleted)


def session_status_payload(session: Session, **extra: Any) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "name": session.name,
        "status": session.status,
        "status_reason": session.status_reason,
        "phone": session.phone,
        **extra,
    }


def record_status(
    db: AsyncSession,
    bus: EventBus,
    session: Session,
    status: SessionStatus,
    source: StatusSource,
    *,
    reason: str | None = None,
    phone: str | None = None,
    at: datetime | None = None,
    reported_at: datetime | None = None,
    **event_extra: Any,
) -> bool:
    """Set `status` if it differs from the stored one; True when it changed.

    An unchanged status writes no history row, so a webhook delivered twice records one event.
    `reported_at` is the gateway's own time of the change, where it gives one: a report older
    than the last one applied is stale (a late retry, a replay, or one of two webhooks the
    gateway posted at once delivered last) and changes nothing, so a status the gateway has
    since left cannot come back until it reports it again. One of the same time applies
    (events of one instant arrive in the order the gateway sent them more often than not).
    A status sync passes no `reported_at`: the gateway's answer now always wins.
    """
    if is_stale(session, reported_at):
        log.info(
            "stale status event ignored",
            session_id=session.id,
            status=status.value,
            reported_at=reported_at.isoformat() if reported_at else None,
            newest_applied=session.status_event_at.isoformat() if session.status_event_at else None,
        )
        return False
    at = at or utcnow()
    if session.status == SessionStatus.LOGGED_OUT.value and not moves_logged_out(status, source):
        log.info(
            "status ignored: the session is logged out",
            session_id=session.id,
            to_status=status.value,
            source=source.value,
        )
        return False
    # Only a report applied sets the time later ones are judged by: a stray one the logged-out
    # session ignored must not make the next real pairing look stale.
    if reported_at is not None:
        session.status_event_at = reported_at
    if phone:
        session.phone = phone
    if session.status == status.value:
        if reason is not None and source is not StatusSource.CHECK:
            session.status_reason = reason
        return False
    previous = session.status
    add_status_event(
        db,
        session.id,
        organization_id=session.organization_id,
        from_status=previous,
        to_status=status.value,
        source=source.value,
        reason=reason,
        at=at,
    )
    session.status = status.value
    session.status_reason = reason
    if status is SessionStatus.CONNECTED:
        session.connected_at = at
        session.heal_attempts = 0
        session.next_heal_at = None
    if counts_as_activity(status):
        session.last_activity_at = at
    log.info(
        "session status changed",
        session_id=session.id,
        from_status=previous,
        to_status=status.value,
        source=source.value,
    )
    publish_on_commit(
        db,
        Event(
            "session_status",
            session.organization_id,
            session_status_payload(session, previous=previous, source=source.value, **event_extra),
        ),
    )
    return True


def is_stale(session: Session, reported_at: datetime | None) -> bool:
    newest = session.status_event_at
    return reported_at is not None and newest is not None and reported_at < newest


def record_attempt(
    db: AsyncSession,
    session: Session,
    source: StatusSource,
    reason: str,
    at: datetime | None = None,
) -> None:
    """A history row for something tried that did not (yet) change the status."""
    add_status_event(
        db,
        session.id,
        organization_id=session.organization_id,
        from_status=session.status,
        to_status=session.status,
        source=source.value,
        reason=reason,
        at=at or utcnow(),
    )


def record_gone(
    db: AsyncSession,
    bus: EventBus,
    session: Session,
    gateway_reason: str,
    *,
    at: datetime | None = None,
) -> bool:
    """The gateway says the instance does not exist (deleted outside zapsync): `failed`
    with its words and `action_required`; nothing retries it after this."""
    log.warning("gateway instance gone", session_id=session.id, reason=gateway_reason)
    return record_status(
        db,
        bus,
        session,
        SessionStatus.FAILED,
        StatusSource.CHECK,
        reason=f"{GONE}: the gateway says {gateway_reason}",
        at=at,
        action_required=True,
    )


async def status_history(
    db: AsyncSession, organization_id: int, session_id: int, *, before: int | None, limit: int
) -> list[SessionStatusEvent]:
    """The session's status history, newest first (the caller checked the session is the
    organization's)."""
    return await stored_history(db, organization_id, session_id, before=before, limit=limit)

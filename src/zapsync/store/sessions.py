"""Queries on sessions, their status history, webhook secrets and the relay queue
(`webhook_forwards`). Each takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.domain.status import SessionStatus
from zapsync.store.models import Session, SessionStatusEvent, WebhookForward


async def add_session(db: AsyncSession, session: Session) -> None:
    """Insert the session now, so it has its id (a clash raises IntegrityError)."""
    db.add(session)
    await db.flush()


async def session_by_id(db: AsyncSession, session_id: int) -> Session | None:
    return await db.get(Session, session_id)


async def organization_sessions(
    db: AsyncSession, organization_id: int, *, include_archived: bool
) -> list[Session]:
    query = select(Session).where(Session.organization_id == organization_id)
    if not include_archived:
        query = query.where(Session.archived_at.is_(None))
    return list((await db.scalars(query.order_by(Session.id))).all())


async def live_sessions(db: AsyncSession, *, provider: str | None = None) -> list[Session]:
    """Every session not archived (of one `provider`, when given), by id."""
    query = select(Session).where(Session.archived_at.is_(None))
    if provider is not None:
        query = query.where(Session.provider == provider)
    return list((await db.scalars(query.order_by(Session.id))).all())


async def live_session_scope(
    db: AsyncSession, session_id: int | None = None
) -> list[tuple[int, int, str]]:
    """(id, organization id, provider) of every session not archived, or of `session_id`."""
    query = select(Session.id, Session.organization_id, Session.provider).where(
        Session.archived_at.is_(None)
    )
    if session_id is not None:
        query = query.where(Session.id == session_id)
    return [(sid, org, provider) for sid, org, provider in (await db.execute(query)).all()]


async def live_session_id(db: AsyncSession, organization_id: int, provider: str) -> int | None:
    """The first live session of `provider` in the organization."""
    return await db.scalar(
        select(Session.id).where(
            Session.organization_id == organization_id,
            Session.provider == provider,
            Session.archived_at.is_(None),
        )
    )


async def count_live_created_by(db: AsyncSession, user_id: int) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(Session)
        .where(Session.created_by == user_id, Session.archived_at.is_(None))
    )
    return count or 0


async def session_with_gateway_key(
    db: AsyncSession, organization_id: int, keys: Sequence[str]
) -> int | None:
    """The id of the organization's session holding one of the gateway `keys`."""
    return await db.scalar(
        select(Session.id).where(
            Session.organization_id == organization_id, Session.gateway_key.in_(list(keys))
        )
    )


async def delete_session(db: AsyncSession, session_id: int) -> None:
    await db.execute(delete(Session).where(Session.id == session_id))


async def sessions_to_check(
    db: AsyncSession, organization_id: int | None, session_id: int | None
) -> list[Session]:
    """Live sessions whose gateway made the instance (not still `creating`), by id."""
    query = select(Session).where(
        Session.archived_at.is_(None), Session.status != SessionStatus.CREATING.value
    )
    if organization_id is not None:
        query = query.where(Session.organization_id == organization_id)
    if session_id is not None:
        query = query.where(Session.id == session_id)
    return list((await db.scalars(query.order_by(Session.id))).all())


async def sessions_by_ids(
    db: AsyncSession, ids: Collection[int], *, reload: bool = False
) -> list[Session]:
    """The sessions of `ids`; `reload` reads them again over what the session holds (another
    transaction may have written them meanwhile)."""
    if not ids:
        return []
    query = select(Session).where(Session.id.in_(list(ids)))
    if reload:
        query = query.execution_options(populate_existing=True)
    return list((await db.scalars(query)).all())


async def mark_checked(db: AsyncSession, ids: Collection[int], at: datetime) -> None:
    await db.execute(update(Session).where(Session.id.in_(list(ids))).values(status_checked_at=at))


async def idle_sessions(
    db: AsyncSession, cutoff: datetime, *, organization_id: int | None
) -> list[Session]:
    """Live sessions not connected, created before `cutoff` and with no activity since."""
    query = select(Session).where(
        Session.archived_at.is_(None),
        Session.status != SessionStatus.CONNECTED.value,
        Session.created_at < cutoff,
        or_(Session.last_activity_at.is_(None), Session.last_activity_at < cutoff),
    )
    if organization_id is not None:
        query = query.where(Session.organization_id == organization_id)
    return list((await db.scalars(query.order_by(Session.id))).all())


def add_status_event(
    db: AsyncSession,
    session_id: int,
    *,
    organization_id: int,
    from_status: str | None,
    to_status: str,
    source: str,
    reason: str | None,
    at: datetime,
) -> None:
    """A history row, written with the session's next flush."""
    db.add(
        SessionStatusEvent(
            session_id=session_id,
            organization_id=organization_id,
            from_status=from_status,
            to_status=to_status,
            source=source,
            reason=reason,
            at=at,
        )
    )


async def status_history(
    db: AsyncSession, organization_id: int, session_id: int, *, before: int | None, limit: int
) -> list[SessionStatusEvent]:
    """The session's history rows, newest first, older than the row `before` when given."""
    query = select(SessionStatusEvent).where(
        SessionStatusEvent.organization_id == organization_id,
        SessionStatusEvent.session_id == session_id,
    )
    if before is not None:
        query = query.where(SessionStatusEvent.id < before)
    query = query.order_by(SessionStatusEvent.id.desc()).limit(limit)
    return list((await db.scalars(query)).all())


async def delete_status_events_before(
    db: AsyncSession, cutoff: datetime, *, organization_id: int | None
) -> int:
    """Drop history rows older than `cutoff` (of one organization, when given); how many went."""
    stmt = delete(SessionStatusEvent).where(SessionStatusEvent.at < cutoff)
    if organization_id is not None:
        stmt = stmt.where(SessionStatusEvent.organization_id == organization_id)
    result = await db.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def sessions_with_short_secrets(db: AsyncSession, max_length: int) -> list[Session]:
    """Sessions whose stored webhook secret is at most `max_length` characters."""
    query = select(Session).where(func.length(Session.webhook_secret_encrypted) <= max_length)
    return list((await db.scalars(query)).all())


def queue_forward(db: AsyncSession, session_id: int, body: bytes) -> None:
    db.add(WebhookForward(session_id=session_id, body=body, status="pending", attempts=0))


async def due_forwards(
    db: AsyncSession, now: datetime, limit: int
) -> list[tuple[WebhookForward, Session]]:
    """Pending relays due by `now` with their sessions, oldest first, locked for this
    transaction (replicas share the queue: each takes rows no other is taking)."""
    rows = await db.execute(
        select(WebhookForward, Session)
        .join(Session, Session.id == WebhookForward.session_id)
        .where(WebhookForward.status == "pending", WebhookForward.next_attempt_at <= now)
        .order_by(WebhookForward.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookForward)
    )
    return [(item, session) for item, session in rows.all()]


async def forward_by_id(db: AsyncSession, forward_id: int) -> WebhookForward | None:
    return await db.get(WebhookForward, forward_id)


async def delete_forward(db: AsyncSession, forward_id: int) -> None:
    await db.execute(delete(WebhookForward).where(WebhookForward.id == forward_id))


async def next_forward_due(db: AsyncSession) -> datetime | None:
    return await db.scalar(
        select(WebhookForward.next_attempt_at)
        .where(WebhookForward.status == "pending")
        .order_by(WebhookForward.next_attempt_at)
        .limit(1)
    )


async def provider_of(db: AsyncSession, session_id: int) -> str | None:
    """The session's provider, None when no such session exists."""
    found: str | None = await db.scalar(select(Session.provider).where(Session.id == session_id))
    return found


async def sessions_by_id(db: AsyncSession, ids: Iterable[int]) -> dict[int, Session]:
    found = await db.scalars(select(Session).where(Session.id.in_(sorted(set(ids)))))
    return {s.id: s for s in found.all()}

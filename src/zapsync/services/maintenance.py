"""Maintenance jobs: archive long-dead sessions and close inactive conversations.

Nothing a user wrote or received is deleted: an archived session's conversations and
messages stay readable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.services.context import AppContext
from zapsync.services.runs import finish_run, start_run
from zapsync.services.sessions import archive_session
from zapsync.store.models import Conversation, Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)


async def cleanup_sessions(
    ctx: AppContext, *, organization_id: int | None = None, trigger: str = "manual"
) -> dict[str, Any]:
    """Archive sessions not connected and inactive for `session_cleanup_days`."""
    cutoff = utcnow() - timedelta(days=ctx.settings.session_cleanup_days)
    async with ctx.db.session() as db:
        run = await start_run(
            db, kind="cleanup-sessions", trigger=trigger, organization_id=organization_id
        )
        query = select(Session).where(
            Session.archived_at.is_(None),
            Session.status != SessionStatus.CONNECTED.value,
            Session.created_at < cutoff,
            or_(Session.last_activity_at.is_(None), Session.last_activity_at < cutoff),
        )
        if organization_id is not None:
            query = query.where(Session.organization_id == organization_id)
        archived: list[int] = []
        errors: list[str] = []
        for session in (await db.scalars(query)).all():
            outcome = await archive_session(
                ctx,
                db,
                session,
                reason=f"archived after {ctx.settings.session_cleanup_days} days inactive",
                source=StatusSource.MANUAL,
            )
            archived.append(session.id)
            errors.extend(f"session {session.id} {p}" for p in outcome.errors)
        report = {"archived": archived, "count": len(archived), "gateway_errors": errors}
        finish_run(run, synced=len(archived), updated=len(archived), errors=errors, report=report)
        await db.commit()
    log.info("cleanup sessions", archived=len(archived))
    return {**report, "run_id": run.id}


async def close_inactive_conversations(
    ctx: AppContext, *, organization_id: int | None = None, trigger: str = "manual"
) -> dict[str, Any]:
    """Resolve open or pending conversations with no message for `conversation_inactive_hours`."""
    cutoff = utcnow() - timedelta(hours=ctx.settings.conversation_inactive_hours)
    async with ctx.db.session() as db:
        run = await start_run(
            db,
            kind="close-inactive-conversations",
            trigger=trigger,
            organization_id=organization_id,
        )
        query = select(Conversation.id, Conversation.organization_id).where(
            Conversation.status.in_(("open", "pending")),
            or_(Conversation.last_message_at.is_(None), Conversation.last_message_at < cutoff),
            Conversation.created_at < cutoff,
        )
        if organization_id is not None:
            query = query.where(Conversation.organization_id == organization_id)
        rows = (await db.execute(query)).all()
        ids = [r.id for r in rows]
        if ids:
            await db.execute(
                update(Conversation).where(Conversation.id.in_(ids)).values(status="resolved")
            )
        for conv_id, org_id in rows:
            publish_on_commit(
                db,
                ctx.bus,
                Event(
                    "conversation_updated",
                    org_id,
                    {"id": conv_id, "status": "resolved", "reason": "inactive"},
                    conversation_id=conv_id,
                ),
            )
        report = {"closed": len(ids), "conversation_ids": ids[:1000]}
        finish_run(run, synced=len(ids), updated=len(ids), report=report)
        await db.commit()
    log.info("close inactive conversations", closed=len(ids))
    return {**report, "run_id": run.id}

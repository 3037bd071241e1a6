"""Maintenance jobs: archive long-dead sessions and close inactive conversations.

Nothing a user wrote or received is deleted: an archived session's conversations and
messages stay readable. Each run is recorded per organization (`services/runs.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.runtime.context import AppContext
from zapsync.services.runs import RunPart, record_runs, run_ids
from zapsync.services.sessions.lifecycle import archive_session
from zapsync.store.migrate import SAMPLED_ROWS
from zapsync.store.models import Conversation, Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)


async def cleanup_sessions(
    ctx: AppContext, *, organization_id: int | None = None, trigger: str = "manual"
) -> dict[str, Any]:
    """Archive sessions not connected and inactive for `session_cleanup_days`."""
    cutoff = utcnow() - timedelta(days=ctx.settings.session_cleanup_days)
    started_at = utcnow()
    async with ctx.db.session() as db:
        query = select(Session).where(
            Session.archived_at.is_(None),
            Session.status != SessionStatus.CONNECTED.value,
            Session.created_at < cutoff,
            or_(Session.last_activity_at.is_(None), Session.last_activity_at < cutoff),
        )
        if organization_id is not None:
            query = query.where(Session.organization_id == organization_id)
        parts: dict[int, RunPart] = {}
        for session in (await db.scalars(query.order_by(Session.id))).all():
            outcome = await archive_session(
                ctx,
                db,
                session,
                reason=f"archived after {ctx.settings.session_cleanup_days} days inactive",
                source=StatusSource.MANUAL,
            )
            part = parts.setdefault(session.organization_id, RunPart(report={"archived": []}))
            part.report["archived"].append(session.id)
            part.errors.extend(f"session {session.id} {p}" for p in outcome.errors)
        for part in parts.values():
            part.synced = part.updated = len(part.report["archived"])
            part.report.update(count=part.synced, gateway_errors=part.errors)
        runs = await record_runs(
            db,
            ctx.bus,
            kind="cleanup-sessions",
            trigger=trigger,
            started_at=started_at,
            organization_id=organization_id,
            parts=parts,
        )
        await db.commit()
    archived = [sid for part in parts.values() for sid in part.report["archived"]]
    errors = [error for part in parts.values() for error in part.errors]
    log.info("cleanup sessions", archived=len(archived))
    return {
        "archived": sorted(archived),
        "count": len(archived),
        "gateway_errors": errors,
        **run_ids(runs),
    }


async def close_inactive_conversations(
    ctx: AppContext, *, organization_id: int | None = None, trigger: str = "manual"
) -> dict[str, Any]:
    """Resolve open or pending conversations with no message for `conversation_inactive_hours`."""
    cutoff = utcnow() - timedelta(hours=ctx.settings.conversation_inactive_hours)
    started_at = utcnow()
    async with ctx.db.session() as db:
        query = select(Conversation.id, Conversation.organization_id).where(
            Conversation.status.in_(("open", "pending")),
            or_(Conversation.last_message_at.is_(None), Conversation.last_message_at < cutoff),
            Conversation.created_at < cutoff,
        )
        if organization_id is not None:
            query = query.where(Conversation.organization_id == organization_id)
        rows = (await db.execute(query.order_by(Conversation.id))).all()
        ids = [r.id for r in rows]
        if ids:
            await db.execute(
                update(Conversation).where(Conversation.id.in_(ids)).values(status="resolved")
            )
        closed: dict[int, list[int]] = {}
        for conv_id, org_id in rows:
            closed.setdefault(org_id, []).append(conv_id)
            publish_on_commit(
                db,
                Event(
                    "conversation_updated",
                    org_id,
                    {"id": conv_id, "status": "resolved", "reason": "inactive"},
                    conversation_id=conv_id,
                ),
            )
        parts = {
            org_id: RunPart(
                synced=len(mine),
                updated=len(mine),
                report={"closed": len(mine), "conversation_ids": mine[:1000]},
            )
            for org_id, mine in closed.items()
        }
        runs = await record_runs(
            db,
            ctx.bus,
            kind="close-inactive-conversations",
            trigger=trigger,
            started_at=started_at,
            organization_id=organization_id,
            parts=parts,
        )
        await db.commit()
    log.info("close inactive conversations", closed=len(ids))
    return {"closed": len(ids), "conversation_ids": ids[:1000], **run_ids(runs)}


async def optimize_database(ctx: AppContext) -> bool:
    """Refresh SQLite's planner statistics, sampled (`analysis_limit`: tens of milliseconds at
    a million messages, so the write lock it takes is short): SQLite never does it by itself,
    and its plans drift as tables grow (issue 12). PostgreSQL's autovacuum analyzes on its
    own. True when something ran."""
    if not ctx.db.is_sqlite:
        return False
    async with ctx.db.engine.connect() as conn:
        await conn.exec_driver_sql(f"PRAGMA analysis_limit={SAMPLED_ROWS}")
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    log.info("database statistics refreshed")
    return True

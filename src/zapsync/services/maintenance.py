"""Maintenance jobs: archive long-dead sessions and close inactive conversations.

Nothing a user wrote or received is deleted: an archived session's conversations and
messages stay readable. Each run is recorded per organization (`services/runs.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.domain.status import StatusSource
from zapsync.runtime.context import AppContext
from zapsync.services.runs import RunPart, record_runs, run_ids
from zapsync.services.sessions.lifecycle import WebhookUrl, archive_session
from zapsync.store.maintenance import quiet_conversations, resolve_conversations
from zapsync.store.migrate import refresh_statistics
from zapsync.store.sessions import delete_status_events_before, idle_sessions
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

# A session's status history is for "what happened lately": a gateway's reconnect loop writes
# a row every few seconds for as long as it lasts, so rows older than this are dropped.
STATUS_HISTORY_DAYS = 90


async def cleanup_sessions(
    ctx: AppContext,
    *,
    webhook_url: WebhookUrl,
    organization_id: int | None = None,
    trigger: str = "manual",
) -> dict[str, Any]:
    """Archive sessions not connected and inactive for `session_cleanup_days`."""
    cutoff = utcnow() - timedelta(days=ctx.settings.session_cleanup_days)
    started_at = utcnow()
    async with ctx.db.session() as db:
        parts: dict[int, RunPart] = {}
        for session in await idle_sessions(db, cutoff, organization_id=organization_id):
            outcome = await archive_session(
                ctx,
                db,
                session,
                reason=f"archived after {ctx.settings.session_cleanup_days} days inactive",
                source=StatusSource.MANUAL,
                webhook_url=webhook_url,
            )
            part = parts.setdefault(session.organization_id, RunPart(report={"archived": []}))
            part.report["archived"].append(session.id)
            part.errors.extend(f"session {session.id} {p}" for p in outcome.errors)
        for part in parts.values():
            part.synced = part.updated = len(part.report["archived"])
            part.report.update(count=part.synced, gateway_errors=part.errors)
        trimmed = await delete_status_events_before(
            db, utcnow() - timedelta(days=STATUS_HISTORY_DAYS), organization_id=organization_id
        )
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
    log.info("cleanup sessions", archived=len(archived), status_events_trimmed=trimmed)
    return {
        "archived": sorted(archived),
        "count": len(archived),
        "status_events_trimmed": trimmed,
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
        rows = await quiet_conversations(db, cutoff, organization_id=organization_id)
        ids = [conv_id for conv_id, _ in rows]
        await resolve_conversations(db, ids)
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
    await refresh_statistics(ctx.db)
    log.info("database statistics refreshed")
    return True

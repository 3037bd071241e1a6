"""Queries of `sync_runs` for the conversation import: its latest run per session, and its
progress saved with every batch.

Each function takes the caller's session and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Session, SyncRun
from zapsync.store.upsert import table_of

sync_runs = table_of(SyncRun)
SAVED = ("synced", "created", "updated", "skipped", "errors", "error_messages", "report", "cursor")
# Saved with every batch: built once.
_SAVE_RUN = (
    update(sync_runs)
    .where(sync_runs.c.id == bindparam("b_run"))
    .values({name: bindparam(f"b_{name}", type_=sync_runs.c[name].type) for name in SAVED})
)


async def save_progress(db: AsyncSession, run_id: int, values: Mapping[str, Any]) -> None:
    """Write the run's counters, report and cursor (`SAVED`, all of them)."""
    await db.execute(_SAVE_RUN, {"b_run": run_id, **{f"b_{k}": v for k, v in values.items()}})


async def latest_run(db: AsyncSession, session_id: int, kind: str) -> SyncRun | None:
    return await db.scalar(
        select(SyncRun)
        .where(SyncRun.session_id == session_id, SyncRun.kind == kind)
        .order_by(SyncRun.id.desc())
        .limit(1)
    )


async def latest_runs_with_status(
    db: AsyncSession,
    kind: str,
    statuses: Sequence[str],
    *,
    organization_id: int | None = None,
    session_id: int | None = None,
) -> list[SyncRun]:
    """Each live session's latest run of `kind` when it is in one of `statuses`, in id order:
    of `session_id` when given, else of every connected session (of `organization_id`)."""
    latest = (
        select(func.max(SyncRun.id))
        .where(SyncRun.kind == kind, SyncRun.session_id.is_not(None))
        .group_by(SyncRun.session_id)
    )
    stmt = (
        select(SyncRun)
        .join(Session, Session.id == SyncRun.session_id)
        .where(
            SyncRun.id.in_(latest),
            SyncRun.status.in_(tuple(statuses)),
            Session.archived_at.is_(None),
        )
        .order_by(SyncRun.id)
    )
    if organization_id is not None:
        stmt = stmt.where(Session.organization_id == organization_id)
    if session_id is not None:
        stmt = stmt.where(SyncRun.session_id == session_id)
    else:
        stmt = stmt.where(Session.status == "connected")
    return list((await db.scalars(stmt)).all())

"""Queries on sync runs: the record of every job run, its counts, errors and report. Each
takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import SyncRun


async def add_runs(db: AsyncSession, runs: Sequence[SyncRun]) -> None:
    """Insert the runs now, so each has its id."""
    db.add_all(runs)
    await db.flush()


async def last_run(db: AsyncSession, kind: str, organization_id: int) -> SyncRun | None:
    """The organization's latest run of `kind`: never another's, nor an unowned one."""
    query = select(SyncRun).where(SyncRun.kind == kind, SyncRun.organization_id == organization_id)
    return await db.scalar(query.order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1))

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


async def run_by_id(db: AsyncSession, run_id: int) -> SyncRun | None:
    return await db.get(SyncRun, run_id)


async def last_integration_run(db: AsyncSession, integration_id: int, kind: str) -> SyncRun | None:
    """The integration's latest run of `kind`."""
    query = select(SyncRun).where(SyncRun.integration_id == integration_id, SyncRun.kind == kind)
    return await db.scalar(query.order_by(SyncRun.id.desc()).limit(1))


async def organization_runs(
    db: AsyncSession,
    organization_id: int,
    *,
    integration_id: int | None = None,
    kind: str | None = None,
    kinds: Sequence[str] = (),
    limit: int = 50,
) -> list[SyncRun]:
    """The organization's runs, newest first, narrowed to an integration or kinds."""
    query = select(SyncRun).where(SyncRun.organization_id == organization_id)
    if integration_id is not None:
        query = query.where(SyncRun.integration_id == integration_id)
    if kind is not None:
        query = query.where(SyncRun.kind == kind)
    if kinds:
        query = query.where(SyncRun.kind.in_(list(kinds)))
    query = query.order_by(SyncRun.id.desc()).limit(limit)
    return list((await db.scalars(query)).all())


async def stale_running_runs(db: AsyncSession, kinds: Sequence[str]) -> list[SyncRun]:
    """Runs of these kinds still marked running (their runner may have died)."""
    query = select(SyncRun).where(SyncRun.status == "running", SyncRun.kind.in_(list(kinds)))
    return list((await db.scalars(query)).all())

"""Sync runs: every job run is recorded with its counts, errors and report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import SyncRun
from zapsync.store.types import utcnow


async def start_run(
    db: AsyncSession,
    *,
    kind: str,
    trigger: str,
    organization_id: int | None = None,
    session_id: int | None = None,
) -> SyncRun:
    run = SyncRun(
        kind=kind,
        trigger=trigger,
        organization_id=organization_id,
        session_id=session_id,
        status="running",
        started_at=utcnow(),
        synced=0,
        created=0,
        updated=0,
        skipped=0,
        errors=0,
        error_messages=[],
        report={},
        cursor={},
    )
    db.add(run)
    await db.flush()
    return run


def finish_run(
    run: SyncRun,
    *,
    synced: int = 0,
    created: int = 0,
    updated: int = 0,
    skipped: int = 0,
    errors: list[str] | None = None,
    report: dict[str, Any] | None = None,
    status: str | None = None,
) -> None:
    errors = errors or []
    run.synced, run.created, run.updated, run.skipped = synced, created, updated, skipped
    run.errors = len(errors)
    run.error_messages = errors[:100]
    run.report = report or {}
    run.status = status or ("partial" if errors else "succeeded")
    run.finished_at = utcnow()


async def last_run(db: AsyncSession, kind: str, organization_id: int | None) -> SyncRun | None:
    query = select(SyncRun).where(SyncRun.kind == kind)
    if organization_id is not None:
        query = query.where(
            (SyncRun.organization_id == organization_id) | SyncRun.organization_id.is_(None)
        )
    return await db.scalar(query.order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1))


def run_summary(run: SyncRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "kind": run.kind,
        "trigger": run.trigger,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "counts": {
            "synced": run.synced,
            "created": run.created,
            "updated": run.updated,
            "skipped": run.skipped,
            "errors": run.errors,
        },
        "error_messages": run.error_messages,
    }

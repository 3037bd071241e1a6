"""Sync runs: every job run is recorded with its counts, errors and report, per organization.

A run is an organization's: a job run for one organization records one run for it, and a run
for every organization (the scheduler, the cron route, the CLI) records one run per
organization it touched, so an organization's counts and errors (gateway URLs, instance
names) are never shown to another. An all-organization run that touched none is recorded
without an organization, which no organization sees. Each recorded run is announced to its
organization as a `sync_run` event once committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.bus.memory import EventBus
from zapsync.store import runs as store
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
    await store.add_runs(db, [run])
    return run


@dataclass
class RunPart:
    """What one job run did in one organization: the counts and report of its recorded run."""

    synced: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


MAX_ERROR_MESSAGES = 100


def write_part(run: SyncRun, part: RunPart) -> None:
    """The run's counts, first error messages and report: what it has done so far."""
    run.synced, run.created, run.updated, run.skipped = (
        part.synced,
        part.created,
        part.updated,
        part.skipped,
    )
    run.errors = len(part.errors)
    run.error_messages = part.errors[:MAX_ERROR_MESSAGES]
    run.report = dict(part.report)


def finish_run(run: SyncRun, part: RunPart, *, status: str | None = None) -> None:
    """The run done: its counts, and failed, partial (some errors) or succeeded."""
    write_part(run, part)
    run.status = status or ("partial" if part.errors else "succeeded")
    run.finished_at = utcnow()


async def record_runs(
    db: AsyncSession,
    bus: EventBus,
    *,
    kind: str,
    trigger: str,
    started_at: datetime,
    organization_id: int | None,
    parts: dict[int, RunPart],
    session_id: int | None = None,
) -> list[SyncRun]:
    """Record a finished job run, one row per organization (see the module's docstring), and
    announce each on commit. `parts` holds what the run did, by organization; the caller
    commits."""
    if organization_id is not None:
        chosen: dict[int | None, RunPart] = {organization_id: parts.get(organization_id, RunPart())}
    elif parts:
        chosen = dict(sorted(parts.items()))
    else:
        chosen = {None: RunPart()}
    runs = []
    for org_id, part in chosen.items():
        run = SyncRun(
            kind=kind,
            trigger=trigger,
            organization_id=org_id,
            session_id=session_id,
            started_at=started_at,
            cursor={},
        )
        finish_run(run, part)
        runs.append(run)
    await store.add_runs(db, runs)
    for run in runs:
        announce_run(db, bus, run)
    return runs


def announce_run(db: AsyncSession, bus: EventBus, run: SyncRun) -> None:
    """`sync_run` to the run's organization once the transaction commits."""
    if run.organization_id is not None:
        publish_on_commit(db, Event("sync_run", run.organization_id, run_json(run)))


def run_ids(runs: list[SyncRun]) -> dict[str, Any]:
    """The report's reference to its recorded runs: `run_id` when there is one."""
    return {"run_id": runs[0].id if len(runs) == 1 else None, "run_ids": [r.id for r in runs]}


async def last_run(db: AsyncSession, kind: str, organization_id: int) -> SyncRun | None:
    """The organization's latest run of `kind`: never another's, nor an unowned one."""
    return await store.last_run(db, kind, organization_id)


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


def run_json(run: SyncRun) -> dict[str, Any]:
    """The `sync_run` event's shape: the summary, the run's session and its report."""
    summary = run_summary(run) or {}
    return {**summary, "session_id": run.session_id, "report": dict(run.report or {})}

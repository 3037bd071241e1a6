"""One pull, push or backfill of an integration, recorded as a sync run while it goes.

A run holds the integration's lease for its kind (one runner at a time across processes; a
second request is refused with the running one's id), writes its counts and the last page it
finished with every batch (so the inbox shows progress, a `sync_run` event each time), and
ends `succeeded`, `partial` (some records refused) or `failed` (the run could not go on). A run
cut off (a crash, a kill) is found still `running` by the next one, marked failed, and the new
run resumes after the last page it finished."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.runtime.context import AppContext
from zapsync.services.errors import Conflict
from zapsync.services.runs import (
    MAX_ERROR_MESSAGES,
    RunPart,
    announce_run,
    finish_run,
    start_run,
    write_part,
)
from zapsync.services.work_lease import WorkLease
from zapsync.store import runs as store
from zapsync.store.models import Integration, SyncRun
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

INTERRUPTED = "interrupted: the process running it stopped before it finished"


@dataclass
class Counts(RunPart):
    """A run's counts as it goes: a job's part, with its errors kept short."""

    def error(self, message: str) -> None:
        self.errors.append(message[:500])

    def count(self, key: str, n: int = 1) -> None:
        self.report[key] = int(self.report.get(key, 0)) + n


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    status: str
    synced: int
    created: int
    updated: int
    skipped: int
    errors: int
    error_messages: list[str]
    report: dict[str, Any]


class IntegrationRun:
    """`async with IntegrationRun(...) as run:` then `run.counts`, `await run.checkpoint(db,
    cursor)` inside each batch's transaction, and `run.result` after the block."""

    def __init__(self, ctx: AppContext, integration: Integration, kind: str, trigger: str) -> None:
        self.ctx = ctx
        self.integration_id = integration.id
        self.organization_id = integration.organization_id
        self.kind = kind
        self.trigger = trigger
        self.counts = Counts()
        self.resume_from: dict[str, Any] = {}  # the cursor of the run this one picks up
        self.run_id = 0
        self.result: RunResult | None = None
        self._lease = WorkLease(
            ctx,
            f"integration:{integration.id}:{kind}",
            busy=f"a {kind.replace('_', ' ')} run of this integration is running",
        )

    async def __aenter__(self) -> IntegrationRun:
        await self._lease.acquire(wait=False)
        try:
            async with self.ctx.db.session() as db:
                previous = await store.last_integration_run(db, self.integration_id, self.kind)
                if previous is not None and previous.status == "running":
                    # We hold the lease: whoever ran it is gone.
                    _mark_interrupted(previous)
                if previous is not None and previous.status == "failed":
                    cursor = dict(previous.cursor or {})
                    if not cursor.get("complete"):
                        self.resume_from = cursor
                run = await start_run(
                    db, kind=self.kind, trigger=self.trigger, organization_id=self.organization_id
                )
                run.integration_id = self.integration_id
                run.cursor = {"resumed_from": previous.id} if self.resume_from and previous else {}
                await db.commit()
                self.run_id = run.id
        except BaseException:
            await self._lease.release()
            raise
        log.info("integration run started", run_id=self.run_id, kind=self.kind,
                 integration_id=self.integration_id, resume=self.resume_from or None)  # fmt: skip
        return self

    async def checkpoint(self, db: AsyncSession, cursor: dict[str, Any]) -> None:
        """Write the counts so far and where the run got to, on the caller's transaction; the
        `sync_run` event goes out when it commits."""
        if self._lease.lost:
            raise Conflict("another runner took this run's lease")
        run = await store.run_by_id(db, self.run_id)
        if run is None:
            return
        self._write(run, status="running", cursor=cursor)
        announce_run(db, self.ctx.bus, run)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                self.counts.error(f"the run stopped: {_reason(exc)}")
            async with self.ctx.db.session() as db:
                run = await store.run_by_id(db, self.run_id)
                if run is not None:
                    status = "failed" if exc is not None else None
                    cursor = dict(run.cursor or {})
                    if exc is None:
                        cursor["complete"] = True
                    self._write(run, status=status, cursor=cursor, finished=True)
                    announce_run(db, self.ctx.bus, run)
                    await db.commit()
                    self.result = _result_of(run)
        finally:
            await self._lease.release()
        log.info("integration run finished", run_id=self.run_id, kind=self.kind,
                 status=self.result.status if self.result else None,
                 created=self.counts.created, updated=self.counts.updated,
                 skipped=self.counts.skipped, errors=len(self.counts.errors))  # fmt: skip

    def _write(
        self, run: SyncRun, *, status: str | None, cursor: dict[str, Any], finished: bool = False
    ) -> None:
        run.cursor = {**(run.cursor or {}), **cursor}
        if finished:
            finish_run(run, self.counts, status=status)
        else:
            write_part(run, self.counts)
            run.status = "running"


async def close_interrupted_runs(ctx: AppContext, kinds: tuple[str, ...]) -> int:
    """At start-up: runs of these kinds left `running` by a process that stopped are failed
    (the next run resumes them); how many. A run another live process holds is left alone."""
    closed = 0
    async with ctx.db.reads() as db:
        found = await store.stale_running_runs(db, kinds)
        stale = [(r.id, r.integration_id, r.kind) for r in found]
    for run_id, integration_id, kind in stale:
        if integration_id is None:
            continue
        # The probe writes its own row: no transaction of ours may be open meanwhile (on
        # SQLite it would wait on our own write lock).
        probe = WorkLease(ctx, f"integration:{integration_id}:{kind}", busy="")
        try:
            await probe.acquire(wait=False)
        except Conflict:
            continue  # alive elsewhere
        try:
            async with ctx.db.session() as db:
                run = await store.run_by_id(db, run_id)
                if run is not None and run.status == "running":
                    _mark_interrupted(run)
                    await db.commit()
                    closed += 1
        finally:
            await probe.release()
    return closed


def _mark_interrupted(run: SyncRun) -> None:
    run.status = "failed"
    run.finished_at = utcnow()
    run.error_messages = [*(run.error_messages or []), INTERRUPTED][:MAX_ERROR_MESSAGES]
    run.errors = (run.errors or 0) + 1
    log.warning("integration run found interrupted", run_id=run.id, kind=run.kind)


def _result_of(run: SyncRun) -> RunResult:
    return RunResult(
        run_id=run.id,
        status=run.status,
        synced=run.synced,
        created=run.created,
        updated=run.updated,
        skipped=run.skipped,
        errors=run.errors,
        error_messages=list(run.error_messages or []),
        report=dict(run.report or {}),
    )


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "detail", None) or str(exc)
    return f"{type(exc).__name__}: {reason}" if not getattr(exc, "reason", None) else str(reason)

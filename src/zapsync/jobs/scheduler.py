"""APScheduler inside `zapsync serve` (embedded mode): it decides *when* jobs run, in
`ZAPSYNC_TIMEZONE`."""

from __future__ import annotations

from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from zapsync.jobs.definitions import JOBS, JobSpec
from zapsync.runtime.context import AppContext

log = structlog.get_logger(__name__)


async def _scheduled(ctx: AppContext, spec: JobSpec) -> None:
    try:
        report = await spec.func(ctx, None, "schedule")
        log.info("scheduled job finished", job=spec.name, run_id=report.get("run_id"))
    except Exception:
        log.exception("scheduled job failed", job=spec.name)


def build_scheduler(ctx: AppContext) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=ctx.settings.zone)
    for spec in JOBS.values():
        scheduler.add_job(
            _scheduled,
            spec.trigger(ctx),
            args=(ctx, spec),
            id=spec.name,
            name=spec.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
        )
    return scheduler


def next_run_times(
    ctx: AppContext, scheduler: AsyncIOScheduler | None, now: datetime
) -> dict[str, datetime | None]:
    """When each job runs next, in `ZAPSYNC_TIMEZONE`: from the live scheduler, or computed
    from its trigger."""
    result: dict[str, datetime | None] = {}
    for name, spec in JOBS.items():
        job = scheduler.get_job(name) if scheduler is not None and scheduler.running else None
        if job is not None:
            nxt = job.next_run_time
        else:
            nxt = spec.trigger(ctx).get_next_fire_time(None, now)
        result[name] = nxt.astimezone(ctx.settings.zone) if nxt is not None else None
    return result

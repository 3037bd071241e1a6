"""The scheduled jobs: what runs, and when. The functions live in `services/`; this module
only names them and their schedules (DESIGN.md rule 5).

A job takes the organization it runs for: an admin's run from the API touches only that
organization; `None` (the scheduler, the cron route, the CLI) runs for every organization.
Schedules keep their hour in `ZAPSYNC_TIMEZONE` (a daily job at 02:00 there)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from zapsync.runtime.context import AppContext
from zapsync.runtime.urls import webhook_urls
from zapsync.services.imports.importer import import_pending_retries
from zapsync.services.inbound_media_cleanup import prune_inbound_media
from zapsync.services.integrations.scheduled_pull import pull_every_integration
from zapsync.services.maintenance import (
    cleanup_sessions,
    close_inactive_conversations,
    optimize_database,
)
from zapsync.services.sessions.status_sync import apply_status_sync
from zapsync.settings import Settings

JobFunc = Callable[[AppContext, int | None, str], Awaitable[dict[str, Any]]]


async def run_status_sync(
    ctx: AppContext, organization_id: int | None, trigger: str
) -> dict[str, Any]:
    report = await apply_status_sync(ctx, organization_id=organization_id, trigger=trigger)
    return report.as_dict()


async def run_cleanup(ctx: AppContext, organization_id: int | None, trigger: str) -> dict[str, Any]:
    # Archiving takes zapsync's webhook off the instance: the gateway knows it by its URL.
    report = await cleanup_sessions(
        ctx,
        webhook_url=webhook_urls(ctx.settings),
        organization_id=organization_id,
        trigger=trigger,
    )
    report["inbound_media_removed"] = await prune_inbound_media(ctx, organization_id)
    if organization_id is None:
        # The nightly pass of the whole database also refreshes SQLite's statistics.
        report["database_optimized"] = await optimize_database(ctx)
    return report


async def run_close_inactive(
    ctx: AppContext, organization_id: int | None, trigger: str
) -> dict[str, Any]:
    return await close_inactive_conversations(ctx, organization_id=organization_id, trigger=trigger)


async def run_import_retries(
    ctx: AppContext, organization_id: int | None, trigger: str
) -> dict[str, Any]:
    # Each retried import records its own run, in its session's organization.
    reports = await import_pending_retries(ctx, organization_id=organization_id)
    return {"retried": len(reports), "runs": [asdict(r) for r in reports]}


async def run_chatwoot_pull(
    ctx: AppContext, organization_id: int | None, trigger: str
) -> dict[str, Any]:
    return await pull_every_integration(ctx, organization_id, trigger)


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    func: JobFunc
    schedule: str  # a human description
    # The crontab in ZAPSYNC_TIMEZONE: the one definition both schedulers read (APScheduler
    # embedded, Procrastinate's periodic tasks scaled out).
    cron: Callable[[Settings], str]

    def trigger(self, ctx: AppContext) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron(ctx.settings), timezone=ctx.settings.zone)


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "status-sync",
            "Reconcile every session's stored status with its gateway; heal silent drops.",
            run_status_sync,
            "every 5 minutes",
            lambda s: f"*/{s.status_sync_interval_minutes} * * * *",
        ),
        JobSpec(
            "cleanup-sessions",
            "Archive sessions not connected and inactive for 30 days; forget inbound media not "
            "viewed for 30 days; refresh SQLite's statistics.",
            run_cleanup,
            "daily at 02:00",
            lambda s: "0 2 * * *",
        ),
        JobSpec(
            "close-inactive-conversations",
            "Resolve conversations with no message for 24 hours.",
            run_close_inactive,
            "hourly",
            lambda s: "0 * * * *",
        ),
        JobSpec(
            "import-retries",
            "Retry conversation imports that found nothing yet or were interrupted.",
            run_import_retries,
            "every 2 minutes",
            lambda s: "*/2 * * * *",
        ),
        JobSpec(
            "chatwoot-pull",
            "Pull what changed in each Chatwoot integration's contacts (webhooks can be missed).",
            run_chatwoot_pull,
            "every 15 minutes",
            lambda s: f"*/{s.chatwoot_pull_minutes} * * * *",
        ),
    )
}

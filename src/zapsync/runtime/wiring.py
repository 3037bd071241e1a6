"""Starts and stops what runs beside the use cases, the same way for `zapsync serve` (the
FastAPI lifespan), the CLI's commands and a future `zapsync worker`.

Subscribers always: a session that becomes connected is imported (`services/imports/
triggers.py`), a conversation read sends its receipts. Workers when asked (`serve`, a
worker): the webhook batcher, the sandbox pump, the outbox worker, the webhook forwarder, the
resume of imports a stopped runner left cut off, the closing of integration runs it left
`running`; the scheduler when asked too. A CLI command
starts the subscribers only, and `settle()`s before it exits, so what its work set off (the
import of a session it found connected) is finished, not cut off."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from zapsync.jobs.queue import JobQueue
from zapsync.jobs.scheduler import build_scheduler
from zapsync.runtime.context import AppContext
from zapsync.runtime.outbox_worker import OutboxWorker
from zapsync.runtime.sandbox_events import SandboxEventPump
from zapsync.runtime.urls import webhook_urls
from zapsync.runtime.webhook_batches import WebhookBatcher
from zapsync.services.imports.importer import resume_cut_off_imports
from zapsync.services.imports.triggers import watch_connections
from zapsync.services.inbox.read_receipts import watch_reads
from zapsync.services.ingest.forwarding import ForwardRunner
from zapsync.services.integrations.sync import KINDS as INTEGRATION_RUN_KINDS
from zapsync.services.integrations.sync_runs import close_interrupted_runs
from zapsync.services.sessions.lifecycle import restore_sandbox_instances


class Runtime:
    """The process's subscribers and workers; `start()` once, `stop()` once."""

    def __init__(self, ctx: AppContext, *, workers: bool = True, scheduler: bool = False) -> None:
        self.ctx = ctx
        self.workers = workers
        self.webhooks = WebhookBatcher(ctx)
        self.sandbox_pump = SandboxEventPump(ctx)
        self.forwards = ForwardRunner(ctx)
        self.scaled_out = ctx.settings.jobs == "procrastinate"
        # Scaled out, Procrastinate's periodic tasks fire the schedules, once for all processes.
        wants_scheduler = scheduler and not self.scaled_out
        self.scheduler: AsyncIOScheduler | None = build_scheduler(ctx) if wants_scheduler else None
        self.queue: JobQueue | None = JobQueue(ctx) if self.scaled_out else None
        # Scaled out, the outbox's passes are the workers' jobs: this process defers them.
        self.outbox = OutboxWorker(ctx, defer=self.queue.defer_outbox if self.queue else None)

    async def start(self) -> None:
        ctx = self.ctx
        if self.queue is not None:
            await self.queue.open()
            ctx.defer_import = self.queue.defer_import
        watch_connections(ctx)
        watch_reads(ctx)
        if self.workers:
            self.webhooks.start()
            self.sandbox_pump.start()
            await restore_sandbox_instances(ctx, webhook_urls(ctx.settings))
            ctx.tasks.spawn(resume_cut_off_imports(ctx), name="import-resume")
            ctx.tasks.spawn(
                close_interrupted_runs(ctx, INTEGRATION_RUN_KINDS), name="integration-runs-closed"
            )
            self.outbox.start()
            self.forwards.start()
        if self.scheduler is not None:
            self.scheduler.start()

    async def settle(self) -> None:
        """Wait until nothing set off is left: events in delivery and the work they started
        (which may publish more)."""
        ctx = self.ctx
        while ctx.bus.busy or ctx.tasks.busy:
            await ctx.bus.drain()
            await ctx.tasks.drain()

    async def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.workers:
            await self.outbox.stop()
            await self.forwards.stop()
            await self.webhooks.stop()
            await self.sandbox_pump.stop()
        if self.queue is not None:
            await self.queue.close()

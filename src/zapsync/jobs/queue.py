"""Procrastinate, when `ZAPSYNC_JOBS=procrastinate`: the same jobs as the embedded mode, run by
`zapsync worker` processes on PostgreSQL (DESIGN.md "Scale").

- Every scheduled job of `jobs/definitions.py` is a periodic task with the same crontab
  (converted from ZAPSYNC_TIMEZONE to UTC, which Procrastinate's cron reads): however many
  workers run, Procrastinate defers one job per period.
- A session's import is a task with a queueing lock (one waits at most) and a lock (two never
  run at once, on any worker); a failed one is retried with backoff.
- The task functions are the embedded mode's; they run with the worker's context.
- Outbox deliveries (WhatsApp sends, the Chatwoot mirror): a pass over one outbox kind is a
  task with a lock per kind, so one pass of a kind runs at a time across workers and each
  session's items keep their order (`services/outbox/delivery.py`); the serving processes
  defer a pass where the embedded mode wakes its outbox worker (`runtime/outbox_worker.py`).
  A pass that leaves items waiting (a retry, a lease) defers the next at their time, and a
  periodic pass every minute finds what nobody deferred.
- Every minute (more often when ZAPSYNC_JOBS_STALLED_SECONDS is under 30), the jobs of a
  worker whose heartbeat stopped for ZAPSYNC_JOBS_STALLED_SECONDS (killed, its machine lost)
  are queued again for another.

`serve` in this mode defers instead of running (`runtime/wiring.py`); the Procrastinate schema
is created by `zapsync db upgrade` (migration 0012)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import procrastinate
import structlog
from procrastinate.app import WorkerOptions
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status

from zapsync.jobs.definitions import JOBS, JobSpec
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings
from zapsync.store.job_queue import jobs_by_task_and_status

log = structlog.get_logger(__name__)

IMPORT_TASK = "import-conversations"
OUTBOX_TASK = "deliver-outbox"
OUTBOX_POLL_TASK = "outbox-poll"
STALLED_TASK = "retry-stalled-jobs"
RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=5)
ERROR_PAUSE_SECONDS = 1.0

# The context of the worker (or serving process) the tasks run in.
_context: ContextVar[AppContext] = ContextVar("zapsync_worker_context")


def libpq_url(database_url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg://…` as the `postgresql://…` libpq reads."""
    scheme, rest = database_url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def utc_cron(cron: str, zone: ZoneInfo, now: datetime | None = None) -> str:
    """A crontab of ZAPSYNC_TIMEZONE as the same times in UTC (fixed hours moved by the
    zone's current offset; minutes and steps unchanged)."""
    minute, hour, *rest = cron.split()
    offset = (now or datetime.now(UTC)).astimezone(zone).utcoffset()
    if not hour.isdigit() or offset is None:
        return cron
    total = int(hour) * 60 - int(offset.total_seconds() // 60)
    if minute.isdigit():
        total += int(minute)
        minute = str(total % 60)
    return " ".join([minute, str((total // 60) % 24), *rest])


def stalled_cron(stalled_seconds: int) -> str:
    """How often stalled jobs are looked for: every minute, or (a short stall period, as in
    tests) twice per period, with the seconds field Procrastinate's cron accepts."""
    if stalled_seconds >= 30:
        return "* * * * *"
    return f"* * * * * */{max(stalled_seconds // 2, 1)}"


# How often a worker looks for jobs that fell due: a job deferred for now wakes it at once
# (LISTEN/NOTIFY), one scheduled for later (an outbox retry in a second or two) does not.
FETCH_EVERY_SECONDS = 1.0


def worker_options(settings: Settings) -> WorkerOptions:
    """The heartbeat, stall and polling periods every worker of the app uses."""
    stalled = float(settings.jobs_stalled_seconds)
    return WorkerOptions(
        update_heartbeat_interval=stalled / 3,
        stalled_worker_timeout=stalled,
        fetch_job_polling_interval=FETCH_EVERY_SECONDS,
    )


def build_app(settings: Settings) -> procrastinate.App:
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=libpq_url(settings.database_url)),
        worker_defaults=worker_options(settings),
    )
    for spec in JOBS.values():
        _periodic(app, settings, spec)
    stalled_seconds = settings.jobs_stalled_seconds

    @app.periodic(cron=stalled_cron(stalled_seconds), periodic_id=STALLED_TASK)
    @app.task(name=STALLED_TASK, queue="periodic", queueing_lock=STALLED_TASK)
    async def retry_stalled_jobs(timestamp: int) -> None:
        # A worker killed (SIGKILL, a lost machine) leaves its jobs `doing`; once its
        # heartbeat is old, they are queued again for another worker.
        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds)
        for job in stalled:
            try:
                await app.job_manager.retry_job(job)
            except UniqueViolation:
                # The same work waits in a job of the same queueing lock (an outbox pass
                # deferred meanwhile): this one is ended instead. Queued again it cannot be,
                # and left `doing` it would hold its lock, which the waiting job needs.
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                log.warning("stalled job ended: the same work is queued", job_id=job.id,
                            task=job.task_name, queueing_lock=job.queueing_lock)  # fmt: skip
                continue
            log.warning("stalled job queued again", job_id=job.id, task=job.task_name)

    @app.task(name=IMPORT_TASK, queue="imports", retry=RETRY)
    async def import_session(session_id: int, trigger: str = "connect") -> None:
        from zapsync.services.imports.importer import import_conversations

        # which worker took it: what an operator (and the cluster test) looks for in the logs
        log.info("import job started", session_id=session_id, trigger=trigger)
        report = await import_conversations(_context.get(), session_id, trigger=trigger)
        log.info("import job finished", session_id=session_id, status=report.status)

    @app.task(name=OUTBOX_TASK, queue="outbox", retry=RETRY)
    async def deliver_outbox(kind: str) -> None:
        from zapsync.services.outbox.kinds import KINDS

        ctx = _context.get()
        outbox_kind = KINDS[kind]
        log.info("outbox job started", kind=kind)
        report = await outbox_kind.deliver_due(ctx)
        while report.due >= outbox_kind.batch:  # a full pass: more are due at once
            report = await outbox_kind.deliver_due(ctx)
        delay = await outbox_kind.seconds_until_next(ctx)
        if delay is not None:
            if report.errors:
                # A database error left items due: pause rather than spin on it.
                delay = max(delay, ERROR_PAUSE_SECONDS)
            await defer_outbox(app, kind, delay)

    @app.periodic(cron="* * * * *", periodic_id=OUTBOX_POLL_TASK)
    @app.task(name=OUTBOX_POLL_TASK, queue="periodic", queueing_lock=OUTBOX_POLL_TASK)
    async def poll_outbox(timestamp: int) -> None:
        from zapsync.services.outbox.kinds import KINDS

        for kind in KINDS:
            await defer_outbox(app, kind)

    return app


async def defer_outbox(app: procrastinate.App, kind: str, delay: float = 0.0) -> None:
    """Queue a pass over the outbox `kind`, now or in `delay` seconds; nothing when one is
    queued for that moment already (one waiting now, one waiting for later)."""
    later = delay > 0
    task = app.tasks[OUTBOX_TASK].configure(
        lock=f"outbox-{kind}",
        queueing_lock=f"outbox-{kind}-{'later' if later else 'now'}",
        schedule_at=datetime.now(UTC) + timedelta(seconds=delay) if later else None,
    )
    with contextlib.suppress(AlreadyEnqueued):
        await task.defer_async(kind=kind)


def _periodic(app: procrastinate.App, settings: Settings, spec: JobSpec) -> None:
    cron = utc_cron(spec.cron(settings), settings.zone)

    async def run(timestamp: int) -> None:
        report = await spec.func(_context.get(), None, "schedule")
        log.info("periodic job finished", job=spec.name, run_id=report.get("run_id"),
                 period=timestamp)  # fmt: skip

    task = app.task(name=spec.name, queue="periodic", retry=RETRY, queueing_lock=spec.name)(run)
    app.periodic(cron=cron, periodic_id=spec.name)(task)


async def queue_counts(ctx: AppContext) -> list[tuple[str, str, int]]:
    """(task, status, how many) of Procrastinate's jobs, scaled out; nothing embedded."""
    if ctx.settings.jobs != "procrastinate":
        return []
    async with ctx.db.reads() as db:
        return await jobs_by_task_and_status(db)


class JobQueue:
    """What a process of the scaled-out mode holds: the Procrastinate app, open."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.app = build_app(ctx.settings)

    async def open(self) -> None:
        _context.set(self.ctx)
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def defer_import(self, session_id: int, trigger: str) -> bool:
        """Queue the session's import; False when one is queued already."""
        task = self.app.tasks[IMPORT_TASK].configure(
            lock=f"session-{session_id}", queueing_lock=f"import-{session_id}"
        )
        try:
            await task.defer_async(session_id=session_id, trigger=trigger)
        except AlreadyEnqueued:
            return False
        return True

    async def defer_outbox(self, kind: str) -> None:
        """Queue a pass over the outbox `kind` for a worker."""
        await defer_outbox(self.app, kind)

    async def run_worker(self, **options: Any) -> None:
        """Work jobs until cancelled (or, with `wait=False`, until none is left)."""
        _context.set(self.ctx)
        await self.app.run_worker_async(**options)

    async def run_until_stopped(
        self, queues: Sequence[str], concurrency: int, imports_at_once: int
    ) -> None:
        """Work `queues` until SIGINT or SIGTERM (running jobs finish; a second signal does
        not wait): the imports by a worker of their own taking `imports_at_once` at a time,
        the other queues by one taking `concurrency`."""
        plan = [(["imports"], imports_at_once)] if "imports" in queues else []
        rest = [q for q in queues if q != "imports"]
        if rest:
            plan.append((rest, concurrency))
        workers = [
            asyncio.create_task(
                self.run_worker(
                    queues=names, concurrency=n, name="+".join(names), install_signal_handlers=False
                )
            )
            for names, n in plan
        ]
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for task in workers:
                task.cancel()  # Procrastinate's graceful stop: no new job, running ones finish

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            # Waited for, not gathered: a cancelled gather returns before the other worker
            # has finished its own stop (and unregistered).
            await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            if any(not task.done() for task in workers):  # one failed, or we are cancelled
                stop()
                await asyncio.wait(workers)
        errors = [t.exception() for t in workers if not t.cancelled()]
        for error in errors:
            if error is not None:
                raise error

"""`zapsync worker`: runs the jobs of the scaled-out mode (`ZAPSYNC_JOBS=procrastinate`) with
Procrastinate: the periodic jobs (once per period for all workers), the sessions' imports, and
the outbox's deliveries to gateways and Chatwoot (passes deferred by every process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from zapsync.cli.runner import err_console, fail, migrate_or_exit, settings_or_exit

if TYPE_CHECKING:
    from zapsync.runtime.context import AppContext

QUEUES = ("periodic", "imports", "outbox")
# Imports a worker runs at once by default. Each holds its worker a good part of the time
# (mapping, writing); a worker taking as many as its concurrency took all four of a burst while
# a second worker sat idle. Two overlap one's waits on the gateway and the database with the
# other's work, and leave the rest of a burst to other workers.
IMPORTS_AT_ONCE = 2
SANDBOX_OUT_OF_REACH = (
    "the built-in sandbox gateway lives in the `zapsync serve` process that created the "
    "session; a worker cannot reach it (scaled out, use `zapsync sandbox serve --dialect "
    "evolution` and an evolution session)"
)


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=100, help="Jobs run at once.")
    ] = 4,
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", help=f"Queues to work (default all: {', '.join(QUEUES)})."),
    ] = None,
    imports: Annotated[
        int,
        typer.Option(
            "--imports",
            min=1,
            max=100,
            help="Imports run at once (of --concurrency); the rest wait for this worker or "
            "another. A lone worker may take more.",
        ),
    ] = IMPORTS_AT_ONCE,
) -> None:
    """Work the job queue until stopped (Ctrl-C, SIGTERM)."""
    import asyncio

    from zapsync.logs import configure_logging

    settings = settings_or_exit()
    if settings.jobs != "procrastinate":
        raise fail(
            "zapsync worker runs the scaled-out mode's jobs: set ZAPSYNC_JOBS=procrastinate "
            "(and a PostgreSQL DATABASE_URL); embedded, `zapsync serve` runs them itself",
            2,
        )
    configure_logging(settings.log_format, settings.log_level)
    migrate_or_exit(settings, unless_at_head=True)

    async def main() -> None:
        from zapsync.runtime.context import AppContext
        from zapsync.runtime.wiring import Runtime

        ctx: AppContext = AppContext.create(settings)
        ctx.world.out_of_reach = SANDBOX_OUT_OF_REACH
        runtime = Runtime(ctx, workers=True, scheduler=False)
        await runtime.start()
        assert runtime.queue is not None
        at_once = min(imports, concurrency)
        err_console.print(
            f"zapsync worker: queues {', '.join(queues or QUEUES)}, concurrency {concurrency} "
            f"(imports {at_once} at a time)"
        )
        try:
            await runtime.queue.run_until_stopped(list(queues or QUEUES), concurrency, at_once)
        finally:
            await runtime.stop()
            await ctx.aclose()

    asyncio.run(main())

"""The scaled-out mode's outbox in the test's process: `zapsync serve` only defers the passes
over the outbox (`jobs/queue.py`), which `zapsync worker` processes run; a suite run with
`ZAPSYNC_TEST_JOBS=procrastinate` gets a worker of the outbox queue beside its app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from zapsync.jobs.queue import JobQueue
from zapsync.runtime.context import AppContext


@asynccontextmanager
async def outbox_jobs_worked(app: FastAPI) -> AsyncIterator[None]:
    """Work the app's outbox jobs until the block ends, or until a test stops the app's outbox
    (`app.state.outbox.stop()`, a process that died before handing a message over): then this
    worker stops too, as the embedded mode's outbox worker would."""
    ctx: AppContext = app.state.ctx
    if ctx.settings.jobs != "procrastinate":
        yield
        return
    queue = JobQueue(ctx)
    await queue.open()
    worker = asyncio.create_task(
        queue.run_worker(queues=["outbox"], install_signal_handlers=False), name="outbox-jobs"
    )

    async def halt() -> None:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    outbox = app.state.outbox
    stop_outbox = outbox.stop

    async def stop() -> None:
        await halt()
        await stop_outbox()

    outbox.stop = stop
    try:
        yield
    finally:
        await halt()
        await queue.close()

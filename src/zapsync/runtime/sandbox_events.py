"""Feeds the in-process sandbox world's events to the same code path as gateway webhooks.

One consumer drains a queue in order, as a gateway's webhook stream would arrive, so a QR
followed by `open` can never be applied the other way round."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from zapsync.providers.sandbox.payloads import events_of
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import WorldEvent
from zapsync.services.ingest.webhooks import apply_events
from zapsync.store.models import Session

log = structlog.get_logger(__name__)

PREFIX = "zapsync-"


class SandboxEventPump:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.queue: asyncio.Queue[WorldEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.ctx.world.subscribe(self.queue.put_nowait)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self._apply(event)
            except Exception:
                log.exception("sandbox event failed", kind=event.kind)
            finally:
                self.queue.task_done()

    async def _apply(self, event: WorldEvent) -> None:
        name = event.instance.name
        if not name.startswith(PREFIX) or not name[len(PREFIX) :].isdigit():
            return
        async with self.ctx.db.session() as db:
            session = await db.get(Session, int(name[len(PREFIX) :]))
            if session is None or session.provider != "sandbox" or session.archived_at:
                return
            await apply_events(self.ctx, db, session, events_of(event))
            await db.commit()

    async def drain(self) -> None:
        await self.queue.join()

    async def stop(self, grace: float = 5.0) -> None:
        """Apply what is queued (for `grace` seconds at most), then stop: cancelled in the
        middle of a transaction, an event's SQLite connection kept the write lock until it
        was garbage-collected."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

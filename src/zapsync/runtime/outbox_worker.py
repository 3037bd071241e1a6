"""The outbox worker: takes passes over every registered outbox kind (`services/outbox/
kinds.py`) in the background of `zapsync serve` (and of a future `zapsync worker`).

A pass runs at start (resuming what a restart left), whenever something is queued in this
process (`outbox_queued`, published on the queuing transaction's commit), when the next item
is due (at once when one fell due during a pass), and every `POLL_SECONDS` (items queued by
another process). When a session becomes connected again, each kind hurries its items waiting
out a retry delay, and a pass follows.

Scaled out (`ZAPSYNC_JOBS=procrastinate`), the same wake-ups defer a pass job per kind to the
workers instead (`defer`, from `jobs/queue.py`): the pass runs there, one per kind at a time
across workers, with the worker's stalled-job recovery behind it. At most one deferral per
kind is in flight here; wake-ups meanwhile are folded into one more, `DEFER_EVERY_SECONDS`
later."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.services.outbox.kinds import KINDS, OutboxKind
from zapsync.services.outbox.queue import QUEUED

log = structlog.get_logger(__name__)

POLL_SECONDS = 30.0
ERROR_PAUSE_SECONDS = 1.0
# How long `stop` lets a pass in progress finish before cancelling it.
STOP_GRACE_SECONDS = 10.0
# Scaled out: the shortest time between two deferrals of one kind's pass by this process.
DEFER_EVERY_SECONDS = 0.1


def _reconnected(event: Event) -> int | None:
    if event.name != "session_status" or event.data.get("status") != "connected":
        return None
    return int(event.data["session_id"])


class OutboxWorker:
    def __init__(
        self,
        ctx: AppContext,
        poll_seconds: float = POLL_SECONDS,
        kinds: dict[str, OutboxKind] | None = None,
        defer: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.kinds = KINDS if kinds is None else kinds
        self.defer = defer
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._deferring: set[str] = set()
        self._again: set[str] = set()

    def wake(self, kinds: set[str] | None = None) -> None:
        if self.defer is None:
            self._wake.set()
            return
        for kind in kinds or set(self.kinds):
            if kind in self._deferring:
                self._again.add(kind)
                continue
            self._deferring.add(kind)
            self.ctx.tasks.spawn(self._defer(kind), name=f"outbox-defer-{kind}")

    async def _defer(self, kind: str) -> None:
        assert self.defer is not None
        try:
            while True:
                self._again.discard(kind)
                try:
                    if await self._may_have_work(kind):
                        await self.defer(kind)
                except Exception:
                    # the periodic pass of the workers still finds the items
                    log.exception("outbox pass not deferred", kind=kind)
                if kind not in self._again or self._stopping:
                    return
                # A burst (webhooks storing messages wake the Chatwoot mirror) is one more
                # deferral, not one per event.
                await asyncio.sleep(DEFER_EVERY_SECONDS)
        finally:
            self._deferring.discard(kind)

    async def _may_have_work(self, kind: str) -> bool:
        spec = self.kinds.get(kind)
        if spec is None or spec.may_have_work is None:
            return True
        return await spec.may_have_work(self.ctx)

    async def _on_event(self, event: Event) -> None:
        if event.name == QUEUED:
            self.wake({str(event.data["kind"])} if event.data.get("kind") in self.kinds else None)
            return
        woken = {k.kind for k in self.kinds.values() if event.name in k.wakes_on}
        if woken:
            self.wake(woken)
            return
        session_id = _reconnected(event)
        if session_id is None:
            return
        hurried = 0
        for kind in list(self.kinds.values()):
            if kind.session_back is not None:
                hurried += await kind.session_back(self.ctx, session_id)
        if hurried:
            self.wake()

    def start(self) -> None:
        woken_by = {name for kind in self.kinds.values() for name in kind.wakes_on}
        self._stopping = False
        self.ctx.bus.subscribe(self._on_event, names={QUEUED, "session_status", *woken_by})
        if self.defer is not None:
            self.wake()  # what a restart left, as the embedded worker's first pass
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    async def _pass(self, kind: OutboxKind) -> tuple[bool, float | None]:
        """One pass over `kind`: whether it filled its batch, and when it is due next."""
        try:
            report = await kind.deliver_due(self.ctx)
            if report.due >= kind.batch:
                return True, 0.0
            delay = await kind.seconds_until_next(self.ctx)
            if report.errors and delay is not None:
                # A database error left items due: pause rather than spin on it.
                delay = max(delay, ERROR_PAUSE_SECONDS)
            return False, delay
        except Exception:
            log.exception("outbox pass failed", kind=kind.kind)
            return False, self.poll_seconds

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass, so something queued during it triggers the next one.
            self._wake.clear()
            full = False
            delays: list[float] = []
            for kind in list(self.kinds.values()):
                filled, delay = await self._pass(kind)
                full = full or filled
                if delay is not None:
                    delays.append(delay)
            if full or self._stopping:
                continue
            timeout = min([*delays, self.poll_seconds])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(ValueError):
            self.ctx.bus.unsubscribe(self._on_event)
        if self._task is None:
            return
        # A pass cancelled mid-transaction would leave its connection holding SQLite's write
        # lock until it is collected: the pass in progress finishes first, within a grace.
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_SECONDS)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

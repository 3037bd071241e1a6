"""The outbox worker: takes passes over every registered outbox kind (`services/outbox/
kinds.py`) in the background of `zapsync serve` (and of a future `zapsync worker`).

A pass runs at start (resuming what a restart left), whenever something is queued in this
process (`outbox_queued`, published on the queuing transaction's commit), when the next item
is due (at once when one fell due during a pass), and every `POLL_SECONDS` (items queued by
another process). When a session becomes connected again, each kind hurries its items waiting
out a retry delay, and a pass follows."""

from __future__ import annotations

import asyncio
import contextlib

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
    ) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.kinds = KINDS if kinds is None else kinds
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def _on_event(self, event: Event) -> None:
        if event.name == QUEUED or any(event.name in k.wakes_on for k in self.kinds.values()):
            self.wake()
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

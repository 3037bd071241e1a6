"""Webhook deliveries applied in batches: one transaction for every delivery waiting.

Gateways post one HTTP request per message. At hundreds of messages a second, a transaction
per request costs more than the work in it, and on SQLite every one of them queues for the
single writer lock. Requests hand their delivery to this queue; one worker takes everything
waiting, applies it in one transaction (`apply_deliveries`) and answers every request after
the commit. Alone, a delivery is a batch of one and waits for nothing; under load the
batches grow while the previous one is written (group commit), and a batch that follows one
with company lingers `LINGER` seconds for the requests still being read: gateways and load
balancers send in waves, and without the wait every wave split into a batch of one (a batch
costs ~5 ms of CPU, a message in it ~0.3 ms) and a batch of the rest.

On PostgreSQL the deliveries go to one of `LANES` lanes by session, each lane a queue and a
worker of its own: a lane's batch waits on the database's round trips and its commit's WAL
flush, and with one lane a replica sat idle half the time while its requests waited for that.
A session's deliveries always take the same lane, so they are still applied in arrival
order; lanes apply different sessions' batches side by side, as two replicas do. SQLite has
one writer, so one lane.

A request's answer still means "stored": it waits for its batch's commit. When a batch fails
as a whole (a database error), it is rolled back and each delivery is applied again alone, so
one bad delivery fails only its own request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from zapsync.runtime.context import AppContext
from zapsync.services.ingest.webhooks import (
    Delivery,
    DeliveryResult,
    WebhookOutcome,
    apply_deliveries,
    receive_webhook,
)

log = structlog.get_logger(__name__)

MAX_BATCH = 200
LINGER = 0.002
LANES = 4  # on PostgreSQL


@dataclass(slots=True)
class _Waiting:
    delivery: Delivery
    answer: asyncio.Future[DeliveryResult]


class _Lane:
    """One queue of deliveries and its worker's state."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self.busy = False  # the last batch had more than one delivery


class WebhookBatcher:
    def __init__(
        self,
        ctx: AppContext,
        max_batch: int = MAX_BATCH,
        linger: float = LINGER,
        lanes: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.max_batch = max_batch
        self.linger = linger
        if lanes is None:
            lanes = 1 if ctx.settings.is_sqlite else LANES
        self._lanes = [_Lane() for _ in range(lanes)]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._work(lane), name=f"webhooks-{n}")
            for n, lane in enumerate(self._lanes)
        ]

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if not self._tasks:
            return
        for lane in self._lanes:
            await lane.queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def receive(self, delivery: Delivery) -> WebhookOutcome:
        """Apply one delivery with whatever else is waiting; raises what refused it."""
        if not self._tasks or all(t.done() for t in self._tasks):
            return await receive_webhook(self.ctx, delivery)
        answer: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        lane = self.lane_of(delivery.session_id)
        lane.queue.put_nowait(_Waiting(delivery, answer))
        result = await answer
        if isinstance(result, Exception):
            raise result
        return result

    def lane_of(self, session_id: int) -> _Lane:
        return self._lanes[session_id % len(self._lanes)]

    async def _work(self, lane: _Lane) -> None:
        queue = lane.queue
        while True:
            batch = [await queue.get()]
            if lane.busy:
                await asyncio.sleep(self.linger)
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            lane.busy = len(batch) > 1
            try:
                await self._apply(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _apply(self, batch: list[_Waiting]) -> None:
        try:
            results = await apply_deliveries(self.ctx, [w.delivery for w in batch])
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            log.warning("webhook batch failed; applying its deliveries one by one", size=len(batch))
            for waiting in batch:
                await self._apply_alone(waiting)
            return
        for waiting, result in zip(batch, results, strict=True):
            _answer(waiting, result)

    async def _apply_alone(self, waiting: _Waiting) -> None:
        try:
            (result,) = await apply_deliveries(self.ctx, [waiting.delivery])
        except Exception as exc:
            _fail(waiting, exc)
        else:
            _answer(waiting, result)


def _answer(waiting: _Waiting, result: DeliveryResult) -> None:
    if not waiting.answer.done():  # its request may have been cancelled (client went away)
        waiting.answer.set_result(result)


def _fail(waiting: _Waiting, exc: Exception) -> None:
    log.error(
        "webhook delivery failed",
        provider=waiting.delivery.provider,
        session_id=waiting.delivery.session_id,
        exc_info=exc,
    )
    if not waiting.answer.done():
        waiting.answer.set_exception(exc)

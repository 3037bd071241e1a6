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


@dataclass(slots=True)
class _Waiting:
    delivery: Delivery
    answer: asyncio.Future[DeliveryResult]


class WebhookBatcher:
    def __init__(self, ctx: AppContext, max_batch: int = MAX_BATCH, linger: float = LINGER) -> None:
        self.ctx = ctx
        self.max_batch = max_batch
        self.linger = linger
        # One worker: a second one measured no faster on PostgreSQL (the process is CPU-bound)
        # and would only wait for SQLite's single writer lock.
        self.workers = 1
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = False  # the last batch had more than one delivery

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._work(), name=f"webhooks-{n}") for n in range(self.workers)
        ]

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if not self._tasks:
            return
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def receive(self, delivery: Delivery) -> WebhookOutcome:
        """Apply one delivery with whatever else is waiting; raises what refused it."""
        if not self._tasks or all(t.done() for t in self._tasks):
            return await receive_webhook(self.ctx, delivery)
        answer: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(delivery, answer))
        result = await answer
        if isinstance(result, Exception):
            raise result
        return result

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._busy:
                await asyncio.sleep(self.linger)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy = len(batch) > 1
            try:
                await self._apply(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

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

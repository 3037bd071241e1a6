"""In-process publish/subscribe. Subscribers (Socket.IO, logs, the import trigger) never
block the publisher: each delivery runs in its own task and a failing subscriber is logged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from zapsync.bus.events import Event

log = structlog.get_logger(__name__)

Subscriber = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber. Call only after the change was committed."""
        for subscriber in list(self._subscribers):
            task = asyncio.get_running_loop().create_task(self._deliver(subscriber, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, subscriber: Subscriber, event: Event) -> None:
        try:
            await subscriber(event)
        except Exception:
            log.exception("event subscriber failed", event_name=event.name)

    async def drain(self) -> None:
        """Wait for deliveries in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

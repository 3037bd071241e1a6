"""In-process publish/subscribe. Subscribers (Socket.IO, logs, the import trigger) never
block the publisher: each delivery runs in its own task and a failing subscriber is logged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

import structlog

from zapsync.bus.events import Event

log = structlog.get_logger(__name__)

Subscriber = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        # (subscriber, the event names it wants or None for all)
        self._subscribers: list[tuple[Subscriber, frozenset[str] | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, subscriber: Subscriber, names: Collection[str] | None = None) -> None:
        """`names` limits deliveries to those events: a task per event per subscriber is the
        bus's main cost when hundreds of messages arrive each second."""
        self._subscribers.append((subscriber, frozenset(names) if names is not None else None))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers = [s for s in self._subscribers if s[0] != subscriber]

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber. Call only after the change was committed."""
        for subscriber, names in list(self._subscribers):
            if names is not None and event.name not in names:
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(subscriber, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, subscriber: Subscriber, event: Event) -> None:
        try:
            await subscriber(event)
        except Exception:
            log.exception("event subscriber failed", event_name=event.name)

    @property
    def busy(self) -> bool:
        """True while a delivery is in flight."""
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait for deliveries in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

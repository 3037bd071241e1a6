"""Fire-and-forget work of this process (imports after a connect, retries), tracked so
shutdown and tests can wait for it and failures are logged, never lost silently.

Shutdown asks long work to stop before it cancels it: work cancelled in the middle of a
query left its SQLite connection holding the write lock until a garbage-collection pass,
while work that looks at `stopping` between pages stops at a point where nothing is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class BackgroundTasks:
    def __init__(self, *, grace: float = 5.0) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.grace = grace  # seconds work has to stop by itself before it is cancelled

    @property
    def stopping(self) -> bool:
        """True once shutdown began: long work should end at its next safe point."""
        return self._closed

    @property
    def busy(self) -> bool:
        """True while spawned work runs."""
        return bool(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        if self._closed:
            # Shutting down: work started now would outlive the database engine, and on
            # SQLite a transaction it left open kept the write lock after shutdown.
            coro.close()
            log.info("background task not started: shutting down", task=name)
            return
        task = asyncio.get_running_loop().create_task(self._run(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        try:
            await coro
        except Exception:
            log.exception("background task failed", task=name)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Start nothing more, let what runs stop at its next safe point, cancel what is late."""
        self._closed = True
        running = list(self._tasks)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=self.grace)
        for task in late:
            log.warning("background task cancelled at shutdown", task=task.get_name())
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

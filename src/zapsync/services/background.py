"""Fire-and-forget work of this process (imports after a connect, retries), tracked so
shutdown and tests can wait for it and failures are logged, never lost silently."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

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
        """Cancel what runs and start nothing more."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

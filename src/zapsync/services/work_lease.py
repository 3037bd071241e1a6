"""A named piece of work held by one runner across processes: a lease row (`store/leases.py`)
taken before the work begins, renewed while it runs, released at its end. A runner killed
midway stops renewing, and the lease is free again after `TTL`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta

import structlog

from zapsync.runtime.context import AppContext
from zapsync.services.errors import Conflict
from zapsync.store import leases

log = structlog.get_logger(__name__)

TTL = timedelta(seconds=30)
RENEW_EVERY = 10.0  # seconds: a renewal or two may be late (a busy SQLite) before it expires
WAIT_EVERY = 0.25  # seconds between tries while another runner holds the lease


def _holder() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class WorkLease:
    """A held lease; `lost` turns True when a renewal found another holder."""

    def __init__(self, ctx: AppContext, name: str, *, busy: str) -> None:
        self.ctx = ctx
        self.name = name
        self.busy = busy  # why a caller that will not wait is refused
        self.holder = _holder()
        self.lost = False
        self._renewer: asyncio.Task[None] | None = None

    async def _try(self) -> bool:
        async with self.ctx.db.session() as db:
            taken = await leases.take(db, self.name, self.holder, TTL)
            await db.commit()
        return taken

    async def acquire(self, *, wait: bool = True) -> None:
        """Take the lease, waiting while another runner holds it (or refusing at once)."""
        while not await self._try():
            if not wait or self.ctx.tasks.stopping:
                raise Conflict(self.busy)
            await asyncio.sleep(WAIT_EVERY)
        self._renewer = asyncio.get_running_loop().create_task(
            self._renew(), name=f"lease-{self.name}"
        )

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                async with self.ctx.db.session() as db:
                    kept = await leases.renew(db, self.name, self.holder, TTL)
                    await db.commit()
            except Exception:
                log.warning("lease renewal failed; trying again", lease=self.name, exc_info=True)
                continue
            if not kept:
                self.lost = True
                log.warning("lease lost to another runner", lease=self.name)
                return

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        try:
            async with self.ctx.db.session() as db:
                await leases.release(db, self.name, self.holder)
                await db.commit()
        except Exception:  # it expires by itself
            log.warning("lease not released", lease=self.name, exc_info=True)

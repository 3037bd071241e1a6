"""One import per session at a time, across every process on the database: a lease row
(`store/leases.py`) taken before the import begins, renewed while it runs, released at its end.

A second import of the session waits for the lease (as it waited for the in-process lock this
replaced) and then finds nothing left to write. A runner killed mid-import stops renewing:
its lease expires after `TTL`, and the next start resumes the import (`resume.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import structlog

from zapsync.runtime.context import AppContext
from zapsync.services.errors import Conflict
from zapsync.store import leases

log = structlog.get_logger(__name__)

TTL = timedelta(seconds=30)
RENEW_EVERY = 10.0  # seconds: a renewal or two may be late (a busy SQLite) before it expires
WAIT_EVERY = 0.25  # seconds between tries while another runner holds the lease


def lease_name(session_id: int) -> str:
    return f"import:{session_id}"


def _holder() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class SessionLease:
    """A held lease; `lost` turns True when a renewal found another holder."""

    def __init__(self, ctx: AppContext, session_id: int) -> None:
        self.ctx = ctx
        self.name = lease_name(session_id)
        self.holder = _holder()
        self.lost = False
        self._renewer: asyncio.Task[None] | None = None

    async def _try(self) -> bool:
        async with self.ctx.db.session() as db:
            taken = await leases.take(db, self.name, self.holder, TTL)
            await db.commit()
        return taken

    async def acquire(self) -> None:
        while not await self._try():
            if self.ctx.tasks.stopping:
                raise Conflict("another import of this session is running")
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


@asynccontextmanager
async def session_lease(ctx: AppContext, session_id: int) -> AsyncIterator[SessionLease]:
    """Hold the session's import lease for the block, waiting while another runner has it."""
    lease = SessionLease(ctx, session_id)
    await lease.acquire()
    try:
        yield lease
    finally:
        await lease.release()


async def held(ctx: AppContext, session_ids: Collection[int]) -> dict[int, datetime]:
    """The sessions among `session_ids` some runner imports now, with when its lease ends."""
    names = {lease_name(sid): sid for sid in session_ids}
    async with ctx.db.session() as db:
        live = await leases.live(db, names)
    return {names[name]: expires_at for name, expires_at in live.items()}

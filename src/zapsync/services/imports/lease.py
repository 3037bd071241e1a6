"""One import per session at a time, across every process on the database: a lease row
(`store/leases.py`) taken before the import begins, renewed while it runs, released at its end.

A second import of the session waits for the lease (as it waited for the in-process lock this
replaced) and then finds nothing left to write. A runner killed mid-import stops renewing:
its lease expires after `TTL`, and the next start resumes the import (`resume.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime

from zapsync.runtime.context import AppContext
from zapsync.services.work_lease import TTL, WorkLease
from zapsync.store import leases

__all__ = ["TTL", "SessionLease", "held", "lease_name", "session_lease"]


def lease_name(session_id: int) -> str:
    return f"import:{session_id}"


class SessionLease(WorkLease):
    """The lease of one session's import."""

    def __init__(self, ctx: AppContext, session_id: int) -> None:
        super().__init__(
            ctx, lease_name(session_id), busy="another import of this session is running"
        )


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

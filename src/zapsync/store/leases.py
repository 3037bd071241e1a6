"""Leases: a named piece of work held by one holder until an expiry, across processes.

Taken in one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE expired`), so of two
processes asking at once exactly one gets it; renewed by its holder while the work runs;
released at the end. A holder that died stops renewing, and the lease is free again at its
expiry. Functions take the caller's session and never commit.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Lease
from zapsync.store.types import utcnow
from zapsync.store.upsert import table_of

leases = table_of(Lease)


async def take(db: AsyncSession, name: str, holder: str, ttl: timedelta) -> bool:
    """Take `name` for `holder` until now + `ttl` when it is free or expired; True if taken."""
    now = utcnow()
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(leases).values(name=name, holder=holder, expires_at=now + ttl, taken_at=now)
    upsert = stmt.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "holder": stmt.excluded.holder,
            "expires_at": stmt.excluded.expires_at,
            "taken_at": stmt.excluded.taken_at,
        },
        where=leases.c.expires_at <= now,
    )
    return (await db.execute(upsert.returning(leases.c.holder))).scalar() == holder


async def renew(db: AsyncSession, name: str, holder: str, ttl: timedelta) -> bool:
    """Push the holder's expiry to now + `ttl`; False when the holder lost the lease."""
    result = await db.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(expires_at=utcnow() + ttl)
    )
    return bool(getattr(result, "rowcount", 0))


async def release(db: AsyncSession, name: str, holder: str) -> None:
    await db.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


async def live(db: AsyncSession, names: Collection[str]) -> dict[str, datetime]:
    """The names among `names` held by someone now, with when each expires."""
    if not names:
        return {}
    rows = await db.execute(
        select(leases.c.name, leases.c.expires_at).where(
            leases.c.name.in_(list(names)), leases.c.expires_at > utcnow()
        )
    )
    return {row.name: row.expires_at for row in rows}

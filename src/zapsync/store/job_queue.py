"""Reads of Procrastinate's job table (the scaled-out mode's queue, migration 0012)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def jobs_by_task_and_status(db: AsyncSession) -> list[tuple[str, str, int]]:
    """(task, status, how many) of every job Procrastinate holds."""
    rows = await db.execute(
        text(
            "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
            "GROUP BY task_name, status ORDER BY task_name, status"
        )
    )
    return [(str(t), str(s), int(n)) for t, s, n in rows.all()]

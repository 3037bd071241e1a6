"""Row counts of every table: 'nothing written' is the same counts before and after."""

from __future__ import annotations

from sqlalchemy import func, select

from zapsync.runtime.context import AppContext
from zapsync.store.models import ApiToken, Base


async def table_counts(ctx: AppContext) -> dict[str, int]:
    counts = {}
    async with ctx.db.session() as db:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(await db.scalar(select(func.count()).select_from(table)) or 0)
        # authenticating touches nothing, but make sure of it for tokens too
        counts["api_tokens.used"] = int(
            await db.scalar(select(func.count()).where(ApiToken.last_used_at.is_not(None))) or 0
        )
    return counts

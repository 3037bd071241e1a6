"""Queries of `external_refs`, the ids integrations hold for zapsync's rows."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import ExternalRef


async def move_external_refs(
    db: AsyncSession, organization_id: int, entity_type: str, from_id: int, to_id: int
) -> None:
    """References held to row `from_id` (a merged duplicate) now point at `to_id`."""
    await db.execute(
        update(ExternalRef)
        .where(
            ExternalRef.organization_id == organization_id,
            ExternalRef.entity_type == entity_type,
            ExternalRef.internal_id == from_id,
        )
        .values(internal_id=to_id)
    )

"""Queries of `integrations`: an organization's connections to helpdesks and CRMs. Each takes
the caller's session and never commits."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Integration
from zapsync.store.types import utcnow


async def integration_of(
    db: AsyncSession, organization_id: int, integration_id: int
) -> Integration | None:
    """The organization's integration `integration_id`; another organization's is None."""
    found = await db.get(Integration, integration_id)
    return found if found is not None and found.organization_id == organization_id else None


async def integrations_of(
    db: AsyncSession, organization_id: int, provider: str | None = None
) -> list[Integration]:
    query = select(Integration).where(Integration.organization_id == organization_id)
    if provider is not None:
        query = query.where(Integration.provider == provider)
    return list((await db.scalars(query.order_by(Integration.id))).all())


async def integration_by_token_hash(db: AsyncSession, token_hash: str) -> Integration | None:
    return await db.scalar(select(Integration).where(Integration.webhook_token_hash == token_hash))


async def all_integrations(db: AsyncSession, provider: str) -> list[Integration]:
    """Every organization's integrations of `provider` (the scheduled pull)."""
    query = select(Integration).where(Integration.provider == provider).order_by(Integration.id)
    return list((await db.scalars(query)).all())


async def any_integration(db: AsyncSession, provider: str) -> bool:
    """Whether any organization has an integration of `provider`."""
    found = await db.scalar(select(Integration.id).where(Integration.provider == provider).limit(1))
    return found is not None


async def add_integration(db: AsyncSession, integration: Integration) -> Integration:
    db.add(integration)
    await db.flush()
    return integration


async def delete_integration(db: AsyncSession, integration: Integration) -> None:
    await db.delete(integration)


async def set_health(
    db: AsyncSession, integration_id: int, status: str, last_error: str | None
) -> None:
    """Whether the integration's service answers, and the last reason it did not."""
    await db.execute(
        update(Integration)
        .where(Integration.id == integration_id)
        .values(status=status, last_error=last_error, updated_at=utcnow())
    )

"""Queries on organizations, users and API tokens. Each takes the caller's session and never
commits; a token is found by its hash, never by the plain value."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import ApiToken, Base, Organization, User


async def added(db: AsyncSession, row: Base) -> bool:
    """Insert `row` now; False (and the transaction rolled back) when it clashes with a
    stored row on a unique column."""
    db.add(row)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        return False
    return True


async def add_token(db: AsyncSession, token: ApiToken) -> None:
    db.add(token)
    await db.flush()


async def organization_named(db: AsyncSession, name: str) -> Organization | None:
    return await db.scalar(select(Organization).where(Organization.name == name))


async def user_with_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == email))


async def user_and_organization(
    db: AsyncSession, user_id: int, organization_id: int
) -> tuple[User, Organization]:
    user = await db.get_one(User, user_id)
    return user, await db.get_one(Organization, organization_id)


async def active_token(
    db: AsyncSession, token_id: int, *, organization_id: int | None, user_id: int | None
) -> ApiToken | None:
    """The token if not revoked (and of `organization_id`/`user_id`, when given)."""
    query = select(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if organization_id is not None:
        query = query.where(ApiToken.organization_id == organization_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return await db.scalar(query)


async def revoke_token(db: AsyncSession, token_id: int, at: datetime) -> None:
    await db.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))  # the first time stays
        .values(revoked_at=at)
    )


async def delete_user(db: AsyncSession, user_id: int) -> list[int]:
    """Delete the user and their tokens; the ids of the tokens deleted."""
    token_ids = list(await db.scalars(select(ApiToken.id).where(ApiToken.user_id == user_id)))
    await db.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
    await db.execute(delete(User).where(User.id == user_id))
    return token_ids


async def active_token_ids(db: AsyncSession, token_ids: Collection[int]) -> set[int]:
    """Those of `token_ids` not revoked whose user is still there."""
    if not token_ids:
        return set()
    rows = await db.scalars(
        select(ApiToken.id)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.id.in_(list(token_ids)), ApiToken.revoked_at.is_(None))
    )
    return set(rows)


async def token_with_role(db: AsyncSession, token_hash: str) -> tuple[ApiToken, str] | None:
    """The token with this hash and its user's role (revoked or not)."""
    row = (
        await db.execute(
            select(ApiToken, User.role)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def active_token_with_hash(db: AsyncSession, token_hash: str) -> int | None:
    """The id of the unrevoked token with this hash."""
    return await db.scalar(
        select(ApiToken.id).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )


async def set_password_hash(db: AsyncSession, user_id: int, password_hash: str) -> None:
    await db.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))

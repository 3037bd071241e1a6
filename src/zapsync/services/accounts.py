"""Organizations, users and API tokens: creation, and resolving a Bearer token to a principal."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.security.tokens import hash_password, hash_token, new_token
from zapsync.services.errors import Conflict, Invalid, NotFound, Unauthorized
from zapsync.store.models import ApiToken, Organization, User
from zapsync.store.types import utcnow

ROLES = ("admin", "agent")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every query is scoped to `organization_id`."""

    user_id: int
    organization_id: int
    role: str
    token_id: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def create_organization(db: AsyncSession, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise Invalid("organization name must not be empty")
    org = Organization(name=name)
    db.add(org)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(f"organization {name!r} already exists") from None
    return org


async def get_organization_by_name(db: AsyncSession, name: str) -> Organization:
    org = await db.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"no organization named {name!r}")
    return org


async def create_user(
    db: AsyncSession,
    org: Organization,
    email: str,
    role: str = "agent",
    password: str | None = None,
    name: str | None = None,
) -> User:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    email = email.strip().lower()
    if "@" not in email:
        raise Invalid(f"{email!r} is not an email address")
    user = User(
        organization_id=org.id,
        email=email,
        role=role,
        name=name,
        password_hash=hash_password(password) if password else None,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(f"a user with email {email!r} already exists") from None
    return user


async def get_user_by_email(db: AsyncSession, email: str) -> User:
    user = await db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user with email {email!r}")
    return user


async def create_token(
    db: AsyncSession, user: User, name: str | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user`; the plain token is returned once and never stored."""
    plain = new_token()
    token = ApiToken(
        user_id=user.id,
        organization_id=user.organization_id,
        token_hash=hash_token(plain),
        prefix=plain[:8],
        name=name,
    )
    db.add(token)
    await db.flush()
    return token, plain


async def revoke_token(db: AsyncSession, token_id: int) -> None:
    result = await db.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no active token with id {token_id}")


async def authenticate(db: AsyncSession, plain: str) -> Principal:
    row = (
        await db.execute(
            select(ApiToken, User.role)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_token(plain))
        )
    ).first()
    if row is None:
        raise Unauthorized("the token is not valid")
    token, role = row
    if token.revoked_at is not None:
        raise Unauthorized("the token has been revoked")
    return Principal(
        user_id=token.user_id, organization_id=token.organization_id, role=role, token_id=token.id
    )

"""Organizations, users and API tokens: creation, and resolving a Bearer token to a principal.

Revoking a token or removing a user publishes `access_revoked` once committed, so open
sockets holding that access close at once; without a bus (or in another process) they close
at the server's next re-check of its sockets' tokens (`ZAPSYNC_SOCKET_RECHECK_SECONDS`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.bus.memory import EventBus
from zapsync.security.tokens import hash_password, hash_token, new_token
from zapsync.services.errors import Conflict, Invalid, NotFound, Unauthorized
from zapsync.store import accounts as store
from zapsync.store.db import reading
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

    @classmethod
    def operator(cls, organization_id: int, *, user_id: int = 0) -> Principal:
        """Whoever runs `zapsync` at the server's command line (or the demo loader acting as
        its user): an admin of the organization named, with no token behind it (the shell is
        the credential)."""
        return cls(user_id=user_id, organization_id=organization_id, role="admin", token_id=0)

    @classmethod
    def system(cls, organization_id: int) -> Principal:
        """zapsync acting on its own for an organization (a connector's webhook, a job)."""
        return cls(user_id=0, organization_id=organization_id, role="system", token_id=0)


async def whoami(db: AsyncSession, principal: Principal) -> tuple[User, Organization]:
    """The user a principal is, and their organization."""
    return await store.user_and_organization(db, principal.user_id, principal.organization_id)


async def create_organization(db: AsyncSession, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise Invalid("organization name must not be empty")
    org = Organization(name=name)
    if not await store.added(db, org):
        raise Conflict(f"organization {name!r} already exists")
    return org


async def get_organization_by_name(db: AsyncSession, name: str) -> Organization:
    org = await store.organization_named(db, name)
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
    if not await store.added(db, user):
        raise Conflict(f"a user with email {email!r} already exists")
    return user


async def get_user_by_email(db: AsyncSession, email: str) -> User:
    user = await store.user_with_email(db, email.strip().lower())
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
    await store.add_token(db, token)
    return token, plain


async def revoke_token(
    db: AsyncSession,
    token_id: int,
    *,
    bus: EventBus | None = None,
    organization_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """Revoke an active token; `organization_id`/`user_id` narrow which tokens qualify (a
    token outside them is "not found", never "forbidden": its existence is not disclosed)."""
    token = await store.active_token(db, token_id, organization_id=organization_id, user_id=user_id)
    if token is None:
        raise NotFound(f"no active token with id {token_id}")
    await store.revoke_token(db, token.id, utcnow())
    if bus is not None:
        event = Event("access_revoked", token.organization_id, {"token_ids": [token.id]})
        publish_on_commit(db, event)


async def remove_user(db: AsyncSession, user: User, *, bus: EventBus | None = None) -> None:
    """Delete a user and their tokens; the sessions they created stay with the organization."""
    token_ids = await store.delete_user(db, user.id)
    if bus is not None:
        data = {"token_ids": token_ids, "user_id": user.id}
        publish_on_commit(db, Event("access_revoked", user.organization_id, data))


async def active_token_ids(db: AsyncSession, token_ids: Collection[int]) -> set[int]:
    """Those of `token_ids` that still authenticate (not revoked, their user still there)."""
    return await store.active_token_ids(db, token_ids)


async def authenticate(db: AsyncSession, plain: str) -> Principal:
    await reading(db)  # every request passes here: on SQLite it must not take the write lock
    row = await store.token_with_role(db, hash_token(plain))
    if row is None:
        raise Unauthorized("the token is not valid")
    token, role = row
    if token.revoked_at is not None:
        raise Unauthorized("the token has been revoked")
    return Principal(
        user_id=token.user_id, organization_id=token.organization_id, role=role, token_id=token.id
    )

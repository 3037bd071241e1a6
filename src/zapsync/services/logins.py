"""The web page's login: an e-mail and a password exchanged for an API token (the same kind
`zapsync admin create-token` prints), and logout, which revokes it.

Failed logins are counted per e-mail and per client address (`ZAPSYNC_LOGIN_FAILURE_LIMIT`);
over either, logins are refused with `TooMany` before the password is even checked, so
guessing costs the guesser time, not the server scrypt work."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.memory import EventBus
from zapsync.security.rate_limits import RateLimit, RateLimited
from zapsync.security.tokens import hash_password, verify_password
from zapsync.services import accounts
from zapsync.services.accounts import Principal
from zapsync.services.errors import Invalid, TooMany, Unauthorized
from zapsync.store import accounts as store
from zapsync.store.models import Organization, User

TOKEN_NAME = "web login"
MIN_PASSWORD_LENGTH = 8
WRONG_CREDENTIALS = "the e-mail or the password is wrong"


@cache
def _decoy_hash() -> str:
    """Checked when the e-mail is unknown, so it takes as long to refuse as a wrong password."""
    return hash_password("zapsync-decoy-password")


class LoginLimits:
    """Failed logins per e-mail and per client address, in this process's memory."""

    def __init__(self, rates: str) -> None:
        self.per_email = RateLimit("login-email", rates)
        self.per_client = RateLimit("login-client", rates)

    async def check(self, email: str, client: str) -> None:
        try:
            await self.per_email.check(email)
            await self.per_client.check(client)
        except RateLimited as exc:
            raise TooMany(
                f"too many failed logins; try again in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None

    async def failed(self, email: str, client: str) -> None:
        for limit, key in ((self.per_email, email), (self.per_client, client)):
            with suppress(RateLimited):  # already over: the next attempt is refused by `check`
                await limit.hit(key)


@dataclass(frozen=True, slots=True)
class Login:
    token: str  # shown once, as every token
    token_id: int
    user: User
    organization: Organization


async def log_in(
    db: AsyncSession, limits: LoginLimits, email: str, password: str, client: str
) -> Login:
    """A new token for the user with this e-mail and password; `Unauthorized` otherwise (the
    same reason whether the e-mail is unknown or the password wrong)."""
    email = email.strip().lower()
    await limits.check(email, client)
    user = await store.user_with_email(db, email)
    stored = user.password_hash if user is not None else None
    matches = verify_password(password, stored or _decoy_hash())
    if user is None or stored is None or not matches:
        await limits.failed(email, client)
        raise Unauthorized(WRONG_CREDENTIALS)
    token, plain = await accounts.create_token(db, user, name=TOKEN_NAME)
    user_, organization = await store.user_and_organization(db, user.id, user.organization_id)
    return Login(plain, token.id, user_, organization)


async def log_out(db: AsyncSession, principal: Principal, bus: EventBus) -> None:
    """Revoke the caller's own token; sockets opened with it close once committed."""
    await accounts.revoke_token(
        db,
        principal.token_id,
        bus=bus,
        organization_id=principal.organization_id,
        user_id=principal.user_id,
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


async def set_password(db: AsyncSession, user: User, password: str) -> None:
    """Give `user` a new password for the web login (tokens they hold stay valid)."""
    check_password(password)
    await store.set_password_hash(db, user.id, hash_password(password))

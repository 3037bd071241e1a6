"""Typed dependencies for route signatures: the context, a DB session, the caller, and the
long-lived parts the app's lifespan started (the webhook batcher, the relay, the scheduler).
Routes take these and never reach into `app.state` themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.api.webhook_limits import WebhookLimits
from zapsync.runtime.context import AppContext
from zapsync.runtime.webhook_batches import WebhookBatcher
from zapsync.services.accounts import Principal, authenticate
from zapsync.services.errors import Forbidden, Unauthorized
from zapsync.services.ingest.forwarding import ForwardRunner
from zapsync.services.ingest.refusals import RefusalCounter
from zapsync.services.ingest.webhooks import KnownSessions
from zapsync.services.logins import LoginLimits

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="An API token from `zapsync admin create-token`")


# Every dependency here is `async def` though none awaits: FastAPI runs a plain `def` one in
# its thread pool, a thread hop per dependency per request (a webhook took five).


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_db(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    async with ctx.db.session() as db:
        yield db


Db = Annotated[AsyncSession, Depends(get_db)]


async def get_principal(
    ctx: Ctx, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise Unauthorized("an Authorization: Bearer <token> header is required")
    async with ctx.db.session() as db:
        return await authenticate(db, creds.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this action needs an admin token")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]


def _lifespan_part(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency giving the `app.state.<name>` the lifespan started, checked to be a `kind`."""

    async def part(request: Request) -> T:
        value = getattr(request.app.state, name)
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{name} is not a {kind.__name__}")
        return value

    part.__name__ = f"get_{name}"
    return part


async def get_scheduler(request: Request) -> AsyncIOScheduler | None:
    """The scheduler running the jobs; None when it is turned off (ZAPSYNC_SCHEDULER_ENABLED)."""
    scheduler: AsyncIOScheduler | None = getattr(request.app.state, "scheduler", None)
    return scheduler


Batcher = Annotated[WebhookBatcher, Depends(_lifespan_part("webhooks", WebhookBatcher))]
KnownSessionsDep = Annotated[
    KnownSessions, Depends(_lifespan_part("webhook_sessions", KnownSessions))
]
WebhookLimitsDep = Annotated[
    WebhookLimits, Depends(_lifespan_part("webhook_limits", WebhookLimits))
]
Refusals = Annotated[RefusalCounter, Depends(_lifespan_part("webhook_refusals", RefusalCounter))]
LoginLimitsDep = Annotated[LoginLimits, Depends(_lifespan_part("login_limits", LoginLimits))]
Forwards = Annotated[ForwardRunner, Depends(_lifespan_part("forwards", ForwardRunner))]
Scheduler = Annotated[AsyncIOScheduler | None, Depends(get_scheduler)]

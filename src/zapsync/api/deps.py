"""Typed dependencies for route signatures: the context, a DB session, the caller, and the
long-lived parts the app's lifespan started (the webhook batcher, the relay, the scheduler).
Routes take these and never reach into `app.state` themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.api.webhook_limits import WebhookLimits
from zapsync.services.accounts import Principal, authenticate
from zapsync.services.context import AppContext
from zapsync.services.errors import Forbidden, Unauthorized
from zapsync.services.webhook_batches import WebhookBatcher
from zapsync.services.webhook_forwarding import ForwardRunner
from zapsync.services.webhook_refusals import RefusalCounter
from zapsync.services.webhooks import KnownSessions

_bearer = HTTPBearer(auto_error=False, description="An API token from `zapsync admin create-token`")


def get_ctx(request: Request) -> AppContext:
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


def _state(request: Request, name: str) -> Any:
    return getattr(request.app.state, name)


def get_webhook_batcher(request: Request) -> WebhookBatcher:
    batcher: WebhookBatcher = _state(request, "webhooks")
    return batcher


def get_known_sessions(request: Request) -> KnownSessions:
    known: KnownSessions = _state(request, "webhook_sessions")
    return known


def get_webhook_limits(request: Request) -> WebhookLimits:
    limits: WebhookLimits = _state(request, "webhook_limits")
    return limits


def get_refusal_counter(request: Request) -> RefusalCounter:
    counter: RefusalCounter = _state(request, "webhook_refusals")
    return counter


def get_forwards(request: Request) -> ForwardRunner:
    forwards: ForwardRunner = _state(request, "forwards")
    return forwards


def get_scheduler(request: Request) -> AsyncIOScheduler | None:
    """The scheduler running the jobs; None when it is turned off (ZAPSYNC_SCHEDULER_ENABLED)."""
    scheduler: AsyncIOScheduler | None = getattr(request.app.state, "scheduler", None)
    return scheduler


Batcher = Annotated[WebhookBatcher, Depends(get_webhook_batcher)]
KnownSessionsDep = Annotated[KnownSessions, Depends(get_known_sessions)]
WebhookLimitsDep = Annotated[WebhookLimits, Depends(get_webhook_limits)]
Refusals = Annotated[RefusalCounter, Depends(get_refusal_counter)]
Forwards = Annotated[ForwardRunner, Depends(get_forwards)]
Scheduler = Annotated[AsyncIOScheduler | None, Depends(get_scheduler)]

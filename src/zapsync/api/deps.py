"""Typed dependencies for route signatures: the context, a DB session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.services.accounts import Principal, authenticate
from zapsync.services.context import AppContext
from zapsync.services.errors import Forbidden, Unauthorized

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

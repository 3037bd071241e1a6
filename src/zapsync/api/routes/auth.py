"""The web page's login and logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from zapsync.api.deps import Ctx, CurrentPrincipal, Db, LoginLimitsDep
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas.auth import LoginIn, LoginOrganization, LoginPublic, LoginUser
from zapsync.services import logins

router = APIRouter(prefix="/api/v1/auth", tags=["account"], route_class=ApiRoute)


@router.post("/login", responses=problem_responses(401, 429))
async def login(body: LoginIn, request: Request, db: Db, limits: LoginLimitsDep) -> LoginPublic:
    """Exchange an e-mail and a password (`zapsync admin set-password`) for a new token.
    Failed attempts are limited per e-mail and per client address: 429 with `Retry-After`."""
    client = request.client.host if request.client else "-"
    done = await logins.log_in(db, limits, body.email, body.password, client)
    await db.commit()
    return LoginPublic(
        token=done.token,
        token_id=done.token_id,
        user=LoginUser(
            id=done.user.id, email=done.user.email, name=done.user.name, role=done.user.role
        ),
        organization=LoginOrganization(id=done.organization.id, name=done.organization.name),
    )


@router.post("/logout", status_code=204)
async def logout(principal: CurrentPrincipal, ctx: Ctx, db: Db) -> Response:
    """Revoke the token of this request; its sockets are closed."""
    await logins.log_out(db, principal, ctx.bus)
    await db.commit()
    return Response(status_code=204)

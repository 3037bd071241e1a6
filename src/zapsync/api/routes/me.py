"""Who the token belongs to, and revoking tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from zapsync.api.deps import Ctx, CurrentPrincipal, Db
from zapsync.api.params import PathId
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import MePublic
from zapsync.services import accounts

router = APIRouter(prefix="/api/v1", tags=["account"], route_class=ApiRoute)


@router.get("/me")
async def me(principal: CurrentPrincipal, db: Db) -> MePublic:
    user, org = await accounts.whoami(db, principal)
    return MePublic(
        user_id=user.id,
        email=user.email,
        role=user.role,
        organization_id=org.id,
        organization=org.name,
    )


@router.delete("/tokens/{token_id}", status_code=204, responses=problem_responses(404))
async def revoke_token(token_id: PathId, principal: CurrentPrincipal, ctx: Ctx, db: Db) -> Response:
    """Revoke a token: an admin any of the organization's, an agent only their own. Requests
    with it get 401 from now on and sockets opened with it are closed."""
    await accounts.revoke_token(
        db,
        token_id,
        bus=ctx.bus,
        organization_id=principal.organization_id,
        user_id=None if principal.is_admin else principal.user_id,
    )
    await db.commit()
    return Response(status_code=204)

"""Who the token belongs to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from zapsync.api.deps import CurrentPrincipal, Db
from zapsync.api.routing import ApiRoute
from zapsync.store.models import Organization, User

router = APIRouter(prefix="/api/v1", tags=["account"], route_class=ApiRoute)


class MePublic(BaseModel):
    user_id: int
    email: str
    role: str
    organization_id: int
    organization: str


@router.get("/me")
async def me(principal: CurrentPrincipal, db: Db) -> MePublic:
    user = await db.get_one(User, principal.user_id)
    org = await db.get_one(Organization, principal.organization_id)
    return MePublic(
        user_id=user.id,
        email=user.email,
        role=user.role,
        organization_id=org.id,
        organization=org.name,
    )

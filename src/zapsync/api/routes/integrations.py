"""`/api/v1/integrations`: connect the organization to Chatwoot (admins), and run its syncs."""

from __future__ import annotations

from fastapi import APIRouter, Response

from zapsync.api.deps import AdminPrincipal, Ctx, CurrentPrincipal, Db
from zapsync.api.params import PathId
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas.integrations import (
    IntegrationCreate,
    IntegrationPublic,
    IntegrationUpdate,
    SyncResult,
)
from zapsync.services.integrations import connections as svc
from zapsync.services.integrations.sync import run_sync

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"], route_class=ApiRoute)


@router.post("", response_model=IntegrationPublic, status_code=201)
async def create_integration(
    body: IntegrationCreate, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> IntegrationPublic:
    """Test the credentials against Chatwoot (422 "Connection test failed: <Chatwoot's reason>"
    and nothing stored when it refuses), then store them encrypted. The answer's `webhook_url`
    is what to paste into Chatwoot."""
    view = await svc.create_integration(
        ctx, db, principal, provider=body.provider, api_key=body.api_key, config=body.config
    )
    return IntegrationPublic.of(view)


@router.get("", response_model=list[IntegrationPublic])
async def list_integrations(
    ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> list[IntegrationPublic]:
    return [IntegrationPublic.of(v) for v in await svc.list_integrations(ctx, db, principal)]


@router.get("/{integration_id}", response_model=IntegrationPublic)
async def get_integration(
    integration_id: PathId, ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> IntegrationPublic:
    integration = await svc.get_integration(db, principal, integration_id)
    return IntegrationPublic.of(svc.view_of(ctx, integration))


@router.patch("/{integration_id}", response_model=IntegrationPublic)
async def update_integration(
    integration_id: PathId, body: IntegrationUpdate, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> IntegrationPublic:
    """Change the key, account, inbox or bridged sessions; tested against Chatwoot again."""
    view = await svc.update_integration(
        ctx, db, principal, integration_id, api_key=body.api_key, config=body.config
    )
    return IntegrationPublic.of(view)


@router.delete("/{integration_id}", status_code=204, response_class=Response)
async def delete_integration(integration_id: PathId, db: Db, principal: AdminPrincipal) -> Response:
    """Forget the integration and the ids it mapped; zapsync's contacts and messages stay."""
    await svc.delete_integration(db, principal, integration_id)
    return Response(status_code=204)


@router.post("/{integration_id}/sync", response_model=SyncResult)
async def sync_integration(
    integration_id: PathId, ctx: Ctx, principal: AdminPrincipal
) -> SyncResult:
    """Pull the integration's contacts now; the run's counts (`GET /api/v1/sync/runs/{id}`)."""
    result = await run_sync(ctx, principal, integration_id=integration_id)
    return SyncResult.of(result)

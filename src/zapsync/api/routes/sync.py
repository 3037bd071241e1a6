"""`/api/v1/sync`: sync runs, and seed 004's routes and field names (`apiKey`, `entityType`,
`{"success": true, "data": …}`), so a team's scripts written for it keep working."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from zapsync.api.deps import AdminPrincipal, Ctx, CurrentPrincipal, Db
from zapsync.api.params import PathId
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas.integrations import (
    SeedConnectionCreate,
    SeedEnvelope,
    SyncRunPublic,
    SyncRunRequest,
    seed_counts,
    seed_envelope,
)
from zapsync.services.integrations import connections, sync

router = APIRouter(prefix="/api/v1/sync", tags=["sync"], route_class=ApiRoute)

_SEED_CONFIG = {"accountId": "account_id", "apiUrl": "api_url", "inboxId": "inbox_id",
                "sessionIds": "session_ids", "webhookSecret": "webhook_secret"}  # fmt: skip


@router.post("/connections", response_model=SeedEnvelope, status_code=201)
async def create_connection(
    body: SeedConnectionCreate, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> SeedEnvelope:
    """Seed 004's `POST /api/v1/sync/connections` (same as `POST /api/v1/integrations`)."""
    config = {_SEED_CONFIG.get(k, k): v for k, v in body.config.items()}
    view = await connections.create_integration(
        ctx, db, principal, provider=body.provider, api_key=body.api_key, config=config
    )
    i = view.integration
    data = {"id": i.id, "provider": i.provider, "status": i.status, "webhookUrl": view.webhook_url}
    return seed_envelope(data)


@router.get("/connections", response_model=SeedEnvelope)
async def list_connections(ctx: Ctx, db: Db, principal: CurrentPrincipal) -> SeedEnvelope:
    views = await connections.list_integrations(ctx, db, principal)
    data = [
        {"id": v.integration.id, "provider": v.integration.provider,
         "status": v.integration.status, "accountId": str(v.config.account_id),
         "apiUrl": v.config.api_url, "webhookUrl": v.webhook_url}
        for v in views
    ]  # fmt: skip
    return seed_envelope(data)


@router.post("/connections/{integration_id}/sync", response_model=SeedEnvelope)
async def sync_connection(
    integration_id: PathId, ctx: Ctx, principal: AdminPrincipal
) -> SeedEnvelope:
    """Pull the connection's contacts now (seed 004)."""
    result = await sync.run_sync(ctx, principal, integration_id=integration_id)
    return seed_envelope(seed_counts(result))


@router.post("/run", response_model=SeedEnvelope)
async def run(body: SyncRunRequest, ctx: Ctx, principal: AdminPrincipal) -> SeedEnvelope:
    """One run now: `entity_type` (or `entityType`) contacts, `direction` pull or push."""
    result = await sync.run_sync(
        ctx,
        principal,
        provider=body.provider,
        entity_type=body.entity_type,
        direction=body.direction,
        integration_id=body.integration_id,
    )
    return seed_envelope(seed_counts(result))


@router.get("/runs", response_model=SeedEnvelope)
async def list_runs(
    db: Db,
    principal: CurrentPrincipal,
    integration_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SeedEnvelope:
    """The integrations' runs, newest first, each with its counts, errors and cursor."""
    runs = await sync.list_runs(
        db, principal, integration_id=integration_id, kind=kind, limit=limit
    )
    data = [{**SyncRunPublic.of(r).model_dump(mode="json"), **seed_counts(r)} for r in runs]
    return seed_envelope(data)


@router.get("/runs/{run_id}", response_model=SeedEnvelope)
async def get_run(run_id: PathId, db: Db, principal: CurrentPrincipal) -> SeedEnvelope:
    run = await sync.get_run(db, principal, run_id)
    return seed_envelope({**SyncRunPublic.of(run).model_dump(mode="json"), **seed_counts(run)})

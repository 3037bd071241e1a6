"""`/api/v1/status-sync`: the dry run (GET) and the apply (POST) for the organization."""

from __future__ import annotations

from fastapi import APIRouter

from zapsync.api.deps import AdminPrincipal, Ctx, CurrentPrincipal
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import StatusSyncDryRun, StatusSyncReport
from zapsync.services.sessions.status_sync import apply_status_sync, dry_run

router = APIRouter(prefix="/api/v1/status-sync", tags=["status sync"], route_class=ApiRoute)


@router.get("", response_model=StatusSyncDryRun)
async def status_sync_dry_run(ctx: Ctx, principal: CurrentPrincipal) -> StatusSyncDryRun:
    """Stored status next to the live one for every session; changes nothing."""
    sessions = await dry_run(ctx, organization_id=principal.organization_id)
    return StatusSyncDryRun.model_validate(
        {
            "sessions": sessions,
            "needs_sync": sum(1 for s in sessions if s["needs_sync"]),
            "errors": sum(1 for s in sessions if s["error"]),
        }
    )


@router.post("", response_model=StatusSyncReport)
async def status_sync_apply(ctx: Ctx, principal: AdminPrincipal) -> StatusSyncReport:
    report = await apply_status_sync(ctx, organization_id=principal.organization_id)
    return StatusSyncReport.model_validate(report.as_dict())

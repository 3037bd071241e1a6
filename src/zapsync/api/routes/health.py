"""Liveness and readiness; the only routes without a token besides the webhook receivers."""

from __future__ import annotations

from fastapi import APIRouter, Response

from zapsync import __version__
from zapsync.api.deps import Ctx
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import HealthPublic, ReadyPublic
from zapsync.services.readiness import check_ready

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """The process is up."""
    return HealthPublic(status="ok", version=__version__)


@router.get(
    "/health/ready",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "not ready"}},
)
async def ready(ctx: Ctx, response: Response) -> ReadyPublic:
    """Ready when the database answers and its migrations are at head."""
    readiness = await check_ready(ctx)
    if not readiness.ready:
        response.status_code = 503
    return ReadyPublic(status="ready" if readiness.ready else "not ready", checks=readiness.checks)

"""Liveness and readiness; the only routes without a token besides the webhook receivers."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from zapsync import __version__
from zapsync.api.deps import Ctx
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import HealthPublic, ReadyPublic
from zapsync.store.migrate import head_revision

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/health", response_model=HealthPublic)
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/health/ready",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "not ready"}},
)
async def ready(ctx: Ctx) -> JSONResponse:
    """Ready when the database answers and its migrations are at head."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        async with ctx.db.engine.connect() as conn:
            revision = await asyncio.wait_for(
                conn.scalar(text("SELECT version_num FROM alembic_version")), timeout=5
            )
        checks["database"] = "ok"
        head = head_revision()
        checks["migrations"] = {"current": revision, "head": head}
        if revision != head:
            ok = False
            checks["reason"] = "migrations are not at head: run `zapsync db upgrade`"
    except Exception as exc:  # any failure means not ready; the reason is reported
        ok = False
        checks["database"] = "unreachable"
        checks["reason"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)

"""`GET /metrics` in Prometheus's text format, for a scraper holding `ZAPSYNC_METRICS_TOKEN`.

Its own token, not a user's: the figures span every organization (an API token sees one),
and a scraper should hold no credential that can read messages or run jobs. Not "loopback
only": behind a reverse proxy on the same host every request comes from loopback. Unset, the
route is off (401 saying so), as the cron routes are without CRON_SECRET; `/health` and
`/health/ready` stay open for orchestrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from zapsync.api.deps import Ctx, Db
from zapsync.api.openapi import TEXT
from zapsync.metrics.database import database_families
from zapsync.security.tokens import secrets_equal
from zapsync.services.errors import Unauthorized

router = APIRouter(tags=["health"])
_bearer = HTTPBearer(auto_error=False, description="ZAPSYNC_METRICS_TOKEN")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": TEXT}}},
        401: {"description": "no token"},
    },
)
async def metrics(
    ctx: Ctx, db: Db, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Response:
    """Webhooks, ingest latency, status checks, sessions up, outbox depth and age, job runs."""
    expected = ctx.settings.metrics_token
    if expected is None or not expected.get_secret_value():
        raise Unauthorized("metrics are disabled: set ZAPSYNC_METRICS_TOKEN")
    if creds is None or not secrets_equal(creds.credentials, expected.get_secret_value()):
        raise Unauthorized("wrong metrics token")
    stored = await database_families(db)
    body = generate_latest(ctx.metrics.registry) + generate_latest(stored)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

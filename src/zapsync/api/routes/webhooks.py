"""`/api/v1/webhooks/{provider}/{session_id}`: where gateways deliver events.

Authenticated by the session's webhook secret or the gateway's signature, not a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zapsync.services.webhook_batches import WebhookBatcher
from zapsync.services.webhooks import Delivery

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post("/{provider}/{session_id}", responses={202: {}, 400: {}, 401: {}})
# Evolution with `byEvents` appends the event as a path suffix (`/messages-upsert`).
@router.post("/{provider}/{session_id}/{event_suffix}", include_in_schema=False)
async def gateway_webhook(provider: str, session_id: int, request: Request) -> JSONResponse:
    body = await request.body()
    # Applied with the other deliveries waiting, in one transaction; answered after commit.
    batcher: WebhookBatcher = request.app.state.webhooks
    delivery = Delivery.of(provider, session_id, request.headers, request.query_params, body)
    outcome = await batcher.receive(delivery)
    if outcome.forwarded:  # committed: relay it to the team's own webhook now
        request.app.state.forwards.wake()
    content: dict[str, Any] = {"received": outcome.events, "applied": outcome.applied}
    if outcome.only_unknown:
        content["ignored"] = outcome.ignored
        return JSONResponse(content, status_code=202)
    return JSONResponse(content, status_code=200)

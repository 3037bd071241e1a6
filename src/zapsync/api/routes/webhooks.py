"""`/api/v1/webhooks/{provider}/{session_id}`: where gateways deliver events.

Authenticated by the session's webhook secret and the gateway's signature, not a token (see
services/webhook_auth.py). What is cheap is checked first: the rate limits and whether the
session exists, before a byte of the body is read; the body is then read within
ZAPSYNC_WEBHOOK_MAX_BODY_MB (api/body_limit.py). Every refusal is logged and counted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zapsync.api.body_limit import BodyTooLarge
from zapsync.api.params import PathId
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import WebhookReceived
from zapsync.security.rate_limits import RateLimit, RateLimited
from zapsync.services.webhook_auth import Refusal, WebhookRefused
from zapsync.services.webhook_batches import WebhookBatcher
from zapsync.services.webhook_refusals import RefusalCounter
from zapsync.services.webhooks import Delivery, KnownSessions

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)

PATH = r"/api/v1/webhooks/[^/]+/[^/]+(/[^/]+)?"  # the routes below, for the body limit


# What a gateway never does: refusals that count against the client address. A deleted
# session's retries (unknown, archived) or a late retry (expired) are a real gateway's, and
# must not shut out the other sessions it serves.
FORGERIES = frozenset({Refusal.WRONG_SECRET, Refusal.BAD_SIGNATURE})


class WebhookLimits:
    """Deliveries per session, and refused deliveries per client address."""

    def __init__(self, per_session: str, refusals_per_client: str) -> None:
        self.per_session = RateLimit("webhook", per_session)
        self.refusals = RateLimit("webhook-refused", refusals_per_client)


@router.post(
    "/{provider}/{session_id}",
    response_model=WebhookReceived,
    responses={
        202: {"model": WebhookReceived},
        **problem_responses(400, 401, 404, 410, 413, 429),
    },
)
# Evolution with `byEvents` appends the event as a path suffix (`/messages-upsert`).
@router.post("/{provider}/{session_id}/{event_suffix}", include_in_schema=False)
async def gateway_webhook(provider: str, session_id: PathId, request: Request) -> JSONResponse:
    counter: RefusalCounter = request.app.state.webhook_refusals
    limits: WebhookLimits = request.app.state.webhook_limits
    client = request.client.host if request.client else None
    try:
        content, status = await _receive(request, limits, provider, session_id, client)
    except (WebhookRefused, BodyTooLarge) as exc:
        refusal = exc.refusal if isinstance(exc, WebhookRefused) else Refusal.TOO_LARGE
        counter.note(
            refusal, provider=provider, session_id=session_id, client=client, detail=exc.detail
        )
        if refusal in FORGERIES:
            await limits.refusals.hit(client or "-")
        raise
    return JSONResponse(content, status_code=status)


async def _receive(
    request: Request, limits: WebhookLimits, provider: str, session_id: int, client: str | None
) -> tuple[dict[str, Any], int]:
    known: KnownSessions = request.app.state.webhook_sessions
    try:
        await limits.refusals.check(client or "-")
        await limits.per_session.hit(f"{provider}:{session_id}")
    except RateLimited as exc:
        raise WebhookRefused(
            Refusal.RATE_LIMITED,
            f"too many webhooks; retry after {exc.retry_after} s",
            retry_after=exc.retry_after,
        ) from None
    await known.check(provider, session_id)  # before reading the body
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
        return content, 202
    return content, 200

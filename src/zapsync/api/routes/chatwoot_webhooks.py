"""Where Chatwoot delivers an integration's events: `/api/v1/integrations/{id}/webhook` (the
URL zapsync gives), and seed 004's `/api/v1/sync/chatwoot/webhook` (the integration found by
the token in the URL). Authenticated by Chatwoot's signature or that token, not a Bearer
token (services/integrations/chatwoot_webhooks.py); every refusal is logged and counted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from zapsync.api.deps import Ctx, Refusals, WebhookLimitsDep
from zapsync.api.params import PathId
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import WebhookReceived
from zapsync.security.rate_limits import RateLimited
from zapsync.services.errors import Refusal, WebhookRefused
from zapsync.services.integrations import chatwoot_webhooks as svc

router = APIRouter(tags=["webhooks"], route_class=ApiRoute)

PATH = r"/api/v1/(integrations/\d+/webhook|sync/chatwoot/webhook)"  # for the body limit
_FORGERIES = frozenset({Refusal.WRONG_SECRET, Refusal.BAD_SIGNATURE})
_RESPONSES = {202: {"model": WebhookReceived}, **problem_responses(400, 401, 413, 429)}
Token = Annotated[str | None, Query(max_length=200, description="The token of the webhook URL.")]


@router.post(
    "/api/v1/integrations/{integration_id}/webhook",
    response_model=WebhookReceived,
    responses=_RESPONSES,
)
async def integration_webhook(
    integration_id: PathId,
    request: Request,
    response: Response,
    ctx: Ctx,
    counter: Refusals,
    limits: WebhookLimitsDep,
    token: Token = None,
) -> WebhookReceived:
    return await _receive(ctx, request, response, counter, limits, integration_id, token)


@router.post("/api/v1/sync/chatwoot/webhook", response_model=WebhookReceived, responses=_RESPONSES)
async def seed_webhook(
    request: Request,
    response: Response,
    ctx: Ctx,
    counter: Refusals,
    limits: WebhookLimitsDep,
    token: Token = None,
) -> WebhookReceived:
    """Seed 004's webhook URL; which integration is told by `token`."""
    return await _receive(ctx, request, response, counter, limits, None, token)


async def _receive(
    ctx: Ctx,
    request: Request,
    response: Response,
    counter: Refusals,
    limits: WebhookLimitsDep,
    integration_id: int | None,
    token: str | None,
) -> WebhookReceived:
    client = request.client.host if request.client else None
    try:
        await limits.refusals.check(client or "-")
    except RateLimited as exc:
        retry_after = exc.retry_after
        raise WebhookRefused(
            Refusal.RATE_LIMITED, f"too many refused webhooks; retry after {retry_after} s",
            retry_after=retry_after,
        ) from None  # fmt: skip
    try:
        outcome = await svc.receive(
            ctx,
            integration_id=integration_id,
            token=token,
            headers=request.headers,
            body=await request.body(),
        )
    except WebhookRefused as exc:
        counter.note(exc.refusal, provider="chatwoot", session_id=integration_id or 0,
                     client=client, detail=exc.detail)  # fmt: skip
        if exc.refusal in _FORGERIES:
            await limits.refusals.hit(client or "-")
        raise
    if not outcome.known:
        response.status_code = 202
        return WebhookReceived(received=[outcome.event], applied=0, ignored=outcome.ignored)
    return WebhookReceived(
        received=[outcome.event], applied=outcome.applied, ignored=outcome.ignored or None
    )

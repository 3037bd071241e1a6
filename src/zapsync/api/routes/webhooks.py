"""`/api/v1/webhooks/{provider}/{session_id}`: where gateways deliver events.

Authenticated by the session's webhook secret and the gateway's signature, not a token (see
services/ingest/auth.py). What is cheap is checked first: the rate limits and whether the
session exists, before a byte of the body is read; the body is then read within
ZAPSYNC_WEBHOOK_MAX_BODY_MB (api/body_limit.py). Every refusal is logged and counted."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from zapsync.api.body_limit import BodyTooLarge
from zapsync.api.deps import Batcher, Forwards, KnownSessionsDep, Refusals, WebhookLimitsDep
from zapsync.api.params import PathId
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import WebhookReceived
from zapsync.api.urls import WEBHOOKS
from zapsync.api.webhook_limits import WebhookLimits
from zapsync.security.rate_limits import RateLimited
from zapsync.services.errors import Refusal, WebhookRefused
from zapsync.services.ingest.webhooks import Delivery, KnownSessions

router = APIRouter(prefix=WEBHOOKS, tags=["webhooks"], route_class=ApiRoute)

PATH = WEBHOOKS + r"/[^/]+/[^/]+(/[^/]+)?"  # the routes below, for the body limit


# What a gateway never does: refusals that count against the client address. A deleted
# session's retries (unknown, archived) or a late retry (expired) are a real gateway's, and
# must not shut out the other sessions it serves.
FORGERIES = frozenset({Refusal.WRONG_SECRET, Refusal.BAD_SIGNATURE})


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
async def gateway_webhook(
    provider: str,
    session_id: PathId,
    request: Request,
    response: Response,
    counter: Refusals,
    limits: WebhookLimitsDep,
    known: KnownSessionsDep,
    batcher: Batcher,
    forwards: Forwards,
) -> WebhookReceived:
    client = request.client.host if request.client else None
    try:
        await _admit(limits, known, provider, session_id, client)
        body = await request.body()
        # Applied with the other deliveries waiting, in one transaction; answered after commit.
        delivery = Delivery.of(provider, session_id, request.headers, request.query_params, body)
        outcome = await batcher.receive(delivery)
    except (WebhookRefused, BodyTooLarge) as exc:
        refusal = exc.refusal if isinstance(exc, WebhookRefused) else Refusal.TOO_LARGE
        counter.note(
            refusal, provider=provider, session_id=session_id, client=client, detail=exc.detail
        )
        if refusal in FORGERIES:
            await limits.refusals.hit(client or "-")
        raise
    if outcome.forwarded:  # committed: relay it to the team's own webhook now
        forwards.wake()
    if outcome.only_unknown:
        response.status_code = 202
        return WebhookReceived(
            received=outcome.events, applied=outcome.applied, ignored=outcome.ignored
        )
    return WebhookReceived(received=outcome.events, applied=outcome.applied)


async def _admit(
    limits: WebhookLimits, known: KnownSessions, provider: str, session_id: int, client: str | None
) -> None:
    """Refuse what is cheap to refuse (rate limits, an unknown session) before the body is read."""
    try:
        await limits.refusals.check(client or "-")
        await limits.per_session.hit(f"{provider}:{session_id}")
    except RateLimited as exc:
        raise WebhookRefused(
            Refusal.RATE_LIMITED,
            f"too many webhooks; retry after {exc.retry_after} s",
            retry_after=exc.retry_after,
        ) from None
    await known.check(provider, session_id)

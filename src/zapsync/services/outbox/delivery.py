"""The outbox worker: hands queued messages to their gateway, retries outages, records failures.

Contract:
- An item is claimed before its gateway call (attempts + 1, and a lease of
  `2 x ZAPSYNC_GATEWAY_TIMEOUT + 5` s in `next_attempt_at`), so two workers or replicas never
  send one item at once, and an item whose worker died is taken up again when the lease ends.
- Per session, items go out in the order they were queued: one waiting for a retry holds
  back the later ones of its session. Up to `SESSIONS_AT_ONCE` sessions are served at once.
- `GatewayUnavailable` (and any unexpected error) is retried after
  `ZAPSYNC_OUTBOX_BASE_DELAY x 2^(attempt-1)` s, drawn with jitter (`domain/backoff.py`:
  between half that and that), so sessions failing together do not retry in lockstep; after
  `ZAPSYNC_OUTBOX_MAX_ATTEMPTS` tries the message shows `ack=failed` with the reason.
  `GatewayRejected` fails at once with the gateway's reason. Each failure publishes
  `message_updated`.
- On success the local id (`local-…`) becomes the gateway's id in the same transaction that
  marks the item done. The gateway's echo of that message (its webhook for our own send) is
  then a repeat of a stored message; when the echo won the race and was stored as its own
  row, that row is folded into ours: one `message_merged` event `{"conversation_id", "id":
  ours, "replaces": the echo's id}` tells clients to drop the echo (it was announced by
  `new_message`), then `message_updated` (with `replaces_message_id`) carries our row. The
  echo's id is never given to another message (AUTOINCREMENT on SQLite, sequences on
  PostgreSQL).
- Before a retry, an echo already stored for an earlier attempt whose outcome was unknown
  (a timeout after the gateway took the message) is adopted instead of sending twice.
- The worker (`runtime/outbox_worker.py`) runs `deliver_due` at start (resuming what a
  restart left), whenever a message is queued in this process, when the next retry is due
  (at once when one fell due during a pass), and every poll interval. When a session becomes
  connected again, its sends waiting out a retry delay go at once (`retry_session_now`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event, message_json
from zapsync.domain.backoff import backoff
from zapsync.domain.gateway import Ack, SentMessage
from zapsync.providers.base import Gateway, GatewayRejected, GatewayUnavailable, MediaToSend
from zapsync.runtime.context import AppContext
from zapsync.services.inbox.conversations import SEND_KIND
from zapsync.services.inbox.sending import LOCAL_PREFIX
from zapsync.services.ingest.messages import apply_parked_ack, confirm_sent
from zapsync.services.sessions.gateway import gateway_for
from zapsync.store import outbox as store
from zapsync.store.models import Conversation, Message, Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

SESSIONS_AT_ONCE = 20
BATCH = 200
FINALIZE_TRIES = 5


@dataclass
class OutboxReport:
    due: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # taken by another worker meanwhile, or held behind a retry
    errors: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    attempts: int
    session_id: int | None
    message_id: int | None
    payload: dict[str, Any]


def lease(ctx: AppContext) -> timedelta:
    return timedelta(seconds=ctx.settings.gateway_timeout * 2 + 5)


def retry_delay(ctx: AppContext, attempts: int) -> timedelta:
    return backoff(ctx.settings.outbox_base_delay, attempts)


async def due_items(ctx: AppContext, now: datetime, limit: int = BATCH) -> list[Any]:
    async with ctx.db.reads() as db:
        return await store.due_items(db, SEND_KIND, now, limit)


async def deliver_due(ctx: AppContext, *, limit: int = BATCH) -> OutboxReport:
    """Hand every due item to its gateway (sessions in parallel, each session in order)."""
    report = OutboxReport()
    rows = await due_items(ctx, utcnow(), limit)
    report.due = len(rows)
    by_session: dict[int | None, list[int]] = {}
    for row in rows:
        by_session.setdefault(row.session_id, []).append(row.id)
    gate = asyncio.Semaphore(SESSIONS_AT_ONCE)

    async def serve(item_ids: list[int]) -> None:
        async with gate:
            for position, item_id in enumerate(item_ids):
                try:
                    outcome = await deliver_one(ctx, item_id)
                except Exception as exc:  # the database, not the gateway: try again later
                    log.exception("outbox delivery failed", item_id=item_id)
                    report.errors.append(f"item {item_id}: {exc}")
                    outcome = "retried"
                report.count(outcome)
                ctx.metrics.outbox_delivery(outcome)
                if outcome == "retried":
                    report.skipped += len(item_ids) - position - 1
                    return

    await asyncio.gather(*(serve(ids) for ids in by_session.values()))
    if report.delivered or report.retried or report.failed:
        log.info("outbox", **report.as_dict())
    return report


async def _claim(ctx: AppContext, item_id: int) -> Claim | None:
    async with ctx.db.session() as db:
        row = await store.claim(db, item_id, lease(ctx))
        await db.commit()
    if row is None:
        return None
    return Claim(row.id, row.attempts, row.session_id, row.message_id, dict(row.payload or {}))


async def deliver_one(ctx: AppContext, item_id: int) -> str:
    """Claim and deliver one item: `delivered`, `retried`, `failed` or `skipped`."""
    claim = await _claim(ctx, item_id)
    if claim is None:
        return "skipped"
    async with ctx.db.session() as db:
        message = await db.get(Message, claim.message_id) if claim.message_id else None
        session = await db.get(Session, claim.session_id) if claim.session_id else None
        conversation = await db.get(Conversation, message.conversation_id) if message else None
        echo = await _earlier_echo(db, message) if message and claim.attempts > 1 else None
    if message is None or conversation is None:
        await _fail(ctx, claim, "the message was deleted before it could be sent")
        return "failed"
    if session is None or session.archived_at is not None:
        await _fail(ctx, claim, "the session was archived before the message could be sent")
        return "failed"
    if echo is not None:
        log.info("outbox adopted an echo", item_id=claim.id, provider_message_id=echo.pmid)
        await _mark_sent(ctx, claim, SentMessage(echo.pmid, Ack(echo.ack)))
        return "delivered"
    try:
        sent = await _send(gateway_for(ctx, session), conversation.chat_jid, claim.payload)
    except GatewayRejected as exc:
        await _fail(ctx, claim, exc.reason)
        return "failed"
    except GatewayUnavailable as exc:
        return await _retry_or_fail(ctx, claim, exc.reason)
    except Exception as exc:
        log.exception("outbox send raised", item_id=claim.id)
        return await _retry_or_fail(ctx, claim, f"unexpected error: {exc}")
    await _mark_sent(ctx, claim, sent)
    return "delivered"


async def _send(gateway: Gateway, to_jid: str, payload: dict[str, Any]) -> SentMessage:
    if payload.get("type") == "text":
        return await gateway.send_text(to_jid, str(payload.get("text") or ""))
    media = MediaToSend(
        type=str(payload["type"]),
        url=str(payload["url"]),
        mime_type=payload.get("mime_type"),
        file_name=payload.get("file_name"),
        caption=payload.get("caption"),
    )
    return await gateway.send_media(to_jid, media)


async def _earlier_echo(db: AsyncSession, message: Message) -> Any | None:
    return await store.earlier_echo(db, message, kind=SEND_KIND, local_prefix=LOCAL_PREFIX)


async def _mark_sent(ctx: AppContext, claim: Claim, sent: SentMessage) -> None:
    gateway_id = sent.provider_message_id[:200]
    for attempt in range(FINALIZE_TRIES):
        try:
            async with ctx.db.session() as db:
                await _adopt_gateway_id(ctx, db, claim, gateway_id, sent.ack)
                await db.commit()
            break
        except DBAPIError:
            # The echo was committed between our read and our write (unique clash), or
            # SQLite was busy: read again; the next round folds the echo in.
            if attempt == FINALIZE_TRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    log.info("outbox sent", item_id=claim.id, attempts=claim.attempts, gateway_id=gateway_id)
    if claim.session_id is not None:
        await _apply_parked_ack(ctx, claim.session_id, gateway_id)


async def _adopt_gateway_id(
    ctx: AppContext, db: AsyncSession, claim: Claim, gateway_id: str, ack: Ack
) -> None:
    # Writing the item first makes this transaction SQLite's writer before it reads.
    await store.mark_done(db, claim.id)
    if claim.message_id is not None:
        await confirm_sent(db, message_id=claim.message_id, gateway_id=gateway_id, ack=ack)


async def _apply_parked_ack(ctx: AppContext, session_id: int, gateway_id: str) -> None:
    """An ack that arrived while we were writing the gateway's id was parked for a message
    that did not exist yet; apply it now."""
    async with ctx.db.session() as db:
        await apply_parked_ack(db, ctx.bus, session_id=session_id, gateway_id=gateway_id)
        await db.commit()


async def _retry_or_fail(ctx: AppContext, claim: Claim, reason: str) -> str:
    if claim.attempts >= ctx.settings.outbox_max_attempts:
        await _fail(ctx, claim, f"{reason} (gave up after {claim.attempts} attempts)")
        return "failed"
    at = utcnow() + retry_delay(ctx, claim.attempts)
    async with ctx.db.session() as db:
        await store.schedule_retry(db, claim.id, at, reason)
        await db.commit()
    log.info("outbox will retry", item_id=claim.id, attempts=claim.attempts, reason=reason)
    return "retried"


async def _fail(ctx: AppContext, claim: Claim, reason: str) -> None:
    async with ctx.db.session() as db:
        await store.mark_failed(db, claim.id, reason)
        if claim.message_id is not None:
            message = await store.fail_pending_message(db, claim.message_id)
            if message is not None:
                publish_on_commit(
                    db,
                    Event(
                        "message_updated",
                        message.organization_id,
                        {**message_json(message), "error": reason},
                        conversation_id=message.conversation_id,
                    ),
                )
        await db.commit()
    log.warning("outbox gave up", item_id=claim.id, attempts=claim.attempts, reason=reason)


async def seconds_until_next(ctx: AppContext) -> float | None:
    """Until the next retry (or lease end) is due; 0 when one is due already.

    A retry can fall due while a pass is still busy with other sends (a slow gateway, another
    session's media): it is served at once, not after a poll interval. Items held behind a
    not-yet-due item of their session are not due: the holder's time is what counts."""
    now = utcnow()
    if await due_items(ctx, now, limit=1):
        return 0.0
    async with ctx.db.reads() as db:
        nearest = await store.nearest_pending(db, SEND_KIND, now)
    if nearest is None:
        return None
    return max((nearest - utcnow()).total_seconds(), 0.0)


async def retry_session_now(ctx: AppContext, session_id: int) -> int:
    """The session is back: its sends waiting out a retry delay are due now, not after the
    backoff. Items in flight are left alone. Returns how many were hurried."""
    async with ctx.db.session() as db:
        hurried = await store.hurry_session(db, SEND_KIND, session_id)
        await db.commit()
    if hurried:
        log.info("outbox retries now: session reconnected", session_id=session_id, items=hurried)
    return hurried

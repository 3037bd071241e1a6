"""Webhook deliveries from gateways: verify, parse, apply. Gateways deliver at least once,
out of order and in duplicate; every apply here is idempotent."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.domain.gateway import (
    ChatSeen,
    ContactSeen,
    HistoryArrived,
    MessageAcked,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    QrUpdated,
    StatusChanged,
    UnknownEvent,
    WebhookEvent,
)
from zapsync.domain.gateway import (
    Message as DomainMessage,
)
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.providers.base import WebhookRejected
from zapsync.security.tokens import secrets_equal
from zapsync.services import message_store
from zapsync.services.contact_links import link_identity
from zapsync.services.context import AppContext
from zapsync.services.errors import ServiceError, Unauthorized
from zapsync.services.import_triggers import history_arrived
from zapsync.services.session_gateway import gateway_for
from zapsync.services.session_status import record_status
from zapsync.services.sessions import publish_qr
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)


TOKEN_HEADER = "x-zapsync-token"


class MalformedWebhook(ServiceError):
    status_code = 400
    title = "Malformed webhook"


@dataclass
class WebhookOutcome:
    events: list[str] = field(default_factory=list)
    applied: int = 0
    ignored: list[str] = field(default_factory=list)
    history_arrived: bool = False

    @property
    def only_unknown(self) -> bool:
        return bool(self.ignored) and self.applied == 0


def _authenticated(session: Session, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    given = headers.get(TOKEN_HEADER) or query.get("token") or ""
    return bool(given) and secrets_equal(given, session.webhook_secret)


async def receive_webhook(
    ctx: AppContext,
    provider: str,
    session_id: int,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: bytes,
) -> WebhookOutcome:
    started = time.perf_counter()
    async with ctx.db.session() as db:
        session = await db.get(Session, session_id)
        if session is None or session.provider != provider:
            # Same answer as a wrong secret: do not reveal which session ids exist.
            raise Unauthorized("unknown session or wrong webhook secret")
        gateway = gateway_for(ctx, session)
        lowered = {k.lower(): v for k, v in headers.items()}
        if not (
            _authenticated(session, lowered, query)
            or gateway.verify_webhook(lowered, body, session.webhook_secret)
        ):
            log.warning("webhook refused: wrong secret", provider=provider, session_id=session_id)
            raise Unauthorized("unknown session or wrong webhook secret")
        try:
            events = gateway.parse_webhook(body)
        except WebhookRejected as exc:
            log.warning("webhook refused: malformed", session_id=session_id, reason=exc.reason)
            raise MalformedWebhook(exc.reason) from None
        outcome = await apply_events(ctx, db, session, events)
        await db.commit()
    if outcome.history_arrived:
        history_arrived(ctx, session_id)
    log.info(
        "webhook",
        provider=provider,
        session_id=session_id,
        events=outcome.events,
        applied=outcome.applied,
        ignored=outcome.ignored,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return outcome


async def apply_events(
    ctx: AppContext, db: AsyncSession, session: Session, events: Sequence[WebhookEvent]
) -> WebhookOutcome:
    """Apply typed gateway events to one session; the caller commits.

    Messages are stored in batches; a batch is written before an event that refers to
    stored messages (ack, edit, delete) so the order of the delivery is kept."""
    outcome = WebhookOutcome()
    live: list[DomainMessage] = []
    history: list[DomainMessage] = []
    org = session.organization_id

    async def flush() -> None:
        for batch, is_live in ((live, True), (history, False)):
            if batch:
                await message_store.store_messages(
                    db,
                    ctx.bus,
                    organization_id=org,
                    session_id=session.id,
                    messages=list(batch),
                    live=is_live,
                )
                batch.clear()

    for event in events:
        outcome.events.append(type(event).__name__)
        if isinstance(event, UnknownEvent):
            outcome.ignored.append(event.name)
            continue
        outcome.applied += 1
        session.last_activity_at = utcnow()
        if isinstance(event, StatusChanged):
            record_status(
                db,
                ctx.bus,
                session,
                event.status,
                StatusSource.WEBHOOK,
                reason=event.reason or f"gateway reports {event.raw_status}",
                phone=event.phone,
            )
        elif isinstance(event, QrUpdated):
            if session.status != SessionStatus.CONNECTED.value:
                record_status(
                    db,
                    ctx.bus,
                    session,
                    SessionStatus.QR_PENDING,
                    StatusSource.WEBHOOK,
                    reason="a new QR code is waiting to be scanned",
                )
            publish_qr(ctx, session, event.qr)
        elif isinstance(event, MessageReceived):
            live.append(event.message)
        elif isinstance(event, HistoryArrived):
            # Old messages: stored quietly, and an import that found nothing retries now.
            history.extend(event.messages)
            outcome.history_arrived = True
        elif isinstance(event, MessageAcked):
            await flush()
            await message_store.apply_ack(
                db,
                ctx.bus,
                session_id=session.id,
                provider_message_id=event.provider_message_id,
                ack=event.ack,
            )
        elif isinstance(event, MessageEdited):
            await flush()
            await message_store.apply_edit(
                db,
                ctx.bus,
                session_id=session.id,
                provider_message_id=event.provider_message_id,
                body=event.body,
            )
        elif isinstance(event, MessageDeleted):
            await flush()
            await message_store.apply_delete(
                db, ctx.bus, session_id=session.id, provider_message_id=event.provider_message_id
            )
        elif isinstance(event, ContactSeen):
            await link_identity(
                db,
                organization_id=org,
                jid=event.jid,
                alt_jid=event.alt_jid,
                name=event.name,
                bus=ctx.bus,
            )
        elif isinstance(event, ChatSeen):
            await message_store.record_chats(
                db,
                ctx.bus,
                organization_id=org,
                session_id=session.id,
                chats=[event.chat],
                live=True,
            )
    await flush()
    return outcome

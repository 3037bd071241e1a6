"""Webhook deliveries from gateways: verify, parse, apply. Gateways deliver at least once,
out of order and in duplicate; every apply here is idempotent."""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from zapsync.services.context import AppContext
from zapsync.services.errors import ServiceError, Unauthorized
from zapsync.services.session_gateway import gateway_for
from zapsync.services.session_status import record_status
from zapsync.services.sessions import publish_qr
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)


def _message_store() -> Any:
    # Interim: the message store lands in its own change; imported lazily until then.
    return importlib.import_module("zapsync.services.message_store")


TOKEN_HEADER = "x-zapsync-token"


class MalformedWebhook(ServiceError):
    status_code = 400
    title = "Malformed webhook"


@dataclass
class WebhookOutcome:
    events: list[str] = field(default_factory=list)
    applied: int = 0
    ignored: list[str] = field(default_factory=list)

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
    """Apply typed gateway events to one session; the caller commits."""
    outcome = WebhookOutcome()
    messages = []
    for event in events:
        name = type(event).__name__
        outcome.events.append(name)
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
            messages.append(event.message)
        elif isinstance(event, HistoryArrived):
            messages.extend(event.messages)
        elif isinstance(event, MessageAcked):
            await _flush_messages(ctx, db, session, messages)
            await _message_store().apply_ack(
                db,
                ctx.bus,
                session_id=session.id,
                provider_message_id=event.provider_message_id,
                ack=event.ack,
            )
        elif isinstance(event, MessageEdited):
            await _flush_messages(ctx, db, session, messages)
            await _message_store().apply_edit(
                db,
                ctx.bus,
                session_id=session.id,
                provider_message_id=event.provider_message_id,
                body=event.body,
            )
        elif isinstance(event, MessageDeleted):
            await _flush_messages(ctx, db, session, messages)
            await _message_store().apply_delete(
                db, ctx.bus, session_id=session.id, provider_message_id=event.provider_message_id
            )
        elif isinstance(event, ContactSeen):
            await _message_store().link_identity(
                db,
                organization_id=session.organization_id,
                jid=event.jid,
                alt_jid=event.alt_jid,
                name=event.name,
            )
        elif isinstance(event, ChatSeen):
            outcome.applied -= 1  # chats are created with their first message
    await _flush_messages(ctx, db, session, messages)
    return outcome


async def _flush_messages(
    ctx: AppContext, db: AsyncSession, session: Session, messages: list[DomainMessage]
) -> None:
    if not messages:
        return
    await _message_store().store_messages(
        db,
        ctx.bus,
        organization_id=session.organization_id,
        session_id=session.id,
        messages=list(messages),
        live=True,
    )
    messages.clear()

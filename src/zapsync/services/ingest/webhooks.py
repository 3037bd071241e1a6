"""Webhook deliveries from gateways: verify, parse, apply. Gateways deliver at least once,
out of order and in duplicate; every apply here is idempotent."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

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
from zapsync.providers.base import Gateway, WebhookRejected
from zapsync.runtime.context import AppContext
from zapsync.services.errors import ServiceError
from zapsync.services.imports.triggers import history_arrived
from zapsync.services.ingest import messages as message_store
from zapsync.services.ingest.auth import NOT_YOURS, Refusal, WebhookRefused, authenticate
from zapsync.services.ingest.chats import chat_is_stored
from zapsync.services.ingest.contacts import link_identity
from zapsync.services.ingest.forwarding import queue_forward
from zapsync.services.ingest.secrets import secrets_of
from zapsync.services.sessions.gateway import gateway_for
from zapsync.services.sessions.lifecycle import publish_qr
from zapsync.services.sessions.status import counts_as_activity, record_status
from zapsync.store import sessions as session_store
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)


class MalformedWebhook(WebhookRefused):
    def __init__(self, detail: str) -> None:
        super().__init__(Refusal.MALFORMED, detail)


@dataclass
class WebhookOutcome:
    events: list[str] = field(default_factory=list)
    applied: int = 0
    ignored: list[str] = field(default_factory=list)
    history_arrived: bool = False
    forwarded: bool = False  # queued for the session's `forward_to`

    @property
    def only_unknown(self) -> bool:
        return bool(self.ignored) and self.applied == 0


@dataclass(slots=True)
class Delivery:
    """One webhook request as it arrived: verified and parsed only when applied."""

    provider: str
    session_id: int
    headers: Mapping[str, str]  # names lower-cased
    query: Mapping[str, str]
    body: bytes
    received_at: float = field(default_factory=time.perf_counter)

    @classmethod
    def of(
        cls,
        provider: str,
        session_id: int,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
    ) -> Delivery:
        return cls(provider, session_id, {k.lower(): v for k, v in headers.items()}, query, body)


class KnownSessions:
    """Which session ids take webhooks of which provider, asked before a body is read.

    Only a cheap first filter: sessions found are remembered for `ttl` seconds (gateways post
    many deliveries per session), ids not found are asked again each time. The batch that
    applies a delivery loads the session anew and is what decides (archived, deleted)."""

    def __init__(self, ctx: AppContext, ttl: float = 30.0) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self._seen: dict[int, tuple[str, float]] = {}

    async def check(self, provider: str, session_id: int) -> None:
        """Raise WebhookRefused (unknown session) unless `session_id` is one of `provider`."""
        now = time.monotonic()
        seen = self._seen.get(session_id)
        if seen is None or now - seen[1] > self.ttl:
            async with self.ctx.db.session() as db:
                found = await session_store.provider_of(db, session_id)
            if found is None:
                self._seen.pop(session_id, None)
                raise WebhookRefused(Refusal.UNKNOWN_SESSION, NOT_YOURS)
            if len(self._seen) > 100_000:
                self._seen.clear()
            seen = self._seen[session_id] = (found, now)
        if seen[0] != provider:
            raise WebhookRefused(Refusal.UNKNOWN_SESSION, NOT_YOURS)


# What applying a delivery gave: its outcome, or why it was refused (nothing of it written).
DeliveryResult = WebhookOutcome | ServiceError


def _verified_events(
    ctx: AppContext,
    delivery: Delivery,
    session: Session | None,
    gateways: dict[int, Gateway],
) -> list[WebhookEvent]:
    if session is None or session.provider != delivery.provider:
        raise WebhookRefused(Refusal.UNKNOWN_SESSION, NOT_YOURS)
    if session.id not in gateways:
        gateways[session.id] = gateway_for(ctx, session)
    gateway = gateways[session.id]
    authenticate(
        gateway,
        delivery.headers,
        delivery.query,
        delivery.body,
        secrets_of(ctx.cipher, session),
        window=timedelta(seconds=ctx.settings.webhook_replay_window),
        now=utcnow(),
    )
    if session.archived_at is not None:
        # A gateway re-sending after the delete must not bring the session back.
        raise WebhookRefused(Refusal.ARCHIVED, f"session {session.id} was deleted")
    try:
        return gateway.parse_webhook(delivery.body)
    except WebhookRejected as exc:
        raise MalformedWebhook(exc.reason) from None


async def apply_deliveries(ctx: AppContext, deliveries: Sequence[Delivery]) -> list[DeliveryResult]:
    """Verify, parse and apply deliveries in one transaction; one result per delivery, in order.

    A refused delivery (see `Refusal`: unknown or archived session, wrong secret or signature,
    malformed body) writes nothing and does
    not stop the others. Each session's events are applied in arrival order. Any other error
    rolls the whole transaction back and propagates: the caller decides whether to retry the
    deliveries one by one.
    """
    results: list[DeliveryResult] = []
    async with ctx.db.session() as db:
        sessions = await session_store.sessions_by_id(db, (d.session_id for d in deliveries))
        gateways: dict[int, Gateway] = {}
        by_session: dict[int, list[WebhookEvent]] = {}
        for delivery in deliveries:
            session = sessions.get(delivery.session_id)
            try:
                events = _verified_events(ctx, delivery, session, gateways)
            except ServiceError as exc:
                results.append(exc)
                continue
            by_session.setdefault(delivery.session_id, []).extend(events)
            outcome = summarize(events)
            outcome.forwarded = queue_forward(db, sessions[delivery.session_id], delivery.body)
            results.append(outcome)
        for session_id, events in by_session.items():
            await apply_events(ctx, db, sessions[session_id], events)
        await db.commit()
    for delivery, result in zip(deliveries, results, strict=True):
        ctx.metrics.webhook(
            delivery.provider,
            delivery.received_at,
            result if isinstance(result, ServiceError) else result.events,
        )
        if isinstance(result, WebhookOutcome):
            _log_delivery(delivery, result)
            if result.history_arrived:
                history_arrived(ctx, delivery.session_id)
    return results


def _log_delivery(delivery: Delivery, outcome: WebhookOutcome) -> None:
    log.info(
        "webhook",
        provider=delivery.provider,
        session_id=delivery.session_id,
        events=outcome.events,
        applied=outcome.applied,
        ignored=outcome.ignored,
        ms=round((time.perf_counter() - delivery.received_at) * 1000, 2),
    )


async def receive_webhook(ctx: AppContext, delivery: Delivery) -> WebhookOutcome:
    """Apply one delivery in its own transaction; raises what refused it."""
    (result,) = await apply_deliveries(ctx, [delivery])
    if isinstance(result, ServiceError):
        raise result
    return result


def summarize(events: Sequence[WebhookEvent]) -> WebhookOutcome:
    """What a delivery's events amount to: applied, or ignored as unknown."""
    outcome = WebhookOutcome()
    for event in events:
        outcome.events.append(type(event).__name__)
        if isinstance(event, UnknownEvent):
            outcome.ignored.append(event.name)
        else:
            outcome.applied += 1
            outcome.history_arrived |= isinstance(event, HistoryArrived)
    return outcome


async def apply_events(
    ctx: AppContext, db: AsyncSession, session: Session, events: Sequence[WebhookEvent]
) -> WebhookOutcome:
    """Apply typed gateway events to one session; the caller commits.

    Messages are stored in batches; a batch is written before an event that refers to
    stored messages (ack, edit, delete) so the order of the delivery is kept."""
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
                    skip_groups=ctx.settings.skip_groups,
                )
                batch.clear()

    applicable = [e for e in events if not isinstance(e, UnknownEvent)]
    if any(counts_as_activity(e) for e in applicable):
        session.last_activity_at = utcnow()
    skip_groups = ctx.settings.skip_groups
    for event in applicable:
        if isinstance(event, MessageAcked | MessageEdited | MessageDeleted) and not (
            chat_is_stored(event.chat_jid, skip_groups=skip_groups)
        ):
            continue  # about a message of a chat zapsync does not store

        if isinstance(event, StatusChanged):
            record_status(
                db,
                ctx.bus,
                session,
                event.status,
                StatusSource.WEBHOOK,
                reason=event.reason or f"gateway reports {event.raw_status}",
                phone=event.phone,
                reported_at=event.at,
            )
        elif isinstance(event, QrUpdated):
            if session.status == SessionStatus.LOGGED_OUT.value:
                continue  # a QR nobody asked for (a reconnect loop): only connect pairs again
            if session.status != SessionStatus.CONNECTED.value:
                record_status(
                    db,
                    ctx.bus,
                    session,
                    SessionStatus.QR_PENDING,
                    StatusSource.WEBHOOK,
                    reason="a new QR code is waiting to be scanned",
                )
            publish_qr(ctx, db, session, event.qr)
        elif isinstance(event, MessageReceived):
            live.append(event.message)
        elif isinstance(event, HistoryArrived):
            # Old messages: stored quietly, and an import that found nothing retries now.
            history.extend(event.messages)
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
                skip_groups=ctx.settings.skip_groups,
            )
    await flush()
    return summarize(events)

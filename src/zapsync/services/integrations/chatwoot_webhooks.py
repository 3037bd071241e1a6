"""Chatwoot's webhooks for an integration: checked, then applied once.

Proof first, nothing read before it: with a webhook secret the delivery must carry Chatwoot's
signature (`sha256=` HMAC of `"<timestamp>.<body>"`, the timestamp within 5 minutes); without
one, the token of the integration's webhook URL. Then each event:

- `message_created` of an agent (outgoing, not a private note) in a bridged conversation goes to
  WhatsApp through the outbox, attachments included; the message's ref is written with it, so
  the same message delivered twice (Chatwoot issue #11901) is sent once, and the bridge never
  mirrors it back. What zapsync itself wrote into Chatwoot (`source_id` `zapsync:…`) is an echo
  and is ignored.
- `conversation_status_changed` / `conversation_updated`: the bridged conversation takes the
  status (resolved in Chatwoot, resolved in zapsync).
- `contact_created` / `contact_updated`: the contact as a pull would write it.

Events of other kinds are answered 202 and ignored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.connectors.chatwoot.mapping import (
    CONVERSATION_STATUS,
    PROVIDER,
    ChatwootMessage,
    UnmappableRecord,
    int_or_none,
    map_contact,
    map_message,
)
from zapsync.connectors.chatwoot.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefused,
    verify_signature,
)
from zapsync.domain.gateway import MessageType
from zapsync.domain.outgoing import OutgoingMessage
from zapsync.runtime.context import AppContext
from zapsync.security.tokens import hash_token, secrets_equal
from zapsync.security.urls import url_policy
from zapsync.services.accounts import Principal
from zapsync.services.errors import Refusal, ServiceError, WebhookRefused
from zapsync.services.inbox import conversations as inbox
from zapsync.services.inbox.sending import queue_send
from zapsync.services.integrations.bridge_mirror import (
    CONVERSATION,
    MESSAGE,
    written_by_zapsync,
)
from zapsync.services.integrations.connections import credentials_of, webhook_token_of
from zapsync.services.integrations.contacts_pull import write_contacts
from zapsync.services.integrations.sync_runs import Counts
from zapsync.store import external_refs
from zapsync.store import integrations as store
from zapsync.store.models import Integration, Message

log = structlog.get_logger(__name__)

EVENTS = frozenset(
    {
        "message_created",
        "message_updated",
        "conversation_created",
        "conversation_updated",
        "conversation_status_changed",
        "contact_created",
        "contact_updated",
    }
)
NOT_YOURS = "no integration answers to this webhook URL and token"
_MEDIA_TYPES = {MessageType.IMAGE, MessageType.AUDIO, MessageType.VIDEO, MessageType.DOCUMENT}


@dataclass
class WebhookOutcome:
    event: str
    applied: int = 0
    ignored: list[str] = field(default_factory=list)
    known: bool = True  # False: an event zapsync does not take (answered 202)


async def receive(
    ctx: AppContext,
    *,
    integration_id: int | None,
    token: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> WebhookOutcome:
    """Check and apply one delivery; WebhookRefused (401, 400) before anything is written."""
    integration = await _integration(ctx, integration_id, token)
    _verify(ctx, integration, token, headers, body)
    payload = _payload(body)
    event = str(payload.get("event") or "")
    outcome = WebhookOutcome(event)
    if event not in EVENTS:
        outcome.known = False
        outcome.ignored.append(event or "(no event)")
        log.info("chatwoot webhook ignored", chatwoot_event=event, integration_id=integration.id)
        return outcome
    try:
        if event == "message_created":
            await _message_created(ctx, integration, payload, outcome)
        elif event in ("conversation_status_changed", "conversation_updated"):
            await _conversation_status(ctx, integration, payload, outcome)
        elif event in ("contact_created", "contact_updated"):
            await _contact(ctx, integration, payload, outcome)
        else:
            outcome.ignored.append(event)
    except UnmappableRecord as exc:
        raise WebhookRefused(Refusal.MALFORMED, f"{event}: {exc}") from None
    log.info("chatwoot webhook", chatwoot_event=event, integration_id=integration.id,
             applied=outcome.applied, ignored=outcome.ignored or None)  # fmt: skip
    return outcome


async def _integration(
    ctx: AppContext, integration_id: int | None, token: str | None
) -> Integration:
    async with ctx.db.session() as db:
        if integration_id is not None:
            found = await db.get(Integration, integration_id)
        elif token:
            found = await store.integration_by_token_hash(db, hash_token(token))
        else:
            found = None
    if found is None or found.provider != PROVIDER:
        raise WebhookRefused(Refusal.UNKNOWN_INTEGRATION, NOT_YOURS)
    return found


def _verify(
    ctx: AppContext,
    integration: Integration,
    token: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    secret = credentials_of(ctx, integration).webhook_secret
    if secret:
        try:
            verify_signature(
                secret,
                body,
                headers.get(SIGNATURE_HEADER),
                headers.get(TIMESTAMP_HEADER),
                tolerance=ctx.settings.webhook_replay_window,
            )
        except SignatureRefused as exc:
            expired = "from now" in exc.reason
            refusal = Refusal.EXPIRED_SIGNATURE if expired else Refusal.BAD_SIGNATURE
            raise WebhookRefused(refusal, exc.reason) from None
        return
    expected = webhook_token_of(ctx, integration)
    if not token or not expected or not secrets_equal(token, expected):
        raise WebhookRefused(Refusal.WRONG_SECRET, NOT_YOURS)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(Refusal.MALFORMED, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRefused(Refusal.MALFORMED, "the body is not a JSON object")
    return payload


def _principal(integration: Integration) -> Principal:
    """Who acts for Chatwoot's webhooks: the integration's organization, as its system."""
    return Principal(user_id=0, organization_id=integration.organization_id, role="system",
                     token_id=0)  # fmt: skip


async def _conversation_of(db: AsyncSession, org: int, display_id: int | None) -> int | None:
    if display_id is None:
        return None
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONVERSATION, [str(display_id)])
    ref = refs.get(str(display_id))
    return ref.internal_id if ref else None


async def _message_created(
    ctx: AppContext, integration: Integration, payload: dict[str, Any], outcome: WebhookOutcome
) -> None:
    message = map_message(payload)
    org = integration.organization_id
    if written_by_zapsync(message.source_id):
        outcome.ignored.append("echo")
        return
    if not message.reaches_whatsapp:
        outcome.ignored.append("private note" if message.private else message.kind.value)
        return
    async with ctx.db.session() as db:
        conversation_id = await _conversation_of(db, org, message.conversation_display_id)
        known = await external_refs.refs_by_external(
            db, org, PROVIDER, MESSAGE, [message.external_id]
        )
    if conversation_id is None:
        outcome.ignored.append("conversation not bridged")
        return
    if message.external_id in known:
        outcome.ignored.append("duplicate")
        return
    parts = _outgoing(message)
    for position, part in enumerate(parts):
        # The first part carries the ref of Chatwoot's message; the others their own.
        external_id = message.external_id if position == 0 else f"{message.external_id}:{position}"
        sent = await _send(ctx, integration, conversation_id, part, external_id)
        if not sent:
            outcome.ignored.append("duplicate")
            return
        outcome.applied += 1


def _outgoing(message: ChatwootMessage) -> list[OutgoingMessage]:
    """The WhatsApp messages an agent's reply becomes: its text, or each attachment (the text
    as the first one's caption)."""
    media = [a for a in message.attachments if a.url and a.type in _MEDIA_TYPES]
    if not media:
        return [OutgoingMessage(type="text", content=message.body or "")]
    parts = []
    for position, attachment in enumerate(media):
        parts.append(
            OutgoingMessage(
                type=attachment.type.value,  # type: ignore[arg-type]
                url=attachment.url,
                caption=message.body if position == 0 else None,
                mime_type=attachment.mime_type,
                file_name=(attachment.url or "").rsplit("/", 1)[-1].split("?", 1)[0] or None,
            )
        )
    return parts


async def _send(
    ctx: AppContext,
    integration: Integration,
    conversation_id: int,
    part: OutgoingMessage,
    external_id: str,
) -> bool:
    """Queue one part with its ref in one transaction; False when the ref was there already
    (the same delivery, applied meanwhile)."""
    org = integration.organization_id

    async def ref_it(db: AsyncSession, stored: Message) -> None:
        await external_refs.add_refs(
            db, org, PROVIDER, MESSAGE, [{"external_id": external_id, "internal_id": stored.id}]
        )
        await db.flush()

    async with ctx.db.session() as db:
        try:
            await queue_send(
                db,
                ctx.bus,
                _principal(integration),
                conversation_id,
                part,
                url_policy=url_policy(ctx.settings),
                also=ref_it,
            )
        except IntegrityError:
            await db.rollback()
            return False
        except ServiceError as exc:
            log.warning("chatwoot reply not sent", conversation_id=conversation_id,
                        reason=exc.detail)  # fmt: skip
            raise WebhookRefused(Refusal.MALFORMED, exc.detail) from None
    return True


async def _conversation_status(
    ctx: AppContext, integration: Integration, payload: dict[str, Any], outcome: WebhookOutcome
) -> None:
    chatwoot_status = str(payload.get("status") or "")
    status = CONVERSATION_STATUS.get(chatwoot_status)
    display_id = int_or_none(payload.get("id"))
    async with ctx.db.session() as db:
        conversation_id = await _conversation_of(db, integration.organization_id, display_id)
        if conversation_id is None or status is None:
            outcome.ignored.append("conversation not bridged" if status else "no status")
            return
        before = await inbox.get_conversation(db, _principal(integration), conversation_id)
        changed = before.status != status
        # What Chatwoot holds now: the bridge must not tell it back (no echo).
        await external_refs.set_pushed(
            db, integration.organization_id, PROVIDER, "conversation", {str(display_id): status}
        )
        await inbox.set_status(db, ctx.bus, _principal(integration), conversation_id, status)
    if changed:
        outcome.applied += 1
    else:
        outcome.ignored.append("unchanged")


async def _contact(
    ctx: AppContext, integration: Integration, payload: dict[str, Any], outcome: WebhookOutcome
) -> None:
    contact = map_contact(payload)
    counts = Counts()
    async with ctx.db.session() as db:
        try:
            await write_contacts(db, integration.organization_id, [contact], counts)
            await db.commit()
        except IntegrityError:
            await db.rollback()
            outcome.ignored.append("clashes with a contact stored meanwhile")
            return
    if counts.skipped:
        outcome.ignored.append("unchanged")
    else:
        outcome.applied += 1

"""What Chatwoot's agents do in a bridged conversation, applied in zapsync the same way whether
a webhook told us or a pull found it (a webhook Chatwoot never retried, issue #15920):

- an agent's reply goes to WhatsApp through the outbox, each attachment a message of its own
  (the text as the first one's caption); the reply's ref is written in the same transaction,
  so a reply seen twice (a duplicate delivery, a webhook and a pull) is sent once;
- a status set in Chatwoot becomes the conversation's, and is remembered as what Chatwoot
  holds, so the bridge does not tell it back; Chatwoot's webhook of a status zapsync told it
  is an echo, and is not applied again."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.connectors.chatwoot.mapping import PROVIDER, ChatwootMessage
from zapsync.domain.gateway import MessageType
from zapsync.domain.outgoing import OutgoingMessage
from zapsync.runtime.context import AppContext
from zapsync.security.urls import url_policy
from zapsync.services.accounts import Principal
from zapsync.services.inbox import conversations as inbox
from zapsync.services.inbox.sending import queue_send
from zapsync.store import external_refs
from zapsync.store.models import Integration, Message

log = structlog.get_logger(__name__)

CONVERSATION = "conversation"
MESSAGE = "message"
_MEDIA_TYPES = {MessageType.IMAGE, MessageType.AUDIO, MessageType.VIDEO, MessageType.DOCUMENT}


def acting_for(integration: Integration) -> Principal:
    """Who acts for Chatwoot: the integration's organization, as its system."""
    return Principal.system(integration.organization_id)


async def conversation_of(db: AsyncSession, org: int, display_id: int | None) -> int | None:
    """Our conversation a Chatwoot conversation mirrors, if it is a bridged one."""
    if display_id is None:
        return None
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONVERSATION, [str(display_id)])
    ref = refs.get(str(display_id))
    return ref.internal_id if ref else None


async def send_reply(
    ctx: AppContext, integration: Integration, conversation_id: int, message: ChatwootMessage
) -> int:
    """Queue the reply's parts; how many were queued (0: it had been seen already). A part
    the outbox refuses (a media URL it will not fetch) raises ServiceError."""
    queued = 0
    for position, part in enumerate(_outgoing(message)):
        # The first part carries the ref of Chatwoot's message; the others their own.
        external_id = message.external_id if position == 0 else f"{message.external_id}:{position}"
        if not await _send(ctx, integration, conversation_id, part, external_id):
            return queued
        queued += 1
    return queued


async def take_status(
    ctx: AppContext, integration: Integration, display_id: int, status: str
) -> bool | None:
    """The bridged conversation takes Chatwoot's status: whether it changed; None when the
    conversation is not bridged."""
    org = integration.organization_id
    async with ctx.db.session() as db:
        refs = await external_refs.refs_by_external(
            db, org, PROVIDER, CONVERSATION, [str(display_id)]
        )
        ref = refs.get(str(display_id))
        if ref is None:
            return None
        conversation_id = ref.internal_id
        if (ref.pushed_fingerprint or "open") == status:
            # What zapsync told Chatwoot, coming back: applying it late would undo a change
            # made here meanwhile (resolved, then reopened before Chatwoot's webhook arrived).
            return False
        before = await inbox.get_conversation(db, acting_for(integration), conversation_id)
        changed = before.status != status
        # What Chatwoot holds now: the bridge must not tell it back (no echo).
        await external_refs.set_pushed(db, org, PROVIDER, CONVERSATION, {str(display_id): status})
        await inbox.set_status(db, ctx.bus, acting_for(integration), conversation_id, status)
    return changed


async def take_labels(
    ctx: AppContext, integration: Integration, display_id: int, labels: Iterable[str]
) -> bool | None:
    """The bridged conversation takes Chatwoot's labels: whether they changed; None when the
    conversation is not bridged. Labels are Chatwoot's alone (zapsync never edits them), so
    there is no echo to guard against."""
    async with ctx.db.session() as db:
        conversation_id = await conversation_of(db, integration.organization_id, display_id)
        if conversation_id is None:
            return None
        return await inbox.set_labels(db, ctx.bus, acting_for(integration), conversation_id, labels)


def _outgoing(message: ChatwootMessage) -> list[OutgoingMessage]:
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
    (the same reply, applied meanwhile)."""
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
                acting_for(integration),
                conversation_id,
                part,
                url_policy=url_policy(ctx.settings),
                also=ref_it,
            )
        except IntegrityError:
            await db.rollback()
            return False
    return True

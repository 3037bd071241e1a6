"""Sending a message: store it as `pending` with a local id and queue it in the outbox, in one
transaction. The outbox worker (`services/outbox/delivery.py`) hands it to the gateway; a crash, a
restart or a gateway outage in between loses nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import message_event
from zapsync.bus.memory import EventBus
from zapsync.domain import gateway
from zapsync.domain.gateway import MessageType
from zapsync.domain.outgoing import OutgoingMessage
from zapsync.security.urls import UnsafeUrl, UrlPolicy
from zapsync.services.accounts import Principal
from zapsync.services.errors import Conflict, Invalid
from zapsync.services.inbox.conversations import SEND_KIND, get_conversation
from zapsync.services.ingest.messages import preview_of, publish_conversations
from zapsync.services.media import check_url_media
from zapsync.services.outbox.queue import enqueue
from zapsync.store import conversations as conversation_store
from zapsync.store import messages as message_store
from zapsync.store.models import Conversation, Integration, Message, Session
from zapsync.store.types import utcnow

LOCAL_PREFIX = "local-"  # provider_message_id of a message the gateway has not taken yet


def outbox_payload(request: OutgoingMessage, mime_type: str | None) -> dict[str, Any]:
    if request.type == "text":
        return {"type": "text", "text": request.content}
    return {
        "type": request.type,
        "url": request.url,
        "mime_type": mime_type,
        "file_name": request.file_name,
        "caption": request.caption,
    }


# How a helpdesk's channels and the helpdesks themselves are named to a person.
_CHANNEL_NAMES = {"email": "e-mail", "web_widget": "web widget", "api": "API"}
_PROVIDER_NAMES = {"chatwoot": "Chatwoot"}


async def reply_elsewhere(db: AsyncSession, conversation: Conversation) -> str:
    """Why a helpdesk channel's conversation takes no message here: zapsync sends through
    WhatsApp gateways only, and the helpdesk owns its other channels (an e-mail thread)."""
    integration = (
        await db.get(Integration, conversation.integration_id)
        if conversation.integration_id is not None
        else None
    )
    provider = integration.provider if integration is not None else "the helpdesk"
    helpdesk = _PROVIDER_NAMES.get(provider, provider)
    channel = conversation.channel or "other"
    name = _CHANNEL_NAMES.get(channel, channel.replace("_", " "))
    return f"this conversation is in {helpdesk}'s {name} channel: reply from {helpdesk}"


def _preview(request: OutgoingMessage) -> str:
    domain = gateway.Message(
        provider_message_id="",
        chat_jid="",
        from_me=True,
        type=MessageType(request.type),
        timestamp=utcnow(),
        body=request.content,
        caption=request.caption,
        file_name=request.file_name,
    )
    return preview_of(domain)


async def queue_send(
    db: AsyncSession,
    bus: EventBus,
    principal: Principal,
    conversation_id: int,
    request: OutgoingMessage,
    *,
    url_policy: UrlPolicy = UrlPolicy(),
    sender: str = "agent",
    also: Callable[[AsyncSession, Message], Awaitable[None]] | None = None,
) -> Message:
    """Store the outgoing message (`ack=pending`) and its outbox item, commit, publish
    `new_message` and `conversation_updated`. Returns the stored message.

    A media URL the gateway would download from a cloud metadata or link-local address is
    refused (Invalid): the gateway usually runs beside zapsync, inside the same network.
    `also` writes what must be committed with the message (a bridge's ref to it)."""
    conversation = await get_conversation(db, principal, conversation_id)
    if conversation.session_id is None:
        raise Conflict(await reply_elsewhere(db, conversation))
    session = await db.get(Session, conversation.session_id)
    if session is None or session.archived_at is not None:
        raise Conflict(
            f"session {conversation.session_id} of this conversation is archived; "
            "messages can no longer be sent through it"
        )
    mime_type = None
    if request.type != "text":
        mime_type = check_url_media(request.type, request.url or "", request.mime_type)
        try:
            await url_policy.check(request.url or "", "url")
        except UnsafeUrl as exc:
            raise Invalid(exc.reason) from None
    now = utcnow()
    message = message_store.add_outgoing(
        db,
        organization_id=principal.organization_id,
        session_id=session.id,
        conversation_id=conversation.id,
        provider_message_id=f"{LOCAL_PREFIX}{uuid.uuid4().hex}",
        direction="out",
        sender=sender,
        type=request.type,
        body=request.content,
        media_url=request.url,
        mime_type=mime_type,
        file_name=request.file_name,
        caption=request.caption,
        is_voice_note=False,
        ack="pending",
        sent_at=now,
    )
    await db.flush()
    enqueue(
        db,
        organization_id=principal.organization_id,
        session_id=session.id,
        message_id=message.id,
        kind=SEND_KIND,
        payload=outbox_payload(request, mime_type),
        due=now,
    )
    await conversation_store.set_last_message_unless_newer(
        db, conversation.id, now, _preview(request)
    )
    if also is not None:
        await also(db, message)
    publish_on_commit(db, message_event("new_message", message, {"error": None}))
    await publish_conversations(db, bus, principal.organization_id, {conversation.id})
    await db.commit()
    return message

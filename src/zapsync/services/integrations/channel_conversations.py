"""A helpdesk's conversations of its other channels (Chatwoot's e-mail, web widget, another
inbox than the bridged one), kept in zapsync so the inbox shows a customer's whole history.

Such a conversation belongs to the integration, not to a WhatsApp session: zapsync reads it and
never answers it (replies are the helpdesk's: `sending.reply_elsewhere`), and the bridge never
mirrors it (its refs are of kinds of their own, `channel_conversation` and `channel_message`,
which the bridge does not read).

One code path for the pull and the webhooks (`apply`). The pull gives a conversation's
fingerprint (status, labels, last activity, contact, channel) and all its messages: the same
fingerprint as the ref's means nothing to do (skipped, nothing fetched). A webhook gives what
it carries and clears the fingerprint, so the next pull reconciles the whole thread (a webhook
Chatwoot never retried may have been lost before it)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import message_event
from zapsync.connectors.chatwoot.client import ChatwootClient
from zapsync.connectors.chatwoot.mapping import (
    PROVIDER,
    ChatwootConversation,
    ChatwootMessage,
    UnmappableRecord,
    map_contact,
    map_message,
)
from zapsync.connectors.chatwoot.paginators import BeforeIdPaginator
from zapsync.connectors.fingerprints import content_fingerprint
from zapsync.runtime.context import AppContext
from zapsync.services.ingest.messages import publish_conversations
from zapsync.services.integrations.contact_fields import CONTACT
from zapsync.services.integrations.contacts_pull import write_contacts
from zapsync.services.integrations.sync_runs import Counts
from zapsync.store import channel_conversations as store
from zapsync.store import external_refs
from zapsync.store.models import Integration
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

CHANNEL_CONVERSATION = "channel_conversation"
CHANNEL_MESSAGE = "channel_message"
KEY_PREFIX = "chatwoot:"  # chat_key of a channel conversation; provider id of its messages
_PREVIEW = 200


def is_bridged(inbox_id: int | None, conversation: ChatwootConversation) -> bool:
    """Of the API inbox WhatsApp is mirrored into: the bridge's, not a channel's."""
    return inbox_id is not None and conversation.inbox_id == inbox_id


def channel_name(channel: str | None) -> str:
    """Chatwoot's `Channel::WebWidget` as `web_widget`; `other` when it names none."""
    if not channel:
        return "other"
    bare = channel.removeprefix("Channel::")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", bare).lower()[:30] or "other"


def fingerprint_of(conversation: ChatwootConversation) -> str:
    """What a pull compares: a new message moves the last activity and the last message, so
    it counts."""
    return content_fingerprint(
        {
            "status": conversation.chatwoot_status,
            "labels": conversation.labels,
            "last_activity_at": conversation.last_activity_at,
            "last_message": conversation.last_message_id,
            "contact": conversation.contact_external_id,
            "channel": conversation.channel,
            "inbox_id": conversation.inbox_id,
        }
    )


@dataclass(frozen=True, slots=True)
class Applied:
    conversation_id: int
    created: bool
    messages: int  # stored now


async def known_fingerprint(
    ctx: AppContext, integration: Integration, conversation: ChatwootConversation
) -> tuple[bool, str | None]:
    """(zapsync holds the conversation, the fingerprint it was last pulled with)."""
    async with ctx.db.reads() as db:
        refs = await external_refs.refs_by_external(
            db, integration.organization_id, PROVIDER, CHANNEL_CONVERSATION,
            [conversation.external_id],
        )  # fmt: skip
    ref = refs.get(conversation.external_id)
    return ref is not None, ref.fingerprint if ref else None


async def pull_one(
    ctx: AppContext,
    integration: Integration,
    client: ChatwootClient,
    conversation: ChatwootConversation,
    raw: Mapping[str, Any],
    counts: Counts,
) -> None:
    """A pulled conversation of another channel: skipped when its fingerprint is the ref's,
    else stored with every page of its messages (created or updated)."""
    fingerprint = fingerprint_of(conversation)
    held, known = await known_fingerprint(ctx, integration, conversation)
    if held and known == fingerprint:
        counts.skipped += 1
        counts.count("other_channels")
        return
    messages: list[ChatwootMessage] = []
    async for page in client.message_pages(conversation.display_id, BeforeIdPaginator()):
        for item in page:
            try:
                messages.append(map_message(item))
            except (UnmappableRecord, TypeError, ValueError) as exc:
                counts.error(f"message {_id_of(item)}: {exc}")
    applied = await apply(
        ctx, integration, conversation, sender_of(raw), messages, fingerprint=fingerprint
    )
    if applied.created:
        counts.created += 1
    else:
        counts.updated += 1
    counts.count("other_channels")
    counts.count("channel_messages", applied.messages)


async def apply(
    ctx: AppContext,
    integration: Integration,
    conversation: ChatwootConversation,
    sender: Mapping[str, Any] | None,
    messages: Sequence[ChatwootMessage],
    *,
    fingerprint: str | None,
) -> Applied:
    """Store the conversation (created or updated), its contact and the messages it does not
    hold yet, in one transaction: a thread is never left half written. Private notes and
    activity lines ("Conversation resolved") are not the customer's history: left out."""
    org = integration.organization_id
    kept = [m for m in messages if not m.private and m.direction is not None]
    async with ctx.db.session() as db:
        contact_id = await _contact_id(db, org, conversation, sender)
        refs = await external_refs.refs_by_external(
            db, org, PROVIDER, CHANNEL_CONVERSATION, [conversation.external_id]
        )
        created = conversation.external_id not in refs
        # Chatwoot's times are whole seconds: the id (ascending) tells messages of one apart.
        newest = max(kept, key=_order, default=None)
        last_at = _latest(conversation.last_activity_at, _when(newest) if newest else None)
        conversation_id = await store.upsert_conversation(
            db,
            organization_id=org,
            integration_id=integration.id,
            chat_key=f"{KEY_PREFIX}{conversation.external_id}",
            channel=channel_name(conversation.channel),
            contact_id=contact_id,
            name=_name_of(sender),
            status=conversation.status,
            labels=conversation.labels,
            unread_count=conversation.unread_count,
            last_message_at=last_at,
            last_message_preview=_preview(newest) if newest else None,
        )
        await external_refs.add_refs(
            db, org, PROVIDER, CHANNEL_CONVERSATION,
            [{"external_id": conversation.external_id, "internal_id": conversation_id}],
            keep_existing=True,
        )  # fmt: skip
        await external_refs.set_fingerprints(
            db, org, PROVIDER, CHANNEL_CONVERSATION, {conversation.external_id: (fingerprint, None)}
        )
        stored = await _messages(db, org, conversation_id, kept)
        await publish_conversations(db, ctx.bus, org, {conversation_id})
        await db.commit()
    if created or stored:
        log.info("chatwoot channel conversation stored", conversation_id=conversation_id,
                 channel=channel_name(conversation.channel), created=created,
                 messages=stored)  # fmt: skip
    return Applied(conversation_id, created, stored)


async def _contact_id(
    db: AsyncSession,
    org: int,
    conversation: ChatwootConversation,
    sender: Mapping[str, Any] | None,
) -> int | None:
    """The zapsync contact of the conversation's Chatwoot contact: the one the contacts pull
    made (its ref), else one made now from the conversation's sender through the same rules
    (a person zapsync knows by phone or e-mail is linked, not doubled)."""
    external_id = conversation.contact_external_id
    if external_id is None:
        return None
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONTACT, [external_id])
    if external_id in refs:
        return refs[external_id].internal_id
    if sender is None or str(sender.get("id")) != external_id:
        return None
    try:
        contact = map_contact(sender)
    except (UnmappableRecord, TypeError, ValueError):
        return None
    if not (contact.name or contact.email or contact.phone_e164 or contact.identifier):
        return None  # a bare id (a webhook's brief sender): nothing to make a person of
    await write_contacts(db, org, [contact], Counts())
    refs = await external_refs.refs_by_external(db, org, PROVIDER, CONTACT, [external_id])
    return refs[external_id].internal_id if external_id in refs else None


async def _messages(
    db: AsyncSession, org: int, conversation_id: int, messages: Sequence[ChatwootMessage]
) -> int:
    """Store those without a ref, each with its ref: a second pull writes nothing."""
    if not messages:
        return 0
    refs = await external_refs.refs_by_external(
        db, org, PROVIDER, CHANNEL_MESSAGE, [m.external_id for m in messages]
    )
    new = {m.external_id: m for m in messages if m.external_id not in refs}
    if not new:
        return 0
    # Oldest first, so ids follow the thread's order where Chatwoot's seconds tie.
    ordered = sorted(new.values(), key=_order)
    inserted = await store.add_messages(db, [_row(org, conversation_id, m) for m in ordered])
    await external_refs.add_refs(
        db, org, PROVIDER, CHANNEL_MESSAGE,
        [{"external_id": row.provider_message_id.removeprefix(KEY_PREFIX),
          "internal_id": row.id} for row in inserted],
        keep_existing=True,
    )  # fmt: skip
    for row in inserted:
        publish_on_commit(db, message_event("new_message", row))
    return len(inserted)


def _row(org: int, conversation_id: int, message: ChatwootMessage) -> dict[str, Any]:
    media = next((a for a in message.attachments if a.url), None)
    return {
        "organization_id": org,
        "session_id": None,
        "conversation_id": conversation_id,
        "provider_message_id": f"{KEY_PREFIX}{message.external_id}",
        "direction": message.direction,
        "sender": message.sender,
        "type": message.type.value,
        "raw_type": message.content_type,
        "body": message.body,
        "media_url": media.url if media else None,
        "mime_type": media.mime_type if media else None,
        "is_voice_note": False,
        "ack": "delivered",  # it reached the helpdesk: there is no further state to follow
        "sent_at": _when(message),
        "created_at": utcnow(),
    }


def _order(message: ChatwootMessage) -> tuple[datetime, int]:
    return _when(message), int(message.external_id)


def _when(message: ChatwootMessage | None) -> datetime:
    if message is None or message.created_at is None:
        return utcnow()
    return message.created_at


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _preview(message: ChatwootMessage) -> str | None:
    text = message.body or (f"[{message.type.value}]" if message.attachments else None)
    return text[:_PREVIEW] if text else None


def sender_of(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The contact a conversation payload names (`meta.sender`), for `apply`."""
    meta = raw.get("meta")
    sender = meta.get("sender") if isinstance(meta, Mapping) else None
    return sender if isinstance(sender, Mapping) else None


def _name_of(sender: Mapping[str, Any] | None) -> str | None:
    if sender is None:
        return None
    for key in ("name", "email", "phone_number"):
        value = sender.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def _id_of(raw: Any) -> str:
    return str(raw.get("id")) if isinstance(raw, Mapping) else "?"

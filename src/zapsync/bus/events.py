"""The events zapsync publishes, and the shapes of the rows they carry. Names match the
Socket.IO server events of DESIGN.md; a message, conversation or contact travels as the same
JSON the API answers with (`api/schemas` describes it), built here once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Row

from zapsync.store.models import Contact, Conversation, Message

EventName = Literal[
    "new_message",
    "conversation_updated",
    "messages_read",
    "session_status",
    "qr_updated",
    "sync_run",
    "message_updated",
    "access_revoked",
    "message_merged",
    "outbox_queued",
]

# Events for zapsync's own subscribers, never forwarded to Socket.IO clients.
# `outbox_queued` wakes this process's outbox worker (`services/outbox/queue.py`).
INTERNAL_EVENTS: frozenset[str] = frozenset({"access_revoked", "outbox_queued"})


@dataclass(frozen=True, slots=True)
class Event:
    name: EventName
    organization_id: int
    data: dict[str, Any] = field(default_factory=dict)
    conversation_id: int | None = None


# Payloads read attributes only, so a Core row of the same table serves as well as an ORM object
# (hot paths skip building objects).
MessageLike = Message | Row[Any]
ContactLike = Contact | Row[Any]
ConversationLike = Conversation | Row[Any]


def iso(value: datetime | None) -> str | None:
    """UTC as `2025-05-01T10:00:00Z`, as pydantic renders it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message_json(message: MessageLike) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "session_id": message.session_id,
        "provider_message_id": message.provider_message_id,
        "direction": message.direction,
        "sender": message.sender,
        "sender_jid": message.sender_jid,
        "type": message.type,
        "raw_type": message.raw_type,
        "body": message.body,
        "media_url": message.media_url,
        "mime_type": message.mime_type,
        "file_name": message.file_name,
        "caption": message.caption,
        "is_voice_note": message.is_voice_note,
        "reaction_to": message.reaction_to,
        "ack": message.ack,
        "sent_at": iso(message.sent_at),
        "edited_at": iso(message.edited_at),
        "deleted_at": iso(message.deleted_at),
    }


def contact_json(contact: ContactLike) -> dict[str, Any]:
    return {
        "id": contact.id,
        "phone_e164": contact.phone_e164,
        "wa_jid": contact.wa_jid,
        "lid": contact.lid,
        "name": contact.name,
        "email": contact.email,
        "custom_fields": dict(contact.custom_fields or {}),
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
    }


def conversation_json(
    conversation: ConversationLike, contact: ContactLike | None = None
) -> dict[str, Any]:
    """`contact` is embedded when given (list views join it; events include it)."""
    body: dict[str, Any] = {
        "id": conversation.id,
        "session_id": conversation.session_id,
        # A helpdesk channel's conversation (no session): its integration and channel.
        "integration_id": conversation.integration_id,
        "channel": conversation.channel,
        "contact_id": conversation.contact_id,
        "chat_jid": conversation.chat_jid,
        "is_group": conversation.is_group,
        "name": conversation.name,
        "status": conversation.status,
        "unread_count": conversation.unread_count,
        "last_message_at": iso(conversation.last_message_at),
        "last_message_preview": conversation.last_message_preview,
        "labels": list(conversation.labels or []),
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
    }
    if contact is not None:
        body["contact"] = contact_json(contact)
    return body


def message_event(
    name: EventName, message: MessageLike, extra: Mapping[str, Any] | None = None
) -> Event:
    """`new_message` or `message_updated`: the message as the API shows it, plus `extra`."""
    data = message_json(message)
    if extra:
        data.update(extra)
    return Event(name, message.organization_id, data, conversation_id=message.conversation_id)


def message_updated(message: MessageLike, extra: Mapping[str, Any] | None = None) -> Event:
    return message_event("message_updated", message, extra)


def message_merged(message: MessageLike, echo: MessageLike) -> Event:
    """Clients drop `echo` (announced by its own `new_message`): it is `message` now."""
    return Event(
        "message_merged",
        message.organization_id,
        {"conversation_id": echo.conversation_id, "id": message.id, "replaces": echo.id},
        conversation_id=echo.conversation_id,
    )


def conversation_updated(
    conversation: ConversationLike, contact: ContactLike | None = None, **extra: Any
) -> Event:
    data = conversation_json(conversation, contact)
    data.update(extra)
    return Event(
        "conversation_updated",
        conversation.organization_id,
        data,
        conversation_id=conversation.id,
    )

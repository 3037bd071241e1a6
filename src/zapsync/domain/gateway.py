"""Typed values that cross the provider boundary: live state, QR, chats, messages, events.

Adapters in `providers/` turn each gateway's JSON into these; services never see raw
gateway payloads except as `raw` kept for debugging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from zapsync.domain.status import SessionStatus


class MessageType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    REACTION = "reaction"
    OTHER = "other"


class Ack(StrEnum):
    """Delivery state of a message; ordered so a later ack never goes backward."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"


ACK_RANK: dict[Ack, int] = {
    Ack.PENDING: 0,
    Ack.SENT: 1,
    Ack.DELIVERED: 2,
    Ack.READ: 3,
    Ack.PLAYED: 4,
    Ack.FAILED: 5,
}


def later_ack(current: Ack | None, incoming: Ack) -> Ack:
    """The ack to keep when `incoming` arrives after `current`, in any order."""
    if current is None or ACK_RANK[incoming] > ACK_RANK[current]:
        return incoming
    return current


@dataclass(frozen=True, slots=True)
class LiveState:
    """What the gateway says right now about a session."""

    status: SessionStatus
    raw_status: str
    phone: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class QrCode:
    code: str | None
    pairing_code: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What creating or attaching a gateway instance returned."""

    instance: str
    status: SessionStatus
    qr: QrCode | None = None
    identity: str | None = None  # the gateway's own id of the instance, when it has one


@dataclass(frozen=True, slots=True)
class Chat:
    jid: str
    name: str | None = None
    is_group: bool = False
    last_message_at: datetime | None = None
    unread_count: int = 0
    alt_jid: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One WhatsApp message as a gateway reported it."""

    provider_message_id: str
    chat_jid: str
    from_me: bool
    type: MessageType
    timestamp: datetime
    body: str | None = None
    sender_jid: str | None = None
    sender_name: str | None = None
    chat_alt_jid: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    caption: str | None = None
    is_voice_note: bool = False
    raw_type: str | None = None
    ack: Ack | None = None
    reaction_to: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Baileys' `mediaKey` (base64): a gateway that keeps no messages needs it to fetch media.
    media_key: str | None = None


@dataclass(frozen=True, slots=True)
class SentMessage:
    provider_message_id: str
    ack: Ack = Ack.SENT


# --- webhook events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: SessionStatus
    raw_status: str
    reason: str | None = None
    phone: str | None = None
    # the gateway's own time of the change, where it gives one: an event older than the
    # last one applied must not move the status back
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QrUpdated:
    qr: QrCode


@dataclass(frozen=True, slots=True)
class MessageReceived:
    message: Message


@dataclass(frozen=True, slots=True)
class MessageAcked:
    provider_message_id: str
    chat_jid: str | None
    ack: Ack


@dataclass(frozen=True, slots=True)
class MessageEdited:
    provider_message_id: str
    chat_jid: str | None
    body: str


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    provider_message_id: str
    chat_jid: str | None


@dataclass(frozen=True, slots=True)
class ContactSeen:
    jid: str
    name: str | None = None
    alt_jid: str | None = None


@dataclass(frozen=True, slots=True)
class ChatSeen:
    chat: Chat


@dataclass(frozen=True, slots=True)
class HistoryArrived:
    """The gateway delivered a history batch: an empty import should be retried now."""

    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    name: str


WebhookEvent = (
    StatusChanged
    | QrUpdated
    | MessageReceived
    | MessageAcked
    | MessageEdited
    | MessageDeleted
    | ContactSeen
    | ChatSeen
    | HistoryArrived
    | UnknownEvent
)

"""Chatwoot's shapes to zapsync's, as pure functions (seed 004's tables).

The same message reaches zapsync two ways that disagree on types (CHATWOOT.md §4, §6): the REST
API gives `message_type` as an integer and `created_at` as unix seconds; a webhook gives
`"incoming"` and an ISO-8601 string. Both map to the same `ChatwootMessage`, so one message
read either way has one fingerprint. A conversation's `updated_at` (a float of unix time in
both, CHATWOOT.md §3, §6) is kept as `ChatwootConversation.updated_at`: what tells a record
delivered late from a newer one; it is not part of the fingerprint.

Each mapped record's `fingerprint` is a hash of what zapsync keeps of it: the same upstream
record mapped twice gives the same value, whatever the key order of the JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from zapsync.connectors.fingerprints import content_fingerprint
from zapsync.domain.gateway import MessageType
from zapsync.domain.identity import phone_key

PROVIDER = "chatwoot"


class ChatwootMessageKind(StrEnum):
    """`message_type`: 0 incoming, 1 outgoing, 2 activity, 3 template (app/models/message.rb)."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"
    ACTIVITY = "activity"
    TEMPLATE = "template"


_KIND_BY_NUMBER = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}

# Chatwoot's conversation statuses, and the one zapsync's conversations keep for each. Snoozed
# waits for the customer or a date: not closed, so pending; `chatwoot_status` keeps the exact one.
CONVERSATION_STATUS = {
    "open": "open",
    "pending": "pending",
    "snoozed": "pending",
    "resolved": "resolved",
}

_FILE_TYPES = {
    "image": MessageType.IMAGE,
    "audio": MessageType.AUDIO,
    "video": MessageType.VIDEO,
    "file": MessageType.DOCUMENT,
    "location": MessageType.LOCATION,
    "contact": MessageType.CONTACT,
}


class UnmappableRecord(ValueError):
    """A Chatwoot record without what makes it one (an id): the run counts it as an error."""


@dataclass(frozen=True, slots=True)
class ChatwootContact:
    external_id: str
    name: str | None
    email: str | None
    phone_e164: str | None
    phone_raw: str | None  # as Chatwoot holds it, for when it is not a phone zapsync can read
    identifier: str | None
    thumbnail: str | None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    # Of the record's source fields (`contact_source`): equal for equal records.
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class ChatwootConversation:
    external_id: str  # the display_id, which Chatwoot's paths and JSON `id` both use
    display_id: int
    status: str  # zapsync's: open | pending | resolved
    chatwoot_status: str  # Chatwoot's: open | pending | snoozed | resolved
    inbox_id: int | None
    channel: str | None  # "Channel::Api", "Channel::Email", ...
    contact_external_id: str | None
    source_id: str | None
    messages_count: int | None  # the seed maps it; Chatwoot's own JSON rarely carries it
    labels: tuple[str, ...]
    unread_count: int | None
    last_activity_at: datetime | None
    # The id of its last message (`messages`, or `last_non_activity_message`): moves with each
    # new message even within the second `last_activity_at` is counted in.
    last_message_id: str | None = None
    # When Chatwoot last changed the record (`updated_at`, a float of unix time): None when
    # the payload carries none.
    updated_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        # Activity time moves with every message; it is not a change of the conversation.
        moving = frozenset({"last_activity_at", "unread_count", "last_message_id", "updated_at"})
        return content_fingerprint(self, exclude=moving)


@dataclass(frozen=True, slots=True)
class ChatwootAttachment:
    external_id: str | None
    type: MessageType
    url: str | None
    mime_type: str | None
    file_size: int | None


@dataclass(frozen=True, slots=True)
class ChatwootMessage:
    external_id: str
    conversation_display_id: int | None
    kind: ChatwootMessageKind
    direction: str | None  # "in" | "out"; None for activity lines ("Conversation resolved")
    sender: str  # zapsync's: client | agent | system
    sender_external_id: str | None
    private: bool  # an agent's internal note: never sent to WhatsApp
    type: MessageType
    body: str | None
    content_type: str | None
    source_id: str | None  # zapsync writes its own message id here
    created_at: datetime | None
    attachments: tuple[ChatwootAttachment, ...] = ()
    # Deleted in Chatwoot (`content_attributes.deleted`): its content is then Chatwoot's
    # placeholder ("This message was deleted"), not what was written.
    deleted: bool = False

    @property
    def fingerprint(self) -> str:
        return content_fingerprint(self)

    @property
    def reaches_whatsapp(self) -> bool:
        """An agent's reply a customer should get: outgoing (or a template), not a note."""
        return self.direction == "out" and not self.private


def contact_source(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a contact zapsync keeps, read without parsing the phone (the costly part
    of mapping): what the fingerprint covers. The phone's E.164 form follows from its text."""
    return {
        "id": _id_text(raw.get("id"), "contact"),
        "name": _text(raw.get("name")),
        "email": _email(raw.get("email")),
        "phone_number": _text(raw.get("phone_number")),
        "identifier": _text(raw.get("identifier")),
        "thumbnail": _text(raw.get("thumbnail")),
        "additional_attributes": _mapping(raw.get("additional_attributes")),
        "custom_attributes": _mapping(raw.get("custom_attributes")),
    }


def map_contact(raw: Mapping[str, Any]) -> ChatwootContact:
    """A contact from the REST API (list, show, create) or a contact_* webhook."""
    return contact_of_source(contact_source(raw))


def contact_of_source(source: Mapping[str, Any], fingerprint: str | None = None) -> ChatwootContact:
    """The contact `contact_source` read; `fingerprint` when the caller hashed it already."""
    external_id = source["id"]
    phone_raw = source["phone_number"]
    custom: dict[str, Any] = {
        "chatwoot_id": external_id,
        "chatwoot_identifier": source["identifier"],
        "chatwoot_thumbnail": source["thumbnail"],
        "chatwoot_additional_attributes": source["additional_attributes"],
        "chatwoot_custom_attributes": source["custom_attributes"],
    }
    return ChatwootContact(
        external_id=external_id,
        name=source["name"],
        email=source["email"],
        phone_e164=phone_key(phone_raw) if phone_raw else None,
        phone_raw=phone_raw,
        identifier=source["identifier"],
        thumbnail=source["thumbnail"],
        custom_fields={k: v for k, v in custom.items() if v not in (None, {})},
        fingerprint=fingerprint or content_fingerprint(source),
    )


def map_conversation(raw: Mapping[str, Any]) -> ChatwootConversation:
    """A conversation from the REST API or a conversation_* webhook (or a message webhook's
    `conversation`)."""
    display_id = int_or_none(raw.get("id"))
    if display_id is None:
        raise UnmappableRecord(f"conversation without an id: {raw.get('id')!r}")
    chatwoot_status = str(raw.get("status") or "open")
    if chatwoot_status not in CONVERSATION_STATUS:
        raise UnmappableRecord(f"conversation {display_id}: unknown status {chatwoot_status!r}")
    meta = _mapping(raw.get("meta"))
    sender = _mapping(meta.get("sender"))
    contact_inbox = _mapping(raw.get("contact_inbox"))
    contact_id = int_or_none(sender.get("id")) or int_or_none(contact_inbox.get("contact_id"))
    labels = raw.get("labels")
    if not isinstance(labels, list):
        labels = []
    return ChatwootConversation(
        external_id=str(display_id),
        display_id=display_id,
        status=CONVERSATION_STATUS[chatwoot_status],
        chatwoot_status=chatwoot_status,
        inbox_id=int_or_none(raw.get("inbox_id")),
        channel=_text(meta.get("channel")) or _text(raw.get("channel")),
        contact_external_id=str(contact_id) if contact_id is not None else None,
        source_id=_text(contact_inbox.get("source_id")),
        messages_count=int_or_none(raw.get("messages_count")),
        labels=tuple(sorted(str(label) for label in labels)),
        unread_count=int_or_none(raw.get("unread_count")),
        last_activity_at=parse_time(raw.get("last_activity_at")),
        last_message_id=_last_message_id(raw),
        updated_at=parse_time(raw.get("updated_at")),
    )


def _last_message_id(raw: Mapping[str, Any]) -> str | None:
    last = raw.get("messages")
    candidates = [last[-1]] if isinstance(last, list) and last else []
    candidates.append(raw.get("last_non_activity_message"))
    for message in candidates:
        if isinstance(message, Mapping):
            found = _id_or_none(message.get("id"))
            if found is not None:
                return found
    return None


def map_message(raw: Mapping[str, Any]) -> ChatwootMessage:
    """A message from the REST API (ints, unix time) or a message_* webhook (strings, ISO)."""
    external_id = _id_text(raw.get("id"), "message")
    kind = message_kind(raw.get("message_type"))
    conversation = _mapping(raw.get("conversation"))
    display_id = int_or_none(raw.get("conversation_id"))
    if display_id is None:
        display_id = int_or_none(conversation.get("id"))
    attachments = tuple(
        _attachment(a) for a in raw.get("attachments") or [] if isinstance(a, Mapping)
    )
    sender = _mapping(raw.get("sender"))
    content_attributes = _mapping(raw.get("content_attributes"))
    return ChatwootMessage(
        external_id=external_id,
        conversation_display_id=display_id,
        kind=kind,
        direction=_direction(kind),
        sender=_sender(kind, sender),
        sender_external_id=_id_or_none(sender.get("id")),
        private=raw.get("private") is True,
        type=attachments[0].type if attachments else MessageType.TEXT,
        body=_text(raw.get("content")),
        content_type=_text(raw.get("content_type")),
        source_id=_text(raw.get("source_id")),
        created_at=parse_time(raw.get("created_at")),
        attachments=attachments,
        deleted=content_attributes.get("deleted") is True,
    )


def message_kind(value: Any) -> ChatwootMessageKind:
    """`message_type` as the REST API (0-3) or a webhook ("incoming") writes it."""
    if isinstance(value, bool):
        raise UnmappableRecord(f"unknown message_type {value!r}")
    if isinstance(value, int):
        name = _KIND_BY_NUMBER.get(value)
    elif isinstance(value, str) and value.strip().isdigit():
        name = _KIND_BY_NUMBER.get(int(value))
    elif isinstance(value, str):
        name = value.strip().lower()
    else:
        name = None
    try:
        return ChatwootMessageKind(name or "")
    except ValueError:
        raise UnmappableRecord(f"unknown message_type {value!r}") from None


def parse_time(value: Any) -> datetime | None:
    """Unix seconds (int, float or digits) or ISO-8601 (`2026-11-20T14:04:02.000Z`), as UTC."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC) if value > 0 else None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return datetime.fromtimestamp(number, UTC) if number > 0 else None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _direction(kind: ChatwootMessageKind) -> str | None:
    if kind is ChatwootMessageKind.INCOMING:
        return "in"
    if kind in (ChatwootMessageKind.OUTGOING, ChatwootMessageKind.TEMPLATE):
        return "out"
    return None


def _sender(kind: ChatwootMessageKind, sender: Mapping[str, Any]) -> str:
    if kind is ChatwootMessageKind.ACTIVITY:
        return "system"
    # A webhook's contact sender has no `type` key at all (contact.rb#webhook_data).
    kind_of_sender = str(sender.get("type") or "").lower()
    if kind_of_sender in ("user", "agent_bot", "agent", "captain_assistant"):
        return "agent"
    if kind_of_sender == "contact":
        return "client"
    return "client" if kind is ChatwootMessageKind.INCOMING else "agent"


def _attachment(raw: Mapping[str, Any]) -> ChatwootAttachment:
    file_type = str(raw.get("file_type") or "")
    return ChatwootAttachment(
        external_id=_id_or_none(raw.get("id")),
        type=_FILE_TYPES.get(file_type, MessageType.OTHER),
        url=_text(raw.get("data_url")),
        mime_type=_text(raw.get("content_type")),
        file_size=int_or_none(raw.get("file_size")),
    )


def _id_text(value: Any, what: str) -> str:
    text = _id_or_none(value)
    if text is None:
        raise UnmappableRecord(f"{what} without an id: {value!r}")
    return text


def _id_or_none(value: Any) -> str | None:
    number = int_or_none(value)
    return str(number) if number is not None else None


def int_or_none(value: Any) -> int | None:
    """An id or count Chatwoot sent as a number or as a digit string (booleans are not ids)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _email(value: Any) -> str | None:
    text = _text(value)
    # Chatwoot compares emails case-insensitively; one spelling keeps one fingerprint.
    return text.lower() if text else None


def _mapping(value: Any) -> dict[str, Any]:
    if type(value) is dict:  # what JSON gives, before the costlier abstract check
        return dict(value)
    return dict(value) if isinstance(value, Mapping) else {}

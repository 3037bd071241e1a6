"""Evolution API v2 JSON -> zapsync domain values: REST records and webhook bodies.

Pure functions, no I/O. Anything that does not have the shape the contract promises raises
`PayloadError`; the caller decides whether that is a bad webhook (400) or an unavailable
gateway (a REST answer that cannot be read)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from zapsync.domain.gateway import (
    Ack,
    Chat,
    ChatSeen,
    ContactSeen,
    HistoryArrived,
    Message,
    MessageAcked,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    MessageType,
    QrCode,
    QrUpdated,
    StatusChanged,
    UnknownEvent,
    WebhookEvent,
    later_ack,
)
from zapsync.domain.status import SessionStatus, UnknownGatewayStatus, from_evolution
from zapsync.providers.base import WebhookRejected


class PayloadError(ValueError):
    """A value that does not have the shape the Evolution contract promises."""


# --- event names -------------------------------------------------------------------

# The `Events` enum (src/api/types/wa.types.ts). Two names carry a hyphen inside, so the
# dotted form cannot be rebuilt from the upper-case one by rule alone.
KNOWN_EVENTS = (
    "application.startup",
    "instance.create",
    "instance.delete",
    "qrcode.updated",
    "connection.update",
    "status.instance",
    "messages.set",
    "messages.upsert",
    "messages.edited",
    "messages.update",
    "messages.delete",
    "send.message",
    "send.message.update",
    "contacts.set",
    "contacts.upsert",
    "contacts.update",
    "presence.update",
    "chats.set",
    "chats.update",
    "chats.upsert",
    "chats.delete",
    "groups.upsert",
    "groups.update",
    "group-participants.update",
    "call",
    "typebot.start",
    "typebot.change-status",
    "labels.edit",
    "labels.association",
    "logout.instance",
    "remove.instance",
)
_BY_UPPER = {re.sub(r"[.\-]", "_", name).upper(): name for name in KNOWN_EVENTS}


def event_name(raw: str) -> str:
    """Any of Evolution's three spellings -> the dotted one of the body's `event` field.

    `MESSAGES_UPSERT` (webhook config), `messages.upsert` (body) and `messages-upsert` (the URL
    suffix with `byEvents`, also given as a whole path) all give `messages.upsert`."""
    last = raw.strip().rstrip("/").rsplit("/", 1)[-1]
    upper = re.sub(r"[.\-_]", "_", last).upper()
    return _BY_UPPER.get(upper, upper.lower().replace("_", "."))


# --- scalars -----------------------------------------------------------------------

_ACKS = {
    "PENDING": Ack.PENDING,
    "SERVER_ACK": Ack.SENT,
    "DELIVERY_ACK": Ack.DELIVERED,
    "READ": Ack.READ,
    "PLAYED": Ack.PLAYED,
    "ERROR": Ack.FAILED,
}
# Baileys' proto enum `WebMessageInfo.Status`, which some builds store and send as numbers.
_ACK_NUMBERS = {
    0: Ack.FAILED,
    1: Ack.PENDING,
    2: Ack.SENT,
    3: Ack.DELIVERED,
    4: Ack.READ,
    5: Ack.PLAYED,
}
DELETED = "DELETED"


def ack_of(status: Any) -> Ack | None:
    """Evolution's message status -> Ack; None for DELETED and values with no ack meaning."""
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return _ACK_NUMBERS.get(status)
    if isinstance(status, str):
        text = status.strip().upper()
        if text.isdigit():
            return _ACK_NUMBERS.get(int(text))
        return _ACKS.get(text)
    return None


def timestamp(value: Any) -> datetime:
    """`messageTimestamp` in seconds (int, numeric string, or a protobuf Long `{low, high}`);
    milliseconds and ISO strings are tolerated."""
    seconds: float
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        seconds = (int(value.get("high") or 0) << 32) + (value["low"] & 0xFFFFFFFF)
    elif isinstance(value, bool) or value is None:
        raise PayloadError(f"messageTimestamp {value!r} is not a time")
    elif isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value)
    ):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError(f"messageTimestamp {value!r} is not a time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    else:
        raise PayloadError(f"messageTimestamp {value!r} is not a time")
    if seconds > 1e11:  # milliseconds: no WhatsApp message is from the year 5138
        seconds /= 1000
    return datetime.fromtimestamp(seconds, UTC)


def phone_of(jid: Any) -> str | None:
    """Digits of a phone JID (`5511...:12@s.whatsapp.net` -> `5511...`); None for LIDs, groups."""
    if not isinstance(jid, str) or "@" not in jid:
        return None
    user, server = jid.split("@", 1)
    if server not in ("s.whatsapp.net", "c.us"):
        return None
    return user.split(":", 1)[0] or None


def _jid(value: Any) -> str | None:
    """A JID-ish field; bare digits (seen in `senderPn` of some builds) become a phone JID."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return value if "@" in value else f"{value}@s.whatsapp.net"


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not an object")
    return value


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    """Evolution sends some events as one object and sometimes as an array of them."""
    items = value if isinstance(value, list) else [value]
    return [_obj(item, what) for item in items]


def _sub(value: Any) -> dict[str, Any]:
    """An optional nested object: absent or of the wrong type reads as empty."""
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# --- messages ----------------------------------------------------------------------

# Keys of `message` that sit beside the content rather than being it.
_NOT_CONTENT = frozenset({"messageContextInfo", "base64", "mediaUrl", "contextInfo"})
# Envelopes whose `.message` holds the real content.
_WRAPPERS = frozenset(
    {
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
    }
)
_MEDIA = {
    "imageMessage": MessageType.IMAGE,
    "videoMessage": MessageType.VIDEO,
    "ptvMessage": MessageType.VIDEO,
    "audioMessage": MessageType.AUDIO,
    "documentMessage": MessageType.DOCUMENT,
    "stickerMessage": MessageType.STICKER,
}
_REVOKE = ("REVOKE", 0)
_EDIT = ("MESSAGE_EDIT", 14)


def _content(raw: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(content type, its object, the whole `message`), unwrapping ephemeral/view-once and
    `documentWithCaptionMessage` envelopes."""
    message = raw.get("message")
    if not isinstance(message, dict):
        raise PayloadError("message has no `message` object")
    declared = raw.get("messageType")
    name = declared if isinstance(declared, str) and declared in message else None
    if name is None:
        name = next((k for k in message if k not in _NOT_CONTENT), None)
    if name is None:
        # Text rewritten by Evolution keeps `messageType` even when nothing else is left.
        return (declared if isinstance(declared, str) else "unknown"), {}, message
    inner = message.get(name)
    if name in _WRAPPERS and isinstance(inner, dict) and isinstance(inner.get("message"), dict):
        return _content({"message": inner["message"]})
    return name, inner if isinstance(inner, dict) else {"value": inner}, message


def _text_of(message: dict[str, Any]) -> str | None:
    conversation = message.get("conversation")
    if isinstance(conversation, str):
        return conversation
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and isinstance(extended.get("text"), str):
        return str(extended["text"])
    return None


def _protocol_event(proto: dict[str, Any], chat_jid: str | None) -> WebhookEvent | None:
    """A protocolMessage: REVOKE deletes, MESSAGE_EDIT edits; other kinds are bookkeeping."""
    target = _sub(proto.get("key"))
    target_id = _str(target.get("id"))
    chat = _str(target.get("remoteJid")) or chat_jid
    kind = proto.get("type")
    if target_id is None:
        return None
    if kind in _REVOKE:
        return MessageDeleted(target_id, chat)
    edited = proto.get("editedMessage")
    if kind in _EDIT or isinstance(edited, dict):
        body = _text_of(edited) if isinstance(edited, dict) else None
        if body is None and isinstance(edited, dict):
            _, inner, _ = _content({"message": edited})
            body = _str(inner.get("caption"))
        return MessageEdited(target_id, chat, body or "")
    return None


def _ack(raw: dict[str, Any]) -> Ack | None:
    ack = ack_of(raw.get("status"))
    updates = raw.get("MessageUpdate")
    if isinstance(updates, list):
        for update in updates:
            later = ack_of(update.get("status")) if isinstance(update, dict) else None
            if later is not None:
                ack = later_ack(ack, later)
    return ack


def _key(raw: dict[str, Any]) -> tuple[str, str, bool, dict[str, Any]]:
    key = raw.get("key")
    if not isinstance(key, dict):
        raise PayloadError("message has no `key`")
    msg_id, chat = _str(key.get("id")), _str(key.get("remoteJid"))
    if msg_id is None or chat is None:
        raise PayloadError("message key lacks `id` or `remoteJid`")
    return msg_id, chat, bool(key.get("fromMe")), key


def message_event(raw: Any) -> WebhookEvent | None:
    """One messageRaw -> MessageReceived, or MessageEdited/MessageDeleted for a protocol
    message; None for protocol bookkeeping (history notices, ephemeral settings)."""
    raw = _obj(raw, "message")
    _, chat_jid, _, _ = _key(raw)
    name, inner, _ = _content(raw)
    if name == "protocolMessage":
        return _protocol_event(inner, chat_jid)
    return MessageReceived(message(raw))


def message(raw: Any) -> Message:
    """One messageRaw (webhook data, findMessages record, sendText answer) -> Message."""
    raw = _obj(raw, "message")
    msg_id, chat, from_me, key = _key(raw)
    if "messageTimestamp" not in raw:
        raise PayloadError("message has no `messageTimestamp`")
    when = timestamp(raw["messageTimestamp"])
    name, inner, whole = _content(raw)
    is_group = chat.endswith("@g.us")
    participant = _str(key.get("participant")) or _str(raw.get("participant"))
    participant_alt = _jid(key.get("participantAlt"))
    # LID chats: the phone JID travels beside the LID (Baileys 7 / Evolution 2.3 `remoteJidAlt`,
    # 2.2 `senderPn`; a 1:1 chat may only carry `participantAlt`).
    alt = _jid(key.get("remoteJidAlt")) or _jid(key.get("senderPn"))
    if alt is None and not is_group:
        alt = participant_alt
    sender = None
    if is_group:
        # A phone is what a contact is keyed on; a LID participant is used only without one.
        lid_sender = participant is not None and participant.endswith("@lid")
        sender = participant_alt if lid_sender and participant_alt else participant

    mtype = MessageType.OTHER
    body: str | None = None
    caption = _str(inner.get("caption"))
    fields: dict[str, Any] = {}
    if name in ("conversation", "extendedTextMessage"):
        mtype, body = MessageType.TEXT, _text_of(whole) or _str(inner.get("text")) or ""
    elif name in _MEDIA:
        mtype, body = _MEDIA[name], caption
        fields = {
            "media_url": _str(whole.get("mediaUrl")) or _str(inner.get("url")),
            "mime_type": _str(inner.get("mimetype")),
            "file_name": _str(inner.get("fileName")),
            "caption": caption,
            "is_voice_note": name == "audioMessage" and inner.get("ptt") is True,
        }
    elif name in ("locationMessage", "liveLocationMessage"):
        lat, lng = inner.get("degreesLatitude"), inner.get("degreesLongitude")
        mtype, body = MessageType.LOCATION, f"{lat},{lng}"
        fields = {"caption": _str(inner.get("name")) or _str(inner.get("address"))}
    elif name in ("contactMessage", "contactsArrayMessage"):
        mtype, body = MessageType.CONTACT, _str(inner.get("displayName"))
    elif name == "reactionMessage":
        target = _sub(inner.get("key"))
        mtype, body = MessageType.REACTION, inner.get("text") or ""
        fields = {"reaction_to": _str(target.get("id"))}
    else:
        body = _str(inner.get("text")) or caption
    return Message(
        provider_message_id=msg_id,
        chat_jid=chat,
        from_me=from_me,
        type=mtype,
        timestamp=when,
        body=body,
        sender_jid=sender,
        sender_name=_str(raw.get("pushName")),
        chat_alt_jid=alt if alt != chat else None,
        raw_type=name,
        ack=_ack(raw),
        raw=raw,
        **fields,
    )


def is_protocol(raw: Any) -> bool:
    """Edits and revokes are stored as messages by Evolution but are not messages to show."""
    try:
        return _content(_obj(raw, "message"))[0] == "protocolMessage"
    except PayloadError:
        return False


def record_id(raw: Any) -> str:
    """The message id of a stored record (its `key.id`)."""
    return _key(_obj(raw, "message"))[0]


# --- chats and contacts ------------------------------------------------------------


def chat(raw: Any) -> Chat:
    """A findChats element, or a `chats.*` webhook item (`{remoteJid|id, name, ...}`)."""
    raw = _obj(raw, "chat")
    jid = _str(raw.get("remoteJid")) or _str(raw.get("id") if "remoteJid" not in raw else None)
    if jid is None:
        raise PayloadError("chat without `remoteJid`")
    last = raw.get("lastMessage")
    last_at = None
    alt = _jid(raw.get("remoteJidAlt"))
    if isinstance(last, dict):
        if last.get("messageTimestamp") is not None:
            last_at = timestamp(last["messageTimestamp"])
        key = _sub(last.get("key"))
        alt = alt or _jid(key.get("remoteJidAlt")) or _jid(key.get("senderPn"))
    if last_at is None and _str(raw.get("updatedAt")):
        last_at = timestamp(raw["updatedAt"])
    unread = _int(raw.get("unreadCount"))
    if unread is None:
        unread = _int(raw.get("unreadMessages"))
    return Chat(
        jid=jid,
        name=_str(raw.get("pushName")) or _str(raw.get("name")),
        is_group=jid.endswith("@g.us"),
        last_message_at=last_at,
        unread_count=unread or 0,
        alt_jid=alt if alt != jid else None,
    )


def contact(raw: Any) -> ContactSeen:
    raw = _obj(raw, "contact")
    jid = _str(raw.get("remoteJid")) or _str(raw.get("id"))
    if jid is None:
        raise PayloadError("contact without `remoteJid`")
    alt = (
        _jid(raw.get("remoteJidAlt"))
        or _jid(raw.get("senderPn"))
        or _jid(raw.get("phoneNumber"))
        or _str(raw.get("lid"))
    )
    name = _str(raw.get("pushName")) or _str(raw.get("name")) or _str(raw.get("notify"))
    return ContactSeen(jid=jid, name=name, alt_jid=alt if alt != jid else None)


# --- webhook events ----------------------------------------------------------------


def _connection_update(data: Any) -> list[WebhookEvent]:
    data = _obj(data, "connection.update data")
    state = _str(data.get("state"))
    if state is None:
        raise PayloadError("connection.update without `state`")
    code = _int(data.get("statusReason"))
    try:
        status = from_evolution(state, code)
    except UnknownGatewayStatus:
        return [UnknownEvent(f"connection.update:{state}")]
    # 200 rides along with `open` and `connecting`; only a close or refusal has a reason.
    closed = status in (SessionStatus.DISCONNECTED, SessionStatus.LOGGED_OUT, SessionStatus.FAILED)
    reason = str(code) if closed and code is not None else None
    return [
        StatusChanged(status, raw_status=state, reason=reason, phone=phone_of(data.get("wuid")))
    ]


def _qrcode_updated(data: Any) -> list[WebhookEvent]:
    data = _obj(data, "qrcode.updated data")
    qr = data.get("qrcode")
    if isinstance(qr, dict):
        return [
            QrUpdated(QrCode(code=_str(qr.get("code")), pairing_code=_str(qr.get("pairingCode"))))
        ]
    if _str(data.get("message")):  # "QR code limit reached, please login again"
        return [StatusChanged(SessionStatus.FAILED, raw_status="refused", reason=data["message"])]
    raise PayloadError("qrcode.updated without `qrcode`")


def _message_items(data: Any) -> list[dict[str, Any]]:
    # One object normally; tolerate arrays and Baileys' `{messages:[...], type}` batches.
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        data = data["messages"]
    return _objects(data, "message")


def _messages_upsert(data: Any) -> list[WebhookEvent]:
    events = (message_event(item) for item in _message_items(data))
    return [event for event in events if event is not None]


def _messages_set(data: Any) -> list[WebhookEvent]:
    """A history batch. One odd message must not throw away the hundreds around it."""
    messages: list[Message] = []
    for item in _message_items(data):
        if is_protocol(item):
            continue
        try:
            messages.append(message(item))
        except PayloadError:
            continue
    return [HistoryArrived(tuple(messages))]


def _messages_update(data: Any) -> list[WebhookEvent]:
    events: list[WebhookEvent] = []
    for item in _objects(data, "messages.update item"):
        key = _sub(item.get("key"))
        update = _sub(item.get("update"))
        msg_id = _str(item.get("keyId")) or _str(key.get("id"))
        chat_jid = _str(item.get("remoteJid")) or _str(key.get("remoteJid"))
        status = item.get("status", update.get("status"))
        if msg_id is None or status is None:
            raise PayloadError("messages.update without `keyId` or `status`")
        if isinstance(status, str) and status.upper() == DELETED:
            events.append(MessageDeleted(msg_id, chat_jid))
        elif (ack := ack_of(status)) is not None:
            events.append(MessageAcked(msg_id, chat_jid, ack))
    return events


def _messages_edited(data: Any) -> list[WebhookEvent]:
    data = _obj(data, "messages.edited data")
    if "type" in data or "editedMessage" in data:  # the protocolMessage itself (Baileys)
        event = _protocol_event(data, None)
    else:  # a messageRaw wrapping it
        event = message_event(data)
    return [event] if event is not None else []


def _messages_delete(data: Any) -> list[WebhookEvent]:
    events: list[WebhookEvent] = []
    for item in _objects(data, "messages.delete item"):
        key = _sub(item.get("key")) or item
        msg_id = _str(key.get("id"))
        if msg_id is None:
            raise PayloadError("messages.delete without a key id")
        events.append(MessageDeleted(msg_id, _str(key.get("remoteJid"))))
    return events


def _contacts(data: Any) -> list[WebhookEvent]:
    return [contact(item) for item in _objects(data, "contact")]


def _chats(data: Any) -> list[WebhookEvent]:
    return [ChatSeen(chat(item)) for item in _objects(data, "chat")]


def _logout(data: Any) -> list[WebhookEvent]:
    return [StatusChanged(SessionStatus.LOGGED_OUT, raw_status="logout")]


def _nothing(data: Any) -> list[WebhookEvent]:
    return []


_HANDLERS: dict[str, Callable[[Any], list[WebhookEvent]]] = {
    "connection.update": _connection_update,
    "qrcode.updated": _qrcode_updated,
    "messages.upsert": _messages_upsert,
    "send.message": _messages_upsert,
    "messages.set": _messages_set,
    "messages.update": _messages_update,
    "send.message.update": _messages_update,
    "messages.edited": _messages_edited,
    "messages.delete": _messages_delete,
    "contacts.upsert": _contacts,
    "contacts.update": _contacts,
    "contacts.set": _contacts,
    "chats.upsert": _chats,
    "chats.update": _chats,
    "chats.set": _chats,
    "logout.instance": _logout,
    # Announces the close that the `connection.update` right after it carries too.
    "status.instance": _nothing,
}


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """A webhook body -> typed events. Raises WebhookRejected(400) when it is malformed."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("webhook body is not JSON") from None
    if not isinstance(doc, dict):
        raise WebhookRejected("webhook body is not a JSON object")
    raw_name = doc.get("event")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise WebhookRejected("webhook body has no `event`")
    name = event_name(raw_name)
    handler = _HANDLERS.get(name)
    if handler is None:
        return [UnknownEvent(name)]
    if "data" not in doc or doc["data"] is None:
        raise WebhookRejected(f"{name} webhook has no `data`")
    try:
        return handler(doc["data"])
    except PayloadError as exc:
        raise WebhookRejected(f"{name}: {exc}") from None

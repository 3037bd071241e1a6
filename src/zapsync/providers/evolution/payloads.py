"""Evolution API v2 JSON -> zapsync domain values: REST records and webhook bodies.

Pure functions, no I/O. Anything that does not have the shape the contract promises raises
`PayloadError`; the caller decides whether that is a bad webhook (400) or an unavailable
gateway (a REST answer that cannot be read)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
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
from zapsync.providers import baileys
from zapsync.providers.baileys import (
    PayloadError,
    ack_of,
    dict_of,
    int_of,
    jid_of,
    object_of,
    phone_of,
    str_of,
    timestamp,
)
from zapsync.providers.base import WebhookRejected, webhook_object

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


# --- shapes ------------------------------------------------------------------------

DELETED = "DELETED"


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    """Evolution sends some events as one object and sometimes as an array of them."""
    items = value if isinstance(value, list) else [value]
    return [object_of(item, what) for item in items]


# --- messages ----------------------------------------------------------------------

_REVOKE = ("REVOKE", 0)
_EDIT = ("MESSAGE_EDIT", 14)


def _content(raw: dict[str, Any]) -> baileys.Content:
    content = baileys.message_content(raw)
    if content.type is MessageType.TEXT and content.body is None:
        # Evolution rewrites extendedTextMessage into `conversation` and leaves an empty text
        # as nothing but `messageType: conversation`: still a text, with an empty body.
        content = replace(content, body="")
    own_copy = str_of(dict_of(raw.get("message")).get("mediaUrl"))
    if content.is_media and own_copy:
        # With S3 or base64 on, Evolution adds its own copy of the media beside the content.
        content = replace(content, media_url=own_copy)
    return content


def _protocol_event(proto: dict[str, Any], chat_jid: str | None) -> WebhookEvent | None:
    """A protocolMessage: REVOKE deletes, MESSAGE_EDIT edits; other kinds are bookkeeping."""
    target = dict_of(proto.get("key"))
    target_id = str_of(target.get("id"))
    chat = str_of(target.get("remoteJid")) or chat_jid
    kind = proto.get("type")
    if target_id is None:
        return None
    if kind in _REVOKE:
        return MessageDeleted(target_id, chat)
    edited = proto.get("editedMessage")
    if kind in _EDIT or isinstance(edited, dict):
        body = baileys.content_of(edited).body if isinstance(edited, dict) else None
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


def message_event(raw: Any) -> WebhookEvent | None:
    """One messageRaw -> MessageReceived, or MessageEdited/MessageDeleted for a protocol
    message; None for protocol bookkeeping (history notices, ephemeral settings)."""
    raw = object_of(raw, "message")
    key = baileys.key_of(raw)
    content = _content(raw)
    if content.raw_type == "protocolMessage":
        return _protocol_event(content.inner, key.chat)
    return MessageReceived(message(raw))


def message(raw: Any) -> Message:
    """One messageRaw (webhook data, findMessages record, sendText answer) -> Message."""
    raw = object_of(raw, "message")
    return _message(raw, _content(raw))


def shown_message(raw: Any) -> Message | None:
    """One stored messageRaw (findMessages, a history batch) -> Message; None for an edit or
    revoke, which Evolution stores as a message but is none to show. Its content is read
    once (an import reads hundreds of thousands)."""
    raw = object_of(raw, "message")
    content = _content(raw)
    if content.raw_type == "protocolMessage":
        return None
    return _message(raw, content)


def _message(raw: dict[str, Any], content: baileys.Content) -> Message:
    key = baileys.key_of(raw)
    if "messageTimestamp" not in raw:
        raise PayloadError("message has no `messageTimestamp`")
    when = timestamp(raw["messageTimestamp"])
    return baileys.message(raw, key, content, when=when, sender_jid=key.author, ack=_ack(raw))


def record_id(raw: Any) -> str:
    """The message id of a stored record (its `key.id`)."""
    return baileys.key_of(object_of(raw, "message")).id


# --- chats and contacts ------------------------------------------------------------


def chat(raw: Any) -> Chat:
    """A findChats element, or a `chats.*` webhook item (`{remoteJid|id, name, ...}`)."""
    raw = object_of(raw, "chat")
    jid = str_of(raw.get("remoteJid")) or str_of(raw.get("id") if "remoteJid" not in raw else None)
    if jid is None:
        raise PayloadError("chat without `remoteJid`")
    last = raw.get("lastMessage")
    last_at = None
    alt = jid_of(raw.get("remoteJidAlt"))
    if isinstance(last, dict):
        if last.get("messageTimestamp") is not None:
            last_at = timestamp(last["messageTimestamp"])
        key = dict_of(last.get("key"))
        alt = alt or jid_of(key.get("remoteJidAlt")) or jid_of(key.get("senderPn"))
    if last_at is None and str_of(raw.get("updatedAt")):
        last_at = timestamp(raw["updatedAt"])
    unread = int_of(raw.get("unreadCount"))
    if unread is None:
        unread = int_of(raw.get("unreadMessages"))
    return Chat(
        jid=jid,
        name=str_of(raw.get("pushName")) or str_of(raw.get("name")),
        is_group=jid.endswith("@g.us"),
        last_message_at=last_at,
        unread_count=unread or 0,
        alt_jid=alt if alt != jid else None,
    )


def contact(raw: Any) -> ContactSeen:
    raw = object_of(raw, "contact")
    jid = str_of(raw.get("remoteJid")) or str_of(raw.get("id"))
    if jid is None:
        raise PayloadError("contact without `remoteJid`")
    alt = (
        jid_of(raw.get("remoteJidAlt"))
        or jid_of(raw.get("senderPn"))
        or jid_of(raw.get("phoneNumber"))
        or str_of(raw.get("lid"))
    )
    name = str_of(raw.get("pushName")) or str_of(raw.get("name")) or str_of(raw.get("notify"))
    return ContactSeen(jid=jid, name=name, alt_jid=alt if alt != jid else None)


# --- webhook events ----------------------------------------------------------------


def _connection_update(data: Any) -> list[WebhookEvent]:
    data = object_of(data, "connection.update data")
    state = str_of(data.get("state"))
    if state is None:
        raise PayloadError("connection.update without `state`")
    code = int_of(data.get("statusReason"))
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


def qr_code(obj: Any) -> QrCode:
    """A QR object (`{code, pairingCode, base64}`) of a webhook or a `connect` answer."""
    obj = dict_of(obj)
    return QrCode(code=str_of(obj.get("code")), pairing_code=str_of(obj.get("pairingCode")))


def _qrcode_updated(data: Any) -> list[WebhookEvent]:
    data = object_of(data, "qrcode.updated data")
    qr = data.get("qrcode")
    if isinstance(qr, dict):
        return [QrUpdated(qr_code(qr))]
    if str_of(data.get("message")):  # "QR code limit reached, please login again"
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
        try:
            shown = shown_message(item)
        except PayloadError:
            continue
        if shown is not None:
            messages.append(shown)
    return [HistoryArrived(tuple(messages))]


def _messages_update(data: Any) -> list[WebhookEvent]:
    events: list[WebhookEvent] = []
    for item in _objects(data, "messages.update item"):
        key = dict_of(item.get("key"))
        update = dict_of(item.get("update"))
        msg_id = str_of(item.get("keyId")) or str_of(key.get("id"))
        chat_jid = str_of(item.get("remoteJid")) or str_of(key.get("remoteJid"))
        status = item.get("status", update.get("status"))
        if msg_id is None or status is None:
            raise PayloadError("messages.update without `keyId` or `status`")
        if isinstance(status, str) and status.upper() == DELETED:
            events.append(MessageDeleted(msg_id, chat_jid))
        elif (ack := ack_of(status)) is not None:
            events.append(MessageAcked(msg_id, chat_jid, ack))
    return events


def _messages_edited(data: Any) -> list[WebhookEvent]:
    data = object_of(data, "messages.edited data")
    if "type" in data or "editedMessage" in data:  # the protocolMessage itself (Baileys)
        event = _protocol_event(data, None)
    else:  # a messageRaw wrapping it
        event = message_event(data)
    return [event] if event is not None else []


def _messages_delete(data: Any) -> list[WebhookEvent]:
    events: list[WebhookEvent] = []
    for item in _objects(data, "messages.delete item"):
        key = dict_of(item.get("key")) or item
        msg_id = str_of(key.get("id"))
        if msg_id is None:
            raise PayloadError("messages.delete without a key id")
        events.append(MessageDeleted(msg_id, str_of(key.get("remoteJid"))))
    return events


def _contacts(data: Any) -> list[WebhookEvent]:
    return [contact(item) for item in _objects(data, "contact")]


def _chats(data: Any) -> list[WebhookEvent]:
    return [ChatSeen(chat(item)) for item in _objects(data, "chat")]


def _logout(data: Any) -> list[WebhookEvent]:
    # Sent as `sendDataWebhook(LOGOUT_INSTANCE, null)`: the instance is the envelope's.
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
# Events whose `data` is null by design (`monitor.service.ts` sends them with `null`): the
# instance they concern is the envelope's top-level `instance`.
_DATALESS = frozenset({"logout.instance"})


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """A webhook body -> typed events. Raises WebhookRejected(400) when it is malformed."""
    doc = webhook_object(body, "evolution")
    raw_name = doc.get("event")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise WebhookRejected("webhook body has no `event`")
    name = event_name(raw_name)
    handler = _HANDLERS.get(name)
    if handler is None:
        return [UnknownEvent(name)]
    if name not in _DATALESS and doc.get("data") is None:
        raise WebhookRejected(f"{name} webhook has no `data`")
    try:
        events = handler(doc.get("data"))
    except PayloadError as exc:
        raise WebhookRejected(f"{name}: {exc}") from None
    at = envelope_time(doc.get("date_time"))
    if at is None:
        return events
    return [
        replace(e, at=at) if isinstance(e, StatusChanged) and e.at is None else e for e in events
    ]


def envelope_time(value: Any) -> datetime | None:
    """The envelope's `date_time`: the gateway's local wall clock with a `Z` glued on, so not
    an instant, but it orders one instance's events (Evolution posts them concurrently, and
    a pairing's `connecting` may land after its `open`); None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

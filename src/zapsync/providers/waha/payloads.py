"""WAHA's JSON (sessions, chats, messages, webhooks) turned into zapsync's typed values.

Pure functions, no I/O. WAHA speaks whatsapp-web.js ids (`NNN@c.us`); the domain keeps
Baileys' `NNN@s.whatsapp.net` so the same person is the same JID on every gateway.
Message ids stay exactly as WAHA serializes them (`false_<chat>_<id>`), because acks,
`message` and `message.any` all carry that form.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from zapsync.domain.gateway import (
    Ack,
    Chat,
    LiveState,
    Message,
    MessageAcked,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    MessageType,
    StatusChanged,
    UnknownEvent,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus, UnknownGatewayStatus, from_waha
from zapsync.providers import baileys
from zapsync.providers.baileys import dict_of, phone_of, timestamp_or_none


class BadPayload(ValueError):
    """A WAHA body that does not have the shape the contract promises."""


ACKS = {
    -1: Ack.FAILED,
    0: Ack.PENDING,
    1: Ack.SENT,
    2: Ack.DELIVERED,
    3: Ack.READ,
    4: Ack.PLAYED,
}

# whatsapp-web.js `Message.type` values (WEBJS `_data.type`).
_WEBJS_TYPES = {
    "chat": MessageType.TEXT,
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "audio": MessageType.AUDIO,
    "ptt": MessageType.AUDIO,
    "document": MessageType.DOCUMENT,
    "sticker": MessageType.STICKER,
    "location": MessageType.LOCATION,
    "vcard": MessageType.CONTACT,
    "multi_vcard": MessageType.CONTACT,
    "reaction": MessageType.REACTION,
}

_MIME_TYPES = (
    ("image/webp", MessageType.STICKER),
    ("image/", MessageType.IMAGE),
    ("video/", MessageType.VIDEO),
    ("audio/", MessageType.AUDIO),
)


# --- identities -------------------------------------------------------------------------


def id_str(value: Any) -> str | None:
    """An id as a string: WEBJS sometimes sends `{_serialized, user, server}` objects."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        serialized = value.get("_serialized")
        return serialized if isinstance(serialized, str) and serialized else None
    return None


def domain_jid(waha_id: str) -> str:
    """`NNN@c.us` -> `NNN@s.whatsapp.net`; groups, LIDs and broadcasts are unchanged."""
    if waha_id.endswith("@c.us"):
        return waha_id.removesuffix("@c.us") + "@s.whatsapp.net"
    return waha_id


def waha_jid(jid: str) -> str:
    """The chat id WAHA expects for a domain JID (or bare digits)."""
    if jid.endswith("@s.whatsapp.net"):
        return jid.removesuffix("@s.whatsapp.net") + "@c.us"
    return jid if "@" in jid else f"{jid}@c.us"


def opt_jid(value: Any) -> str | None:
    raw = id_str(value)
    return domain_jid(raw) if raw else None


def message_id(bare: str, *, from_me: bool, chat: str, participant: str | None) -> str:
    """WAHA's serialized id for a bare WhatsApp id (edits and revokes carry bare ids)."""
    if bare.startswith(("true_", "false_")):
        return bare
    out = f"{'true' if from_me else 'false'}_{chat}_{bare}"
    if chat.endswith("@g.us") and participant and not from_me:
        out += f"_{participant}"
    return out


# --- REST shapes -----------------------------------------------------------------------


def live_state(session: Any) -> LiveState:
    """`GET /api/sessions/{s}`. Raises BadPayload or UnknownGatewayStatus."""
    if not isinstance(session, dict) or not isinstance(session.get("status"), str):
        raise BadPayload("WAHA session has no status")
    raw = session["status"]
    me = session.get("me")
    phone = phone_of(id_str(me.get("id"))) if isinstance(me, dict) else None
    return LiveState(status=from_waha(raw), raw_status=raw, phone=phone)


def chat(item: Any) -> Chat:
    """One item of `GET /api/{s}/chats` (NOWEB store rows or WEBJS Chat objects)."""
    if not isinstance(item, dict):
        raise BadPayload("WAHA chat is not an object")
    raw_id = id_str(item.get("id"))
    if raw_id is None:
        raise BadPayload("WAHA chat has no id")
    last = dict_of(item.get("lastMessage"))
    when = (
        timestamp_or_none(item.get("conversationTimestamp"))
        or timestamp_or_none(item.get("timestamp"))
        or timestamp_or_none(last.get("timestamp"))
    )
    name = item.get("name") or item.get("formattedTitle")
    unread = item.get("unreadCount")
    return Chat(
        jid=domain_jid(raw_id),
        name=name if isinstance(name, str) and name else None,
        is_group=bool(item.get("isGroup")) or raw_id.endswith("@g.us"),
        last_message_at=when,
        unread_count=unread if isinstance(unread, int) and unread > 0 else 0,
    )


def sent_message_id(body: Any, chat_id: str) -> str:
    """The serialized id in a send response: WAMessage (`id`), WEBJS (`id._serialized`) or
    NOWEB's raw Baileys WebMessageInfo (`key`)."""
    if not isinstance(body, dict):
        raise BadPayload("WAHA send answered with no message")
    direct = id_str(body.get("id"))
    if direct:
        return direct
    key = body.get("key")
    if isinstance(key, dict) and isinstance(key.get("id"), str) and key["id"]:
        remote = key.get("remoteJid")
        chat = waha_jid(remote) if isinstance(remote, str) and remote else chat_id
        return message_id(key["id"], from_me=True, chat=chat, participant=None)
    raise BadPayload("WAHA send answered without a message id")


# --- messages -------------------------------------------------------------------------


def _raw_proto(data: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("message", "Message"):  # NOWEB, GOWS
        proto = data.get(key)
        if isinstance(proto, dict):
            return proto
    return None


def _detect_type(payload: dict[str, Any], data: dict[str, Any]) -> tuple[MessageType, str | None]:
    """The type and the engine's own name for it: `_data` first, then the portable fields."""
    webjs_type = data.get("type")
    if isinstance(webjs_type, str) and webjs_type:
        return _WEBJS_TYPES.get(webjs_type, MessageType.OTHER), webjs_type
    # NOWEB and GOWS keep the Baileys (or whatsmeow) `message` proto, with the same names.
    name, _ = baileys.content_name(_raw_proto(data) or {})
    if name is not None:
        return baileys.TYPES.get(name, MessageType.OTHER), name
    if isinstance(payload.get("location"), dict):
        return MessageType.LOCATION, None
    if payload.get("vCards"):
        return MessageType.CONTACT, None
    media = dict_of(payload.get("media"))
    if payload.get("hasMedia") or media:
        mime = str(media.get("mimetype") or "")
        for prefix, kind in _MIME_TYPES:
            if mime.startswith(prefix):
                return kind, None
        return MessageType.DOCUMENT, None
    return MessageType.TEXT, None


def _is_voice_note(data: dict[str, Any], raw_type: str | None) -> bool:
    if raw_type == "ptt":
        return True
    proto = _raw_proto(data) or {}
    audio = proto.get("audioMessage")
    return isinstance(audio, dict) and bool(audio.get("ptt") or audio.get("PTT"))


def _sender_name(data: dict[str, Any]) -> str | None:
    info = dict_of(data.get("Info"))
    for value in (data.get("pushName"), data.get("notifyName"), info.get("PushName")):
        if isinstance(value, str) and value:
            return value
    return None


def _chat_alt(data: dict[str, Any]) -> str | None:
    key = dict_of(data.get("key"))
    for value in (key.get("remoteJidAlt"), key.get("senderPn")):
        if isinstance(value, str) and value:
            return domain_jid(value)
    return None


def _chat_of(payload: dict[str, Any]) -> tuple[str, bool]:
    """The WAHA chat id of a message and whether it is ours: ours go `to` the chat."""
    from_me = payload.get("fromMe") is True
    chat = id_str(payload.get("to") if from_me else payload.get("from"))
    if chat is None:
        raise BadPayload("WAHA message has no chat")
    return chat, from_me


def message(payload: Any) -> Message:
    """A WAMessage (webhook `message`/`message.any` payload or a `.../messages` item)."""
    if not isinstance(payload, dict):
        raise BadPayload("WAHA message is not an object")
    provider_id = id_str(payload.get("id"))
    if provider_id is None:
        raise BadPayload("WAHA message has no id")
    chat, from_me = _chat_of(payload)
    when = timestamp_or_none(payload.get("timestamp"))
    if when is None:
        raise BadPayload("WAHA message has no timestamp")
    data = dict_of(payload.get("_data"))
    kind, raw_type = _detect_type(payload, data)
    media = dict_of(payload.get("media"))
    media_url = media.get("url") or payload.get("mediaUrl")
    body = payload.get("body") if isinstance(payload.get("body"), str) else None
    participant = opt_jid(payload.get("participant")) or opt_jid(payload.get("author"))
    if from_me:
        sender = None
    elif chat.endswith("@g.us"):
        sender = participant
    else:
        sender = domain_jid(chat)
    ack = payload.get("ack")
    is_media = kind in (
        MessageType.IMAGE,
        MessageType.VIDEO,
        MessageType.AUDIO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    )
    return Message(
        provider_message_id=provider_id,
        chat_jid=domain_jid(chat),
        from_me=from_me,
        type=kind,
        timestamp=when,
        body=body or None,
        sender_jid=sender,
        sender_name=None if from_me else _sender_name(data),
        chat_alt_jid=_chat_alt(data),
        media_url=media_url if isinstance(media_url, str) and media_url else None,
        mime_type=media.get("mimetype") or None,
        file_name=media.get("filename") or None,
        caption=(body or None) if is_media else None,
        is_voice_note=_is_voice_note(data, raw_type),
        raw_type=raw_type,
        ack=ACKS.get(ack) if isinstance(ack, int) and not isinstance(ack, bool) else None,
        raw=payload,
    )


def reaction(payload: Any) -> Message:
    """A `message.reaction` payload: a message whose body is the emoji ('' removes it)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("reaction"), dict):
        raise BadPayload("WAHA reaction has no reaction")
    provider_id = id_str(payload.get("id"))
    if provider_id is None:
        raise BadPayload("WAHA reaction has no id")
    chat, from_me = _chat_of(payload)
    target = id_str(payload["reaction"].get("messageId"))
    text = payload["reaction"].get("text")
    participant = opt_jid(payload.get("participant"))
    return Message(
        provider_message_id=provider_id,
        chat_jid=domain_jid(chat),
        from_me=from_me,
        type=MessageType.REACTION,
        timestamp=timestamp_or_none(payload.get("timestamp")) or datetime.now(tz=UTC),
        body=text if isinstance(text, str) else None,
        sender_jid=None if from_me else (participant or domain_jid(chat)),
        raw_type="reaction",
        reaction_to=target,
        raw=payload,
    )


# --- webhooks -------------------------------------------------------------------------


def ms_time(value: Any) -> datetime | None:
    """A WAHA time in milliseconds since the epoch (a number, or digits in a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        ms = float(value)
        return datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else None
    except (ValueError, OverflowError, OSError):
        return None


def signed_at(body: bytes, headers: Mapping[str, str]) -> datetime | None:
    """When WAHA sent a signed delivery: the envelope's `timestamp`, which the HMAC covers;
    else (versions whose envelope has none) `X-Webhook-Timestamp`, which it does not, but
    which still dates a delivery replayed as it was captured. `headers` lower-cased."""
    with contextlib.suppress(ValueError):
        envelope = json.loads(body)
        if isinstance(envelope, dict) and (at := ms_time(envelope.get("timestamp"))):
            return at
    return ms_time(headers.get("x-webhook-timestamp"))


def _status_time(payload: dict[str, Any], raw: str, envelope: dict[str, Any]) -> datetime | None:
    """When the session entered `raw`: its entry in `statuses` (newer WAHA), else the
    envelope's own time; None from versions that send neither."""
    points = payload.get("statuses")
    if isinstance(points, list) and points:
        last = points[-1]
        if isinstance(last, dict) and last.get("status") == raw:
            at = ms_time(last.get("timestamp"))
            if at is not None:
                return at
    return ms_time(envelope.get("timestamp"))


def _status_changed(payload: dict[str, Any], envelope: dict[str, Any]) -> WebhookEvent:
    raw = payload.get("status")
    if not isinstance(raw, str):
        raise BadPayload("session.status without a status")
    try:
        status = from_waha(raw)
    except UnknownGatewayStatus:
        return UnknownEvent(f"session.status:{raw}")
    me = envelope.get("me")
    phone = phone_of(id_str(me.get("id"))) if isinstance(me, dict) else None
    at = _status_time(payload, raw, envelope)
    return StatusChanged(status=status, raw_status=raw, phone=phone, at=at)


_ENGINE_STATES = {
    "open": SessionStatus.CONNECTED,
    "connecting": SessionStatus.CONNECTING,
    "close": SessionStatus.DISCONNECTED,
    # WEBJS reports whatsapp-web.js WAState values
    "CONNECTED": SessionStatus.CONNECTED,
    "OPENING": SessionStatus.CONNECTING,
    "PAIRING": SessionStatus.CONNECTING,
    "UNPAIRED": SessionStatus.QR_PENDING,
    "UNPAIRED_IDLE": SessionStatus.QR_PENDING,
    "CONFLICT": SessionStatus.DISCONNECTED,
    "TIMEOUT": SessionStatus.DISCONNECTED,
}


def _state_change(payload: Any, at: datetime | None) -> WebhookEvent:
    """The engine's own socket state (NOWEB: Baileys `connection.update`)."""
    raw = payload
    if isinstance(payload, dict):
        raw = payload.get("connection") or payload.get("state")
    if not isinstance(raw, str) or raw not in _ENGINE_STATES:
        return UnknownEvent(f"state.change:{raw}")
    status = _ENGINE_STATES[raw]
    reason = None
    if isinstance(payload, dict) and isinstance(payload.get("lastDisconnect"), dict):
        error = payload["lastDisconnect"].get("error") or {}
        output = error.get("output") if isinstance(error, dict) else None
        detail = output.get("payload") if isinstance(output, dict) else None
        if isinstance(detail, dict):
            code = detail.get("statusCode")
            if code == 401:  # Baileys loggedOut: the phone must pair again
                status = SessionStatus.LOGGED_OUT
            reason = f"{code} {detail.get('message') or detail.get('error') or ''}".strip()
    return StatusChanged(status=status, raw_status=f"state.change:{raw}", reason=reason, at=at)


def _acked(payload: dict[str, Any]) -> WebhookEvent:
    provider_id = id_str(payload.get("id"))
    ack = payload.get("ack")
    if provider_id is None or not isinstance(ack, int) or isinstance(ack, bool):
        raise BadPayload("message.ack without id or ack")
    if ack not in ACKS:
        return UnknownEvent(f"message.ack:{ack}")
    from_me = payload.get("fromMe") is not False
    chat = id_str(payload.get("to") if from_me else payload.get("from"))
    return MessageAcked(provider_message_id=provider_id, chat_jid=opt_jid(chat), ack=ACKS[ack])


def _target(
    payload: dict[str, Any], bare: Any, carrier: dict[str, Any] | None
) -> tuple[str, str | None]:
    """The serialized id and domain chat of the message an edit or revoke is about."""
    source = carrier if carrier is not None else payload
    try:
        chat, from_me = _chat_of(source)
    except BadPayload:
        chat, from_me = "", False
    bare_id = id_str(bare)
    if bare_id and chat:
        participant = id_str(source.get("participant"))
        full = message_id(bare_id, from_me=from_me, chat=chat, participant=participant)
        return full, domain_jid(chat)
    fallback = id_str(source.get("id"))
    if fallback is None:
        raise BadPayload("cannot tell which message the event is about")
    return fallback, domain_jid(chat) if chat else None


def _revoked(payload: dict[str, Any]) -> WebhookEvent:
    before = payload.get("before")
    if isinstance(before, dict) and id_str(before.get("id")):
        chat = None
        with contextlib.suppress(BadPayload):
            chat = domain_jid(_chat_of(before)[0])
        return MessageDeleted(provider_message_id=str(id_str(before["id"])), chat_jid=chat)
    after = payload.get("after") if isinstance(payload.get("after"), dict) else None
    if after is None and payload.get("revokedMessageId") is None:
        raise BadPayload("message.revoked names no message")
    provider_id, chat = _target(payload, payload.get("revokedMessageId"), after or {})
    return MessageDeleted(provider_message_id=provider_id, chat_jid=chat)


def _edited(payload: dict[str, Any]) -> WebhookEvent:
    body = payload.get("body")
    if not isinstance(body, str):
        raise BadPayload("message.edited without the new text")
    provider_id, chat = _target(payload, payload.get("editedMessageId"), None)
    return MessageEdited(provider_message_id=provider_id, chat_jid=chat, body=body)


def event(envelope: Any) -> list[WebhookEvent]:
    """Typed events of one WAHA webhook body. Raises BadPayload on a malformed body."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), str):
        raise BadPayload("WAHA webhook has no event name")
    name = envelope["event"]
    payload = envelope.get("payload")
    if name == "state.change":
        return [_state_change(payload, ms_time(envelope.get("timestamp")))]
    known = (
        "session.status",
        "message",
        "message.any",
        "message.ack",
        "message.revoked",
        "message.edited",
        "message.reaction",
    )
    if name not in known:
        return [UnknownEvent(name)]
    if not isinstance(payload, dict):
        raise BadPayload(f"{name} without a payload")
    if name == "session.status":
        return [_status_changed(payload, envelope)]
    if name in ("message", "message.any"):
        return [MessageReceived(message(payload))]
    if name == "message.ack":
        return [_acked(payload)]
    if name == "message.revoked":
        return [_revoked(payload)]
    if name == "message.edited":
        return [_edited(payload)]
    return [MessageReceived(reaction(payload))]

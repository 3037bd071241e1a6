"""Baileys `WebMessageInfo` JSON -> zapsync values: the part every Baileys gateway shares.

Evolution API and MegaAPI both run Baileys and hand its messages on as JSON: `key{remoteJid,
fromMe, id, participant, ...}`, `message{conversation|extendedTextMessage|imageMessage|...}`,
`messageType`, `messageTimestamp`, `pushName`, `status`. This module reads that content once;
what a gateway wraps around it (Evolution's envelope, its text rewrite and protocol events,
MegaAPI's flat body) stays in the gateway's own module.

Pure functions, no I/O. A value without the promised shape raises `PayloadError`; the caller
decides whether that is a bad webhook (400) or an unavailable gateway."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zapsync.domain.gateway import Ack, Message, MessageType


class PayloadError(ValueError):
    """A value that does not have the shape the gateway's contract promises."""


# --- small readers ---------------------------------------------------------------------


def str_of(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def int_of(value: Any) -> int | None:
    """An int, or a string of digits; None for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def dict_of(value: Any) -> dict[str, Any]:
    """An optional nested object: absent or of the wrong type reads as empty."""
    return value if isinstance(value, dict) else {}


def object_of(value: Any, what: str) -> dict[str, Any]:
    """A required object."""
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not an object")
    return value


# --- JIDs ------------------------------------------------------------------------------

PHONE_SERVERS = ("s.whatsapp.net", "c.us")


def jid_of(value: Any) -> str | None:
    """A JID-ish field; bare digits (seen in `senderPn` of some builds) become a phone JID."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return value if "@" in value else f"{value}@s.whatsapp.net"


def phone_of(jid: Any) -> str | None:
    """Digits of a phone JID (`5511...:12@s.whatsapp.net` -> `5511...`) or of bare digits;
    None for LIDs, groups and anything else that holds no phone number."""
    if not isinstance(jid, str):
        return None
    user, at, server = jid.partition("@")
    if at and server not in PHONE_SERVERS:
        return None
    user = user.split(":", 1)[0]
    return user if user.isdigit() else None


def recipient(jid: str) -> str:
    """Whom to send to, as Baileys gateways take it: digits for a person, the whole JID for
    a group or a LID."""
    user, at, server = jid.partition("@")
    if not at or server in PHONE_SERVERS:
        digits = "".join(ch for ch in user.split(":", 1)[0] if ch.isdigit())
        return digits or jid
    return jid


# --- scalars ---------------------------------------------------------------------------

_ACK_NAMES = {
    "PENDING": Ack.PENDING,
    "SERVER_ACK": Ack.SENT,
    "DELIVERY_ACK": Ack.DELIVERED,
    "READ": Ack.READ,
    "PLAYED": Ack.PLAYED,
    "ERROR": Ack.FAILED,
}
# The proto enum `WebMessageInfo.Status`, which some builds store and send as numbers.
_ACK_NUMBERS = {
    0: Ack.FAILED,
    1: Ack.PENDING,
    2: Ack.SENT,
    3: Ack.DELIVERED,
    4: Ack.READ,
    5: Ack.PLAYED,
}


def ack_of(status: Any) -> Ack | None:
    """`WebMessageInfo.status`, as a name or its enum number -> Ack; None for anything else."""
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return _ACK_NUMBERS.get(status)
    if isinstance(status, str):
        text = status.strip().upper()
        if text.isdigit():
            return _ACK_NUMBERS.get(int(text))
        return _ACK_NAMES.get(text)
    return None


_NUMBER = re.compile(r"\s*\d+(\.\d+)?\s*")


def timestamp(value: Any) -> datetime:
    """`messageTimestamp` in seconds (int, numeric string, or a protobuf Long `{low, high}`);
    milliseconds and ISO strings are tolerated."""
    seconds: float
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        seconds = (int(value.get("high") or 0) << 32) + (value["low"] & 0xFFFFFFFF)
    elif isinstance(value, bool) or value is None:
        raise PayloadError(f"messageTimestamp {value!r} is not a time")
    elif isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
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
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"messageTimestamp {value!r} is out of range") from None


_EPOCH = datetime.fromtimestamp(0, UTC)


def timestamp_or_none(value: Any) -> datetime | None:
    """`timestamp`, for gateways whose messages are kept without a usable time: None when it
    is absent, unreadable, or not after 1970 (protobuf's unset 0)."""
    try:
        when = timestamp(value)
    except PayloadError:
        return None
    return when if when > _EPOCH else None


# --- the message key -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """`key` of a WebMessageInfo, with the phone JIDs Baileys sends beside LIDs."""

    id: str
    chat: str
    from_me: bool
    # The phone JID of a LID chat, when one travels with it.
    chat_alt: str | None
    # Who wrote it in a group: the phone JID when known, else the participant as sent.
    author: str | None

    @property
    def is_group(self) -> bool:
        return self.chat.endswith("@g.us")


def key_of(raw: dict[str, Any]) -> Key:
    key = raw.get("key")
    if not isinstance(key, dict):
        raise PayloadError("message has no `key`")
    msg_id, chat = str_of(key.get("id")), str_of(key.get("remoteJid"))
    if msg_id is None or chat is None:
        raise PayloadError("message key lacks `id` or `remoteJid`")
    is_group = chat.endswith("@g.us")
    participant = str_of(key.get("participant")) or str_of(raw.get("participant"))
    participant_alt = jid_of(key.get("participantAlt"))
    # LID chats: the phone JID travels beside the LID (Baileys 7 `remoteJidAlt`, 6.7
    # `senderPn`; a 1:1 chat may only carry `participantAlt`).
    alt = jid_of(key.get("remoteJidAlt")) or jid_of(key.get("senderPn"))
    if alt is None and not is_group:
        alt = participant_alt
    author = None
    if is_group:
        # A phone is what a contact is keyed on; a LID participant is used only without one.
        lid_author = participant is not None and participant.endswith("@lid")
        author = participant_alt if lid_author and participant_alt else participant
    return Key(
        id=msg_id,
        chat=chat,
        from_me=key.get("fromMe") is True,
        chat_alt=alt if alt != chat else None,
        author=author,
    )


# --- the message content ---------------------------------------------------------------

# Keys of `message` that sit beside the content rather than being it (`base64`, `mediaUrl`:
# added by Evolution when it keeps a copy of the media).
_BESIDE = frozenset(
    {"messageContextInfo", "senderKeyDistributionMessage", "contextInfo", "base64", "mediaUrl"}
)
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
_MAX_WRAPPING = 4  # ephemeral(viewOnce(...)) is the deepest seen; more is not a message
_TEXT = ("conversation", "extendedTextMessage")
_MEDIA = {
    "imageMessage": MessageType.IMAGE,
    "videoMessage": MessageType.VIDEO,
    "ptvMessage": MessageType.VIDEO,
    "audioMessage": MessageType.AUDIO,
    "documentMessage": MessageType.DOCUMENT,
    "stickerMessage": MessageType.STICKER,
}
_LOCATION = ("locationMessage", "liveLocationMessage")
_CONTACT = ("contactMessage", "contactsArrayMessage")
_REACTION = "reactionMessage"
TYPES: dict[str, MessageType] = {
    **dict.fromkeys(_TEXT, MessageType.TEXT),
    **_MEDIA,
    **dict.fromkeys(_LOCATION, MessageType.LOCATION),
    **dict.fromkeys(_CONTACT, MessageType.CONTACT),
    _REACTION: MessageType.REACTION,
}


@dataclass(frozen=True, slots=True)
class Content:
    """What a `message` says, in the fields of the domain Message."""

    raw_type: str
    type: MessageType = MessageType.OTHER
    body: str | None = None
    caption: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    is_voice_note: bool = False
    reaction_to: str | None = None
    media_key: str | None = None
    # The content object itself, for what a gateway reads beyond these fields.
    inner: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_media(self) -> bool:
        return self.raw_type in _MEDIA


def content_name(message: dict[str, Any], hint: Any = None) -> tuple[str | None, Any]:
    """The content type of a `message` and its value, looking through wrapper envelopes.
    `hint` (the gateway's `messageType`) wins when `message` has that key and it is content
    (MegaAPI names some messages `messageContextInfo`)."""
    name: str | None = None
    value: Any = None
    for _ in range(_MAX_WRAPPING + 1):
        if isinstance(hint, str) and hint in message and hint not in _BESIDE:
            name = hint
        else:
            name = next((k for k in message if k not in _BESIDE), None)
        value = message.get(name) if name is not None else None
        inner = value.get("message") if name in _WRAPPERS and isinstance(value, dict) else None
        if not isinstance(inner, dict):
            break
        message = inner
    return name, value


def content_of(message: Any, hint: Any = None) -> Content:
    """A Baileys `message` object -> its Content."""
    if not isinstance(message, dict):
        raise PayloadError("message has no `message` object")
    name, value = content_name(message, hint)
    if name is None:
        # Nothing but bookkeeping keys: the gateway's own word for the type is all there is.
        name = hint if isinstance(hint, str) and hint else "unknown"
    inner = dict_of(value)
    caption = str_of(inner.get("caption"))
    if name in _TEXT:
        text = str_of(value) if name == "conversation" else str_of(inner.get("text"))
        return Content(name, MessageType.TEXT, body=text, inner=inner)
    if name in _MEDIA:
        return Content(
            name,
            _MEDIA[name],
            body=caption,
            caption=caption,
            media_url=str_of(inner.get("url")),
            mime_type=str_of(inner.get("mimetype")),
            file_name=str_of(inner.get("fileName")),
            is_voice_note=name == "audioMessage" and inner.get("ptt") is True,
            media_key=str_of(inner.get("mediaKey")),
            inner=inner,
        )
    if name in _LOCATION:
        lat, lng = inner.get("degreesLatitude"), inner.get("degreesLongitude")
        return Content(
            name,
            MessageType.LOCATION,
            body=f"{lat},{lng}" if lat is not None and lng is not None else None,
            caption=str_of(inner.get("name")) or str_of(inner.get("address")),
            inner=inner,
        )
    if name in _CONTACT:
        cards = inner.get("contacts")
        names = [str_of(c.get("displayName")) for c in cards or [] if isinstance(c, dict)]
        body = ", ".join(n for n in names if n) or str_of(inner.get("displayName"))
        return Content(name, MessageType.CONTACT, body=body, inner=inner)
    if name == _REACTION:
        text = inner.get("text")
        return Content(
            name,
            MessageType.REACTION,
            # Protobuf leaves an empty string out: no text is a reaction taken back.
            body=text if isinstance(text, str) else "",
            reaction_to=str_of(dict_of(inner.get("key")).get("id")),
            inner=inner,
        )
    return Content(name, body=str_of(inner.get("text")) or caption, inner=inner)


def message_content(raw: dict[str, Any]) -> Content:
    """The Content of a WebMessageInfo (its `message`, typed by its `messageType`)."""
    return content_of(raw.get("message"), raw.get("messageType"))


def message(
    raw: dict[str, Any],
    key: Key,
    content: Content,
    *,
    when: datetime,
    sender_jid: str | None,
    ack: Ack | None,
) -> Message:
    """The domain Message of a WebMessageInfo read into `key` and `content`; the gateway
    supplies what its envelope decides: the time, the sender and the ack."""
    return Message(
        provider_message_id=key.id,
        chat_jid=key.chat,
        from_me=key.from_me,
        type=content.type,
        timestamp=when,
        body=content.body,
        sender_jid=sender_jid,
        # On an own message `pushName` is the instance's own name, not a contact's.
        sender_name=None if key.from_me else str_of(raw.get("pushName")),
        chat_alt_jid=key.chat_alt,
        media_url=content.media_url,
        mime_type=content.mime_type,
        file_name=content.file_name,
        caption=content.caption,
        is_voice_note=content.is_voice_note,
        raw_type=content.raw_type,
        ack=ack,
        reaction_to=content.reaction_to,
        raw=raw,
        media_key=content.media_key,
    )

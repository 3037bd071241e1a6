"""MegaAPI webhook bodies and answers -> zapsync values (pure, no I/O).

MegaAPI posts one flat Baileys-style object per event, with no envelope: `messageType` says
which (`connection_update`, `qrcode`, or a Baileys message type with `message` an object)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zapsync.domain.gateway import (
    Message,
    MessageReceived,
    QrCode,
    QrUpdated,
    StatusChanged,
    UnknownEvent,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus
from zapsync.providers import baileys
from zapsync.providers.baileys import PayloadError, ack_of, phone_of, str_of
from zapsync.providers.base import WebhookRejected


def parse_event(payload: dict[str, Any]) -> WebhookEvent:
    message_type = payload.get("messageType")
    if message_type == "connection_update":
        return _connection_event(payload)
    if message_type == "qrcode":
        return _qr_event(payload)
    # Only a Baileys message carries `message` as an object; other events send text there.
    if isinstance(payload.get("message"), dict):
        return MessageReceived(parse_message(payload))
    return UnknownEvent(str(message_type or payload.get("event") or "unknown"))


def _connection_event(payload: dict[str, Any]) -> WebhookEvent:
    what = payload.get("message")
    phone = phone_of(payload.get("jid"))
    if what == "phone_connected":
        return StatusChanged(SessionStatus.CONNECTED, "phone_connected", phone=phone)
    if what == "phone_disconnected":
        return StatusChanged(SessionStatus.DISCONNECTED, "phone_disconnected", phone=phone)
    return UnknownEvent(f"connection_update:{what}")


def qr_code(data: dict[str, Any]) -> str | None:
    """The raw QR string when sent (the sandbox does, in `code`), else MegaAPI's PNG data
    URL, which is all the hosted service sends."""
    return str_of(data.get("code")) or str_of(data.get("qrcode"))


def _qr_event(payload: dict[str, Any]) -> WebhookEvent:
    code = qr_code(payload)
    if code is None:
        raise WebhookRejected("megaapi qrcode event has no qrcode")
    return QrUpdated(QrCode(code=code))


def parse_message(payload: dict[str, Any]) -> Message:
    """One MegaAPI message object as a zapsync Message. Raises WebhookRejected when the
    key that identifies it is missing."""
    try:
        key = baileys.key_of(payload)
        content = baileys.message_content(payload)
    except PayloadError as exc:
        raise WebhookRejected(f"megaapi {exc}") from None
    if key.from_me:
        sender = str_of(payload.get("jid"))  # the instance's own number
    elif key.is_group:
        sender = key.author
    else:
        sender = key.chat
    # No usable time: the webhook is arriving now, which is the best estimate there is.
    when = baileys.timestamp_or_none(payload.get("messageTimestamp")) or datetime.now(tz=UTC)
    ack = ack_of(payload.get("status"))
    return baileys.message(payload, key, content, when=when, sender_jid=sender, ack=ack)

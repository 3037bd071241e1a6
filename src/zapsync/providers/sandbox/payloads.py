"""The sandbox world's values as zapsync's: a session status, a message, and the typed events a
webhook parser would return for a WorldEvent (the sandbox's events travel in process, and
the app feeds them to the same service as a webhook's)."""

from __future__ import annotations

from datetime import UTC, datetime

from zapsync.domain.gateway import (
    Ack,
    Message,
    MessageAcked,
    MessageReceived,
    MessageType,
    QrCode,
    QrUpdated,
    StatusChanged,
    UnknownEvent,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus
from zapsync.sandbox.world import LinkState, SimInstance, SimMessage, WorldEvent

ACKS = {-1: Ack.FAILED, 0: Ack.PENDING, 1: Ack.SENT, 2: Ack.DELIVERED, 3: Ack.READ, 4: Ack.PLAYED}
TYPES = {t.value: t for t in MessageType}
# A voice note (`ptt`) is audio.
_KINDS = {**TYPES, "ptt": MessageType.AUDIO}


def status_of(inst: SimInstance) -> SessionStatus:
    if inst.state is LinkState.OPEN:
        return SessionStatus.CONNECTED
    if inst.state is LinkState.QR:
        return SessionStatus.QR_PENDING
    if inst.state is LinkState.STARTING:
        return SessionStatus.CONNECTING
    if inst.state is LinkState.FAILED:
        return SessionStatus.FAILED
    if inst.logged_out and inst.phone is not None:
        return SessionStatus.LOGGED_OUT
    return SessionStatus.DISCONNECTED


def to_domain(msg: SimMessage) -> Message:
    kind = _KINDS.get(msg.type, MessageType.OTHER)
    # Positional: an import converts every message, and keywords cost a third of the call.
    return Message(
        msg.id,  # provider_message_id
        msg.chat_jid,
        msg.from_me,
        kind,  # type
        datetime.fromtimestamp(msg.timestamp, UTC),  # timestamp
        msg.body,
        msg.sender_jid,
        msg.push_name,  # sender_name
        msg.chat_alt_jid,
        msg.media_url,
        msg.mime_type,
        msg.file_name,
        None,  # caption
        msg.type == "ptt",  # is_voice_note
        None if kind is not MessageType.OTHER else msg.type,  # raw_type
        ACKS.get(msg.ack),  # ack
        msg.reaction_to,
    )


def events_of(event: WorldEvent) -> list[WebhookEvent]:
    inst = event.instance
    if event.kind == "status":
        return [StatusChanged(status_of(inst), str(event.data.get("state")), phone=inst.phone)]
    if event.kind == "qr":
        return [QrUpdated(QrCode(event.data.get("code")))]
    if event.kind == "message":
        return [MessageReceived(to_domain(event.data["message"]))]
    if event.kind == "ack":
        return [
            MessageAcked(event.data["message_id"], event.data["chat_jid"], ACKS[event.data["ack"]])
        ]
    return [UnknownEvent(event.kind)]

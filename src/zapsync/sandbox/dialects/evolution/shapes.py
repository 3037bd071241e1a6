"""Evolution API v2 JSON shapes rendered from the sandbox world.

Key order and field names follow the real 2.3.6 captures in `contracts/evolution/real-2.3.6/`
(Express serialises objects in insertion order, so order is part of "byte-compatible")."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import segno

from zapsync.sandbox.world import LinkState, SimChat, SimInstance, SimMessage

BAILEYS = "WHATSAPP-BAILEYS"
INTEGRATIONS = (BAILEYS, "WHATSAPP-BUSINESS", "EVOLUTION")

# Baileys close codes after which Evolution does not reconnect (a final close).
LOGGED_OUT_CODES = frozenset({401, 403, 402, 406})

# The sandbox world keeps acks as WAHA-style numbers; Evolution renders them as names
# (src/utils/renderStatus.ts).
STATUS_BY_ACK = {
    -1: "ERROR",
    0: "PENDING",
    1: "SERVER_ACK",
    2: "DELIVERY_ACK",
    3: "READ",
    4: "PLAYED",
}

_LIVE_STATE = {
    LinkState.OPEN: "open",
    LinkState.STARTING: "connecting",
    LinkState.QR: "connecting",
    LinkState.STOPPED: "close",
    LinkState.FAILED: "refused",
}

_DEFAULT_MIME = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg; codecs=opus",
    "ptt": "audio/ogg; codecs=opus",
    "document": "application/pdf",
    "sticker": "image/webp",
}


def live_state(inst: SimInstance) -> str:
    """What `connectionState` reads from memory: the socket as it is now."""
    return _LIVE_STATE[inst.state]


def iso(ts: float) -> str:
    """A UTC timestamp the way Prisma rows render it: `2026-11-22T13:37:15.212Z`."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_wall_clock() -> str:
    """Evolution's webhook `date_time`: local time with a `Z` glued on (it is not UTC)."""
    return datetime.now().isoformat(timespec="milliseconds") + "Z"


def db_id(*parts: object) -> str:
    """A stable cuid-looking row id, so the same message keeps the same `id` across calls."""
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()
    return "cm" + digest[:23]


def wuid(phone: str | None) -> str | None:
    return f"{phone}@s.whatsapp.net" if phone else None


def status_of(msg: SimMessage) -> str:
    return STATUS_BY_ACK.get(msg.ack, "SERVER_ACK")


# --- QR --------------------------------------------------------------------------


@lru_cache(maxsize=64)
def qr_base64(code: str) -> str:
    return str(segno.make(code, error="l").png_data_uri(scale=4))


def pairing_code(code: str) -> str:
    """An 8-character code derived from the QR, as WhatsApp shows one per QR cycle."""
    alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"
    digest = hashlib.sha256(code.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:8])


def qr_object(inst: SimInstance, with_pairing: bool) -> dict[str, Any]:
    """`instance.qrCode`: the full object while a QR is shown, `{"count": 0}` otherwise
    (exactly what 2.3.6 answers when it could not make a QR)."""
    if not inst.qr_code:
        return {"count": 0}
    return {
        "pairingCode": pairing_code(inst.qr_code) if with_pairing else None,
        "code": inst.qr_code,
        "base64": qr_base64(inst.qr_code),
        "count": inst.qr_count,
    }


# --- messages --------------------------------------------------------------------


def _location(body: str | None) -> dict[str, Any]:
    lat, lng = 0.0, 0.0
    if body and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*", body):
        lat_s, lng_s = body.split(",")
        lat, lng = float(lat_s), float(lng_s)
    return {"degreesLatitude": lat, "degreesLongitude": lng, "name": None if lng or lat else body}


def content(msg: SimMessage) -> tuple[str, dict[str, Any]]:
    """(`messageType`, `message`) for a world message. Text is always `conversation`: Evolution
    rewrites `extendedTextMessage` before storing or emitting it."""
    mime = msg.mime_type or _DEFAULT_MIME.get(msg.type)
    kind = msg.type
    if kind == "text":
        return "conversation", {"conversation": msg.body or ""}
    if kind in ("image", "video"):
        visual = {"url": msg.media_url, "mimetype": mime, "caption": msg.body}
        return f"{kind}Message", {f"{kind}Message": visual}
    if kind in ("audio", "ptt"):
        audio: dict[str, Any] = {"url": msg.media_url, "mimetype": mime}
        audio.update(seconds=5, ptt=kind == "ptt")
        return "audioMessage", {"audioMessage": audio}
    if kind == "document":
        name = msg.file_name or "document"
        doc = {"url": msg.media_url, "mimetype": mime, "title": name, "fileName": name}
        if msg.body:
            doc["caption"] = msg.body
        return "documentMessage", {"documentMessage": doc}
    if kind == "sticker":
        return "stickerMessage", {"stickerMessage": {"url": msg.media_url, "mimetype": mime}}
    if kind == "location":
        return "locationMessage", {"locationMessage": _location(msg.body)}
    if kind == "contact":
        name = msg.body or "Contact"
        vcard = f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nEND:VCARD"
        return "contactMessage", {"contactMessage": {"displayName": name, "vcard": vcard}}
    if kind == "reaction":
        target = {"remoteJid": msg.chat_jid, "fromMe": not msg.from_me, "id": msg.reaction_to}
        return "reactionMessage", {"reactionMessage": {"key": target, "text": msg.body or ""}}
    # Anything else keeps its Baileys name (pollCreationMessageV3, eventMessage, ...).
    return kind, {kind: {"text": msg.body} if msg.body else {}}


def key(msg: SimMessage, *, db_order: bool = False) -> dict[str, Any]:
    """The Baileys key. Rows read back from PostgreSQL JSONB come out `{id, fromMe, remoteJid}`;
    live events keep Baileys' `{remoteJid, fromMe, id}`."""
    if db_order:
        out: dict[str, Any] = {"id": msg.id, "fromMe": msg.from_me, "remoteJid": msg.chat_jid}
    else:
        out = {"remoteJid": msg.chat_jid, "fromMe": msg.from_me, "id": msg.id}
    if msg.chat_jid.endswith("@g.us") and msg.sender_jid:
        out["participant"] = msg.sender_jid
    lid = msg.chat_jid.endswith("@lid") or (msg.sender_jid or "").endswith("@lid")
    if lid:
        out["addressingMode"] = "lid"
        if msg.chat_alt_jid and msg.chat_jid.endswith("@lid"):
            out["remoteJidAlt"] = msg.chat_alt_jid
    return out


def push_name(inst: SimInstance, msg: SimMessage, chat: SimChat | None) -> str | None:
    if msg.from_me:
        return inst.push_name
    return msg.push_name or (chat.name if chat else None)


def message_raw(
    inst: SimInstance,
    msg: SimMessage,
    instance_id: str,
    *,
    status: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """`messageRaw`: the sendText/sendMedia answer, and the data of `messages.upsert` and
    `send.message`."""
    mtype, message = content(msg)
    return {
        "key": key(msg),
        "pushName": push_name(inst, msg, inst.chats.get(msg.chat_jid)),
        "status": status or status_of(msg),
        "message": message,
        "contextInfo": None,
        "messageType": mtype,
        "messageTimestamp": msg.timestamp,
        "instanceId": instance_id,
        "source": source or ("unknown" if msg.from_me else "android"),
    }


def _participant(msg: SimMessage) -> str | None:
    return msg.sender_jid if msg.chat_jid.endswith("@g.us") else None


def last_message(inst: SimInstance, msg: SimMessage, instance_id: str) -> dict[str, Any]:
    """`findChats[].lastMessage`: a Message row joined in by the DISTINCT ON query."""
    mtype, message = content(msg)
    return {
        "id": db_id(instance_id, msg.id),
        "key": key(msg, db_order=True),
        "pushName": push_name(inst, msg, inst.chats.get(msg.chat_jid)),
        "participant": _participant(msg),
        "messageType": mtype,
        "message": message,
        "contextInfo": None,
        "source": "unknown" if msg.from_me else "android",
        "messageTimestamp": msg.timestamp,
        "instanceId": instance_id,
        "sessionId": None,
        "status": status_of(msg),
    }


def message_record(inst: SimInstance, msg: SimMessage, instance_id: str) -> dict[str, Any]:
    """`findMessages.messages.records[]`, with the MessageUpdate rows of an outgoing message."""
    mtype, message = content(msg)
    updates = [{"status": status_of(msg)}] if msg.from_me and msg.ack >= 2 else []
    return {
        "id": db_id(instance_id, msg.id),
        "key": key(msg, db_order=True),
        "pushName": push_name(inst, msg, inst.chats.get(msg.chat_jid)),
        "messageType": mtype,
        "message": message,
        "messageTimestamp": msg.timestamp,
        "instanceId": instance_id,
        "source": "unknown" if msg.from_me else "android",
        "contextInfo": None,
        "MessageUpdate": updates,
    }


def chat_row(inst: SimInstance, chat: SimChat, instance_id: str, now: float) -> dict[str, Any]:
    """`findChats[]`. The 24 h customer-service window opens on the last incoming message."""
    last = chat.messages[-1]
    inbound = [m.timestamp for m in chat.messages if not m.from_me]
    window_start = iso(inbound[-1]) if inbound else None
    window_end = iso(inbound[-1] + 86400) if inbound else None
    return {
        "id": None if chat.is_group else db_id(instance_id, "contact", chat.jid),
        "remoteJid": chat.jid,
        "pushName": chat.name,
        "profilePicUrl": None,
        "updatedAt": iso(last.timestamp),
        "windowStart": window_start,
        "windowExpires": window_end,
        "windowActive": bool(inbound) and inbound[-1] + 86400 > now,
        "lastMessage": last_message(inst, last, instance_id),
        "unreadCount": chat.unread,
        "isSaved": False,
    }


def create_jid(number: str) -> str:
    """Evolution's `createJid`: JIDs pass through, long ids are groups, digits are users."""
    number = number.strip()
    if "@" in number:
        return number
    if "-" in number and len(number) >= 24:
        group = re.sub(r"[^\d-]", "", number)
        return f"{group}@g.us"
    digits = re.sub(r"\D", "", number)
    if len(digits) >= 18:
        return f"{digits}@g.us"
    return f"{digits}@s.whatsapp.net"

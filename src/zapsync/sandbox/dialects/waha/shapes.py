"""The bodies the WAHA dialect answers and posts (engine NOWEB): whatsapp-web.js ids, the
`WAMessage` with the Baileys proto in `_data`, session statuses and ack names."""

from __future__ import annotations

from typing import Any

from zapsync.sandbox.world import LinkState, SimChat, SimInstance, SimMessage

VERSION = "2025.10.1"
ENGINE = "NOWEB"

STATUS = {
    LinkState.STOPPED: "STOPPED",
    LinkState.STARTING: "STARTING",
    LinkState.QR: "SCAN_QR_CODE",
    LinkState.OPEN: "WORKING",
    LinkState.FAILED: "FAILED",
}

ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}

MEDIA_TYPES = frozenset({"image", "video", "audio", "ptt", "document", "sticker"})


# --- identities -------------------------------------------------------------------


def waha_jid(jid: str) -> str:
    """WAHA speaks whatsapp-web.js ids: people are `NNN@c.us`, the world keeps Baileys'."""
    return jid.removesuffix("@s.whatsapp.net") + "@c.us" if jid.endswith("@s.whatsapp.net") else jid


def world_jid(chat_id: str) -> str:
    if chat_id.endswith("@c.us"):
        return chat_id.removesuffix("@c.us") + "@s.whatsapp.net"
    return chat_id if "@" in chat_id else f"{chat_id}@s.whatsapp.net"


def me_of(inst: SimInstance) -> dict[str, Any] | None:
    if inst.state is not LinkState.OPEN or not inst.phone:
        return None
    return {"id": f"{inst.phone}@c.us", "pushName": inst.push_name}


def serialized_id(inst: SimInstance, msg: SimMessage) -> str:
    """`true_<chat>_<id>` / `false_<chat>_<id>`, with the sender appended in groups."""
    chat = waha_jid(msg.chat_jid)
    out = f"{'true' if msg.from_me else 'false'}_{chat}_{msg.id}"
    if msg.chat_jid.endswith("@g.us") and not msg.from_me and msg.sender_jid:
        out += f"_{waha_jid(msg.sender_jid)}"
    return out


# --- message rendering ----------------------------------------------------------------


def raw_content(msg: SimMessage) -> dict[str, Any]:
    """The Baileys `message` proto NOWEB puts in `_data`, which carries the real type."""
    media = {"url": msg.media_url, "mimetype": msg.mime_type}
    if msg.type == "text":
        return {"conversation": msg.body or ""}
    if msg.type == "image":
        return {"imageMessage": {**media, "caption": msg.body}}
    if msg.type == "video":
        return {"videoMessage": {**media, "caption": msg.body}}
    if msg.type in ("audio", "ptt"):
        return {"audioMessage": {**media, "ptt": msg.type == "ptt"}}
    if msg.type == "document":
        return {"documentMessage": {**media, "fileName": msg.file_name, "caption": msg.body}}
    if msg.type == "sticker":
        return {"stickerMessage": media}
    if msg.type == "location":
        return {"locationMessage": {"degreesLatitude": 0.0, "degreesLongitude": 0.0}}
    if msg.type == "contact":
        return {"contactMessage": {"displayName": msg.body, "vcard": ""}}
    if msg.type == "reaction":
        return {"reactionMessage": {"key": {"id": msg.reaction_to}, "text": msg.body or ""}}
    return {f"{msg.type}Message": {}}


def raw_data(inst: SimInstance, msg: SimMessage) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": msg.chat_jid, "fromMe": msg.from_me, "id": msg.id}
    if msg.chat_jid.endswith("@g.us") and msg.sender_jid and not msg.from_me:
        key["participant"] = msg.sender_jid
    if msg.chat_alt_jid:
        key["remoteJidAlt"] = msg.chat_alt_jid
    return {
        "key": key,
        "message": raw_content(msg),
        "messageTimestamp": msg.timestamp,
        "pushName": inst.push_name if msg.from_me else msg.push_name,
    }


def message_base(inst: SimInstance, msg: SimMessage) -> dict[str, Any]:
    me = me_of(inst)
    my_id = me["id"] if me else (f"{inst.phone}@c.us" if inst.phone else None)
    chat = waha_jid(msg.chat_jid)
    participant = None
    if msg.chat_jid.endswith("@g.us"):
        participant = my_id if msg.from_me else (waha_jid(msg.sender_jid or "") or None)
    return {
        "id": serialized_id(inst, msg),
        "timestamp": msg.timestamp,
        "from": my_id if msg.from_me else chat,
        "fromMe": msg.from_me,
        "source": "api" if msg in inst.sent else "app",
        "to": chat if msg.from_me else my_id,
        "participant": participant,
    }


def wa_message(inst: SimInstance, msg: SimMessage) -> dict[str, Any]:
    has_media = msg.type in MEDIA_TYPES and bool(msg.media_url)
    media = None
    if has_media:
        media = {"url": msg.media_url, "mimetype": msg.mime_type, "filename": msg.file_name}
    return {
        **message_base(inst, msg),
        "body": msg.body,
        "hasMedia": has_media,
        "media": media,
        "ack": msg.ack,
        "ackName": ACK_NAMES.get(msg.ack, "UNKNOWN"),
        "vCards": [],
        "_data": raw_data(inst, msg),
    }


def find_message(chat: SimChat | None, message_id: str | None) -> SimMessage | None:
    if chat is None or message_id is None:
        return None
    return next((m for m in chat.messages if m.id == message_id), None)

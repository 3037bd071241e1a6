"""The bodies the MegaAPI dialect answers and posts: Baileys message objects, flat and
envelope-less as MegaAPI sends them (contracts/megaapi), and its connection and QR events."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlsplit

import segno

from zapsync.sandbox.world import SimInstance, SimMessage


def user_jid(phone: str | None) -> str | None:
    return f"{phone}@s.whatsapp.net" if phone else None


def recipient_jid(to: str) -> str:
    """MegaAPI takes bare digits for people and a full `...@g.us` JID for groups."""
    return to if "@" in to else f"{to}@s.whatsapp.net"


def qr_data_uri(code: str) -> str:
    return str(segno.make(code, error="m").png_data_uri(scale=4))


# --- messages --------------------------------------------------------------


def media_key_of(msg: SimMessage) -> str:
    """The message's Baileys `mediaKey` (base64 of 32 bytes): derived from its id, so the
    download route knows which file a key opens without keeping a table of keys."""
    return base64.b64encode(hashlib.sha256(f"sandbox-media:{msg.id}".encode()).digest()).decode()


def _media(msg: SimMessage) -> dict[str, Any]:
    media: dict[str, Any] = {"url": msg.media_url or "", "mimetype": msg.mime_type or ""}
    media["mediaKey"] = media_key_of(msg)
    media["directPath"] = urlsplit(msg.media_url).path if msg.media_url else ""
    if msg.body:
        media["caption"] = msg.body
    return media


def baileys_content(msg: SimMessage) -> tuple[str, dict[str, Any]]:
    """The Baileys `messageType` and `message` object for one simulated message."""
    kind = msg.type
    if kind == "text":
        return "conversation", {"conversation": msg.body or "", "messageContextInfo": {}}
    if kind in ("image", "video", "sticker"):
        name = f"{kind}Message"
        return name, {name: _media(msg)}
    if kind in ("audio", "ptt"):
        audio = {**_media(msg), "ptt": kind == "ptt"}
        audio.pop("caption", None)
        return "audioMessage", {"audioMessage": audio}
    if kind == "document":
        doc = {**_media(msg), "fileName": msg.file_name or "file"}
        return "documentMessage", {"documentMessage": doc}
    if kind == "location":
        lat, _, lng = (msg.body or "0,0").partition(",")
        try:
            loc: dict[str, Any] = {"degreesLatitude": float(lat), "degreesLongitude": float(lng)}
        except ValueError:
            loc = {"degreesLatitude": 0.0, "degreesLongitude": 0.0, "name": msg.body}
        return "locationMessage", {"locationMessage": loc}
    if kind == "contact":
        name = msg.body or ""
        vcard = f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nEND:VCARD"
        return "contactMessage", {"contactMessage": {"displayName": name, "vcard": vcard}}
    if kind == "reaction":
        key = {"remoteJid": msg.chat_jid, "fromMe": not msg.from_me, "id": msg.reaction_to}
        return "reactionMessage", {"reactionMessage": {"key": key, "text": msg.body or ""}}
    # Anything else travels under its own Baileys name, as MegaAPI forwards it untouched.
    return kind, {kind: {}}


def message_payload(inst: SimInstance, msg: SimMessage) -> dict[str, Any]:
    """The flat, envelope-less object MegaAPI posts for a message (contracts/megaapi)."""
    message_type, message = baileys_content(msg)
    key: dict[str, Any] = {"remoteJid": msg.chat_jid, "fromMe": msg.from_me, "id": msg.id}
    if msg.chat_jid.endswith("@g.us") and msg.sender_jid:
        key["participant"] = msg.sender_jid
    if msg.chat_alt_jid:
        key["remoteJidAlt"] = msg.chat_alt_jid
    return {
        "instance_key": inst.name,
        "jid": user_jid(inst.phone),
        "messageType": message_type,
        "key": key,
        "messageTimestamp": msg.timestamp,
        "pushName": inst.push_name if msg.from_me else (msg.push_name or ""),
        "broadcast": msg.chat_jid.endswith("@broadcast"),
        "message": message,
        "verifiedBizName": "",
    }


def connection_payload(inst: SimInstance, connected: bool) -> dict[str, Any]:
    return {
        "instance_key": inst.name,
        "jid": user_jid(inst.phone),
        "messageType": "connection_update",
        "message": "phone_connected" if connected else "phone_disconnected",
        "pushName": inst.push_name,
    }


def qr_payload(inst: SimInstance, code: str) -> dict[str, Any]:
    return {
        "instance_key": inst.name,
        "messageType": "qrcode",
        "message": "qrcode_updated",
        "qrcode": qr_data_uri(code),
        "code": code,
    }


def sent_body(msg: SimMessage) -> dict[str, Any]:
    """The answer to a send: the Baileys message just sent, text as `extendedTextMessage`."""
    message_type, message = baileys_content(msg)
    if message_type == "conversation":
        message = {"extendedTextMessage": {"text": msg.body or ""}}
    return {
        "error": False,
        "message": "Message sent",
        "messageData": {
            "key": {"remoteJid": msg.chat_jid, "fromMe": True, "id": msg.id},
            "message": message,
            "messageTimestamp": str(msg.timestamp),
            "status": "PENDING",
        },
    }

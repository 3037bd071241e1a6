"""Turns world events into the webhooks WAHA posts: signed (`X-Webhook-Hmac`, HMAC-SHA512 of
the exact bytes sent) to each webhook of the session's config that subscribed to the event."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from zapsync.sandbox.dialects.waha.shapes import (
    ACK_NAMES,
    ENGINE,
    STATUS,
    VERSION,
    find_message,
    me_of,
    message_base,
    serialized_id,
    wa_message,
)
from zapsync.sandbox.dialects.waha.state import WahaSessions
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import LinkState, SimInstance, SimMessage, WorldEvent


class WahaWebhooks:
    def __init__(self, sessions: WahaSessions, sender: WebhookSender) -> None:
        self.sessions = sessions
        self.sender = sender

    def on_event(self, ev: WorldEvent) -> None:
        inst = ev.instance
        if ev.kind == "status":
            self.status_changed(inst, STATUS[LinkState(ev.data["state"])])
        elif ev.kind == "message":
            msg: SimMessage = ev.data["message"]
            if msg.type == "reaction":
                self.publish(inst, "message.reaction", reaction(inst, msg))
                return
            payload = wa_message(inst, msg)
            if not msg.from_me:
                self.publish(inst, "message", payload)
            self.publish(inst, "message.any", payload)
        elif ev.kind == "ack":
            self.publish(inst, "message.ack", ack(inst, ev.data))
        elif ev.kind == "edit":
            self.publish(inst, "message.edited", edited(inst, ev.data))
        elif ev.kind == "revoke":
            self.publish(inst, "message.revoked", revoked(inst, ev.data))

    def status_changed(self, inst: SimInstance, status: str) -> None:
        points = self.sessions.history.setdefault(inst.name, [])
        points.append({"status": status, "timestamp": int(time.time() * 1000)})
        del points[:-3]
        payload = {"name": inst.name, "status": status, "statuses": list(points)}
        self.publish(inst, "session.status", payload)

    def publish(self, inst: SimInstance, event: str, payload: dict[str, Any]) -> None:
        config = self.sessions.configs.get(inst.name) or {}
        for hook in self.sessions.webhooks(inst.name):
            events = hook.get("events") or []
            if event not in events and "*" not in events:
                continue
            envelope = {
                "id": "evt_" + secrets.token_hex(13),
                "timestamp": int(time.time() * 1000),
                "event": event,
                "session": inst.name,
                "metadata": config.get("metadata") or {},
                "me": me_of(inst),
                "payload": payload,
                "engine": ENGINE,
                "environment": {"tier": "CORE", "version": VERSION},
            }
            # Signed and sent as the same bytes: JSON.stringify output, UTF-8, compact.
            body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {
                "User-Agent": f"WAHA/{VERSION}",
                "X-Webhook-Request-Id": secrets.token_hex(13),
                "X-Webhook-Timestamp": str(envelope["timestamp"]),
            }
            key = (hook.get("hmac") or {}).get("key")
            if key:
                headers["X-Webhook-Hmac"] = hmac.new(key.encode(), body, hashlib.sha512).hexdigest()
                headers["X-Webhook-Hmac-Algorithm"] = "sha512"
            for custom in hook.get("customHeaders") or []:
                headers[str(custom["name"])] = str(custom["value"])
            self.sender.post_raw(str(hook["url"]), body, headers)


# --- event payloads -------------------------------------------------------------------


def reaction(inst: SimInstance, msg: SimMessage) -> dict[str, Any]:
    chat = inst.chats.get(msg.chat_jid)
    target = find_message(chat, msg.reaction_to)
    target_id = serialized_id(inst, target) if target else msg.reaction_to
    return {
        **message_base(inst, msg),
        "reaction": {"text": msg.body or "", "messageId": target_id},
    }


def ack(inst: SimInstance, data: dict[str, Any]) -> dict[str, Any]:
    chat_jid = str(data["chat_jid"])
    target = find_message(inst.chats.get(chat_jid), data.get("message_id"))
    if target is None:  # an ack for a message the sandbox never stored: assume ours
        target = SimMessage(
            id=str(data["message_id"]), chat_jid=chat_jid, from_me=True, timestamp=0
        )
    base = message_base(inst, target)
    value = int(data["ack"])
    return {
        "id": base["id"],
        "from": base["from"],
        "to": base["to"],
        "participant": base["participant"],
        "fromMe": target.from_me,
        "ack": value,
        "ackName": ACK_NAMES.get(value, "UNKNOWN"),
    }


def edited(inst: SimInstance, data: dict[str, Any]) -> dict[str, Any]:
    """The edit arrives as a new protocol message carrying the new text; the original's
    bare id is in `editedMessageId`."""
    chat_jid = str(data["chat_jid"])
    original = find_message(inst.chats.get(chat_jid), data.get("message_id"))
    from_me = original.from_me if original else bool(data.get("from_me", False))
    carrier = SimMessage(
        id=secrets.token_hex(8).upper(),
        chat_jid=chat_jid,
        from_me=from_me,
        timestamp=int(time.time()),
        body=data.get("body"),
        sender_jid=original.sender_jid if original else None,
    )
    return {**wa_message(inst, carrier), "editedMessageId": data.get("message_id")}


def revoked(inst: SimInstance, data: dict[str, Any]) -> dict[str, Any]:
    chat_jid = str(data["chat_jid"])
    original = find_message(inst.chats.get(chat_jid), data.get("message_id"))
    from_me = original.from_me if original else bool(data.get("from_me", False))
    carrier = SimMessage(
        id=secrets.token_hex(8).upper(),
        chat_jid=chat_jid,
        from_me=from_me,
        timestamp=int(time.time()),
        type="protocol",
    )
    return {
        "after": wa_message(inst, carrier),
        "before": wa_message(inst, original) if original else None,
        "revokedMessageId": data.get("message_id"),
        "_data": None,
    }

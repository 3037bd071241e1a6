"""Turns neutral world events into the webhooks an Evolution API v2 server posts.

What is *not* sent matters as much as what is: a silent drop emits nothing (the world does not
announce it), an ack for a message the server never stored is skipped, and `chats.upsert` only
names chats the server did not know."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

from zapsync.sandbox.dialects.evolution import shapes
from zapsync.sandbox.dialects.evolution.state import EvoInstance, Registry
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import LinkState, SimInstance, SimMessage, WorldEvent

Envelope = tuple[str, Any]  # (event name in dotted form, data)


def config_name(event: str) -> str:
    """`messages.upsert` -> `MESSAGES_UPSERT` (the spelling of the webhook `events` list)."""
    return event.replace(".", "_").replace("-", "_").upper()


def url_suffix(event: str) -> str:
    """`messages.upsert` -> `messages-upsert` (appended to the URL when `byEvents` is on)."""
    return config_name(event).replace("_", "-").lower()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_bearer(secret: str, now: int | None = None) -> str:
    """Evolution's `generateJwtToken`: HS256 `{iat, exp:+600, app, action}`."""
    now = int(time.time()) if now is None else now
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"}
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"Bearer {header}.{body}.{_b64url(sig)}"


class EvolutionWebhooks:
    def __init__(self, registry: Registry, sender: WebhookSender) -> None:
        self.registry = registry
        self.sender = sender

    # --- delivery ---------------------------------------------------------------

    def deliver(self, evo: EvoInstance, event: str, data: Any) -> None:
        cfg, meta = evo.inst.webhook, evo.hook
        if cfg is None or meta is None or not meta.enabled:
            return
        if config_name(event) not in cfg.events:
            return
        url = f"{cfg.url.rstrip('/')}/{url_suffix(event)}" if meta.by_events else cfg.url
        payload: dict[str, Any] = {
            "event": event,
            "instance": evo.inst.name,
            "data": data,
            "destination": cfg.url,
            "date_time": shapes.local_wall_clock(),
        }
        if evo.inst.phone:  # the real server leaves `sender` out until the phone is paired
            payload["sender"] = shapes.wuid(evo.inst.phone)
        payload["server_url"] = evo.server_url
        payload["apikey"] = evo.inst.token
        headers = dict(cfg.headers)
        jwt_key = headers.pop("jwt_key", None)
        if jwt_key:
            headers["Authorization"] = jwt_bearer(jwt_key)
        self.sender.post(url, payload, headers)

    def on_event(self, ev: WorldEvent) -> None:
        evo = self.registry.of(ev.instance)
        handler = getattr(self, f"_on_{ev.kind}", None)
        if handler is None:
            return
        for event, data in handler(evo, ev.data):
            self.deliver(evo, event, data)

    # --- one method per world event kind ----------------------------------------

    def _on_status(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        inst = evo.inst
        state = LinkState(data["state"])
        reason = data.get("reason")
        if state is LinkState.OPEN:
            evo.stored_status = "open"
            evo.owner_jid = shapes.wuid(inst.phone)
            evo.profile_name = inst.push_name
            evo.updated_at = time.time()
            yield (
                "connection.update",
                {
                    "instance": inst.name,
                    "wuid": shapes.wuid(inst.phone),
                    "profileName": inst.push_name,
                    "profilePictureUrl": None,
                    "state": "open",
                    "statusReason": 200,
                },
            )
        elif state in (LinkState.QR, LinkState.STARTING):
            yield (
                "connection.update",
                {
                    "instance": inst.name,
                    "state": "connecting",
                    "statusReason": 200,
                },
            )
        elif state is LinkState.FAILED:
            yield (
                "connection.update",
                {
                    "instance": inst.name,
                    "state": "refused",
                    "statusReason": 428,
                    "wuid": shapes.wuid(inst.phone),
                    "profileName": inst.push_name,
                    "profilePictureUrl": None,
                },
            )
        elif isinstance(reason, int) and reason in shapes.LOGGED_OUT_CODES:
            # Only a final close is written to the DB, announced by `status.instance` first.
            # A logged-out socket is not reconnected.
            evo.looping = False
            now = time.time()
            evo.stored_status = "close"
            evo.disconnection_code = reason
            evo.disconnection_at = now
            evo.updated_at = now
            yield (
                "status.instance",
                {
                    "instance": inst.name,
                    "status": "closed",
                    "disconnectionAt": shapes.iso(now),
                    "disconnectionReasonCode": reason,
                    "disconnectionObject": json.dumps(
                        {"error": {"output": {"statusCode": reason}}}
                    ),
                },
            )
            # `monitor.service.ts` answers the close with `sendDataWebhook(LOGOUT_INSTANCE,
            # null)`: no data at all, the instance is only named in the envelope.
            yield "logout.instance", None
            yield (
                "connection.update",
                {"instance": inst.name, "state": "close", "statusReason": reason},
            )
        else:
            # The world announced a reconnectable close (a drop that was not silent).
            yield (
                "connection.update",
                {
                    "instance": inst.name,
                    "state": "close",
                    "statusReason": reason if isinstance(reason, int) else 428,
                },
            )

    def _on_qr(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        code = data.get("code") or evo.inst.qr_code
        if not code:
            return
        yield (
            "qrcode.updated",
            {
                "qrcode": {
                    "instance": evo.inst.name,
                    "pairingCode": shapes.pairing_code(code) if evo.number else None,
                    "code": code,
                    "base64": shapes.qr_base64(code),
                }
            },
        )

    def _on_message(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        inst = evo.inst
        msg: SimMessage = data["message"]
        if any(sent is msg for sent in inst.sent):
            # Sent through the API: Evolution answers the request and emits `send.message`.
            yield "send.message", shapes.message_raw(inst, msg, evo.instance_id, status="PENDING")
            return
        chat = inst.chats.get(msg.chat_jid)
        if chat is not None and len(chat.messages) == 1 and chat.jid not in evo.announced_chats:
            evo.announced_chats.add(chat.jid)
            yield (
                "chats.upsert",
                [
                    {
                        "remoteJid": chat.jid,
                        "instanceId": evo.instance_id,
                        "name": chat.name,
                        "unreadMessages": 0 if msg.from_me else 1,
                    }
                ],
            )
        status = "DELIVERY_ACK" if not msg.from_me else None
        yield "messages.upsert", shapes.message_raw(inst, msg, evo.instance_id, status=status)
        contact = msg.sender_jid if msg.chat_jid.endswith("@g.us") else msg.chat_jid
        if not msg.from_me and contact and contact not in evo.known_contacts:
            # First message from someone new: one object, not the array Baileys sends.
            evo.known_contacts.add(contact)
            yield (
                "contacts.upsert",
                {
                    "remoteJid": contact,
                    "pushName": msg.push_name,
                    "profilePicUrl": None,
                    "instanceId": evo.instance_id,
                },
            )

    def _on_ack(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        msg = _find(evo.inst, data.get("chat_jid"), data.get("message_id"))
        if msg is None:  # Evolution skips updates for messages it never stored
            return
        ack = data.get("ack")
        status = shapes.STATUS_BY_ACK.get(ack if isinstance(ack, int) else msg.ack, "SERVER_ACK")
        yield "messages.update", _update(evo, msg, status)

    def _on_revoke(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        msg = _find(evo.inst, data.get("chat_jid"), data.get("message_id"))
        if msg is not None:
            yield "messages.update", _update(evo, msg, "DELETED")

    def _on_edit(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        msg = _find(evo.inst, data.get("chat_jid"), data.get("message_id"))
        if msg is None:
            return
        body = data.get("body", msg.body) or ""
        yield (
            "messages.edited",
            {
                "key": {"remoteJid": msg.chat_jid, "fromMe": msg.from_me, "id": msg.id},
                "type": "MESSAGE_EDIT",
                "editedMessage": {"conversation": body},
                "timestampMs": int(time.time() * 1000),
            },
        )

    def _on_contact(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        jid = data.get("jid")
        if isinstance(jid, str):
            evo.known_contacts.add(jid)
            yield "contacts.upsert", [_contact(evo, jid, data.get("name"))]

    def _on_chat(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        jid = data.get("jid")
        if not isinstance(jid, str) or jid in evo.announced_chats:
            return
        evo.announced_chats.add(jid)
        name = data.get("name")
        yield (
            "chats.upsert",
            [{"remoteJid": jid, "instanceId": evo.instance_id, "name": name, "unreadMessages": 0}],
        )
        if not jid.endswith("@g.us") and jid not in evo.known_contacts:
            # Contacts synced from the phone's address book arrive as an array.
            evo.known_contacts.add(jid)
            yield "contacts.upsert", [_contact(evo, jid, name)]

    def _on_history(self, evo: EvoInstance, data: dict[str, Any]) -> Iterator[Envelope]:
        chats = [c for c in data.get("chats") or [] if isinstance(c, str)]
        if chats:
            evo.announced_chats.update(chats)
            yield (
                "chats.set",
                [
                    {
                        "remoteJid": jid,
                        "instanceId": evo.instance_id,
                        "name": chat.name if (chat := evo.inst.chats.get(jid)) else None,
                    }
                    for jid in chats
                ],
            )
        messages = [m for m in data.get("messages") or [] if isinstance(m, SimMessage)]
        if messages:
            yield (
                "messages.set",
                [shapes.message_raw(evo.inst, m, evo.instance_id) for m in messages],
            )


def _find(inst: SimInstance, chat_jid: Any, message_id: Any) -> SimMessage | None:
    chats = [inst.chats[chat_jid]] if chat_jid in inst.chats else list(inst.chats.values())
    for chat in chats:
        for msg in chat.messages:
            if msg.id == message_id:
                return msg
    return None


def _update(evo: EvoInstance, msg: SimMessage, status: str) -> dict[str, Any]:
    return {
        "keyId": msg.id,
        "remoteJid": msg.chat_jid,
        "fromMe": msg.from_me,
        "participant": msg.sender_jid if msg.chat_jid.endswith("@g.us") else msg.chat_jid,
        "status": status,
        "pollUpdates": None,
        "instanceId": evo.instance_id,
        "messageId": shapes.db_id(evo.instance_id, msg.id),
    }


def _contact(evo: EvoInstance, jid: str, name: Any) -> dict[str, Any]:
    return {
        "remoteJid": jid,
        "pushName": name,
        "profilePicUrl": None,
        "instanceId": evo.instance_id,
    }

"""A world message as each sandbox dialect's webhook body, to post at zapsync ourselves.

The bytes are what a Node gateway's `JSON.stringify` sends: a lone surrogate or a NUL goes
out as a `\\uXXXX` escape. `deep=` puts a value nested that many levels into the message's
payload (Baileys' context info, WAHA's `_data`), where no parser looks for the message."""

from __future__ import annotations

import json
from typing import Any

from zapsync.sandbox.dialects.evolution import shapes as evolution_shapes
from zapsync.sandbox.dialects.megaapi import shapes as megaapi
from zapsync.sandbox.dialects.waha import shapes as waha
from zapsync.sandbox.world import SimInstance, SimMessage, World

DIALECTS = ("evolution", "waha", "megaapi")
_DEEP = "__nested_deeply__"


def paired_instance(name: str = "vendas") -> SimInstance:
    world = World()
    inst = world.create(name)
    world.start(inst)
    world.scan(inst, phone="5511912340000", push_name="Loja Centro")
    return inst


def message_body(dialect: str, inst: SimInstance, msg: SimMessage, *, deep: int = 0) -> bytes:
    doc: dict[str, Any]
    if dialect == "evolution":
        data = evolution_shapes.message_raw(inst, msg, "5b0e6a52-8f3c-4c1e-9a51-2d1b7c9e0f11")
        if deep:
            data["message"]["messageContextInfo"] = _DEEP
        doc = {"event": "messages.upsert", "instance": inst.name, "data": data}
    elif dialect == "waha":
        payload = waha.wa_message(inst, msg)
        if deep:
            payload["_data"]["deep"] = _DEEP
        doc = {"event": "message", "session": inst.name, "me": waha.me_of(inst), "payload": payload}
    else:
        doc = megaapi.message_payload(inst, msg)
        if deep:
            doc["message"]["messageContextInfo"] = _DEEP
    text = json.dumps(doc)  # ensure_ascii: lone surrogates and NULs become escapes
    return text.replace(json.dumps(_DEEP), nested(deep)).encode()


def nested(depth: int) -> str:
    """`depth` arrays in arrays around an object: JSON that `json.dumps` cannot make."""
    return "[" * depth + '{"x": 1}' + "]" * depth


def read_receipt_body(dialect: str, inst: SimInstance, msg: SimMessage, reader: str) -> bytes:
    """`reader` read our message `msg` (Evolution `messages.update`, WAHA `message.ack`)."""
    if dialect == "evolution":
        data = {
            "keyId": msg.id,
            "remoteJid": msg.chat_jid,
            "fromMe": True,
            "participant": reader,
            "status": "READ",
            "pollUpdates": None,
            "instanceId": "5b0e6a52-8f3c-4c1e-9a51-2d1b7c9e0f11",
            "messageId": f"cm{msg.id.lower()}",
        }
        return json.dumps(
            {"event": "messages.update", "instance": inst.name, "data": data}
        ).encode()
    me = waha.me_of(inst)
    payload = {
        "id": f"true_{waha.waha_jid(msg.chat_jid)}_{msg.id}",
        "from": me["id"] if me else None,
        "to": waha.waha_jid(msg.chat_jid),
        "participant": waha.waha_jid(reader),
        "fromMe": True,
        "ack": 3,
        "ackName": "READ",
    }
    doc = {"event": "message.ack", "session": inst.name, "me": me, "payload": payload}
    return json.dumps(doc).encode()

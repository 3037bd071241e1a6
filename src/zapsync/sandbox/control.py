"""The sandbox's control API: what a test or a demo does to the simulated world
(pair by QR, drop or restore the link, make a zombie, add chats and messages, inject faults,
slow requests down before or after they are handled).

Mounted at `/_sandbox` on every dialect server and on zapsync itself for the built-in
sandbox provider. Never affected by injected faults."""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from zapsync.sandbox.world import Fault, SimInstance, SimMessage, World, new_message_id


class ScanIn(BaseModel):
    phone: str = "5511900000001"
    push_name: str = ""


class FaultIn(BaseModel):
    fault: Fault = Fault.NONE
    latency_ms: int = 0
    hang_seconds: float | None = None
    answer_latency_ms: int = 0


class ChatIn(BaseModel):
    jid: str
    name: str | None = None
    alt_jid: str | None = None


class ContactIn(BaseModel):
    jid: str
    name: str


class MessageIn(BaseModel):
    chat_jid: str
    body: str | None = None
    from_me: bool = False
    id: str | None = None
    type: str = "text"
    timestamp: int | None = None
    push_name: str | None = None
    sender_jid: str | None = None
    chat_alt_jid: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    reaction_to: str | None = None
    # The file the gateway keeps for a media message (base64), which its download route serves.
    media_base64: str | None = None
    notify: bool = True


class AckIn(BaseModel):
    chat_jid: str
    message_id: str
    ack: int


class BulkIn(BaseModel):
    prefix: str = "bulk"
    count: int
    paired: bool = True


class SeedIn(BaseModel):
    chats: int
    groups: int = 0
    empty: int = 0
    messages: int = 0
    status_broadcast: bool = False
    days: int = 10


def describe(inst: SimInstance) -> dict[str, Any]:
    return {
        "name": inst.name,
        "state": inst.state.value,
        "logged_out": inst.logged_out,
        "zombie": inst.zombie,
        "phone": inst.phone,
        "qr_code": inst.qr_code,
        "chats": len(inst.chats),
        "messages": sum(len(c.messages) for c in inst.chats.values()),
        "unread": {c.jid: c.unread for c in inst.chats.values() if c.unread},
        "sent": [{"id": m.id, "to": m.chat_jid, "body": m.body} for m in inst.sent],
        "webhook": inst.webhook.url if inst.webhook else None,
        "media_downloads": inst.media_downloads,
    }


def build_control_router(world: World) -> APIRouter:
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    def instance(name: str) -> SimInstance:
        inst = world.get(name)
        if inst is None:
            raise HTTPException(404, f"no sandbox instance named {name!r}")
        return inst

    @router.get("/instances")
    async def list_instances() -> list[dict[str, Any]]:
        return [describe(i) for i in world.instances.values()]

    @router.get("/instances/{name}")
    async def get_instance(name: str) -> dict[str, Any]:
        return describe(instance(name))

    @router.delete("/instances/{name}")
    async def delete_instance(name: str) -> dict[str, Any]:
        """The instance is deleted at the gateway by someone else (its own UI or API)."""
        described = describe(instance(name))
        world.delete(name)
        return described

    @router.post("/instances/{name}/scan")
    async def scan(name: str, body: ScanIn | None = None) -> dict[str, Any]:
        inst = instance(name)
        body = body or ScanIn()
        try:
            world.scan(inst, body.phone, body.push_name)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return describe(inst)

    @router.post("/instances/{name}/drop")
    async def drop(name: str, silent: bool = True) -> dict[str, Any]:
        inst = instance(name)
        world.drop(inst, silent=silent)
        return describe(inst)

    @router.post("/instances/{name}/restore")
    async def restore(name: str) -> dict[str, Any]:
        inst = instance(name)
        world.start(inst)
        return describe(inst)

    @router.post("/instances/{name}/logout")
    async def logout(name: str) -> dict[str, Any]:
        inst = instance(name)
        world.logout(inst)
        return describe(inst)

    @router.post("/instances/{name}/zombie")
    async def zombie(name: str, on: bool = True) -> dict[str, Any]:
        inst = instance(name)
        world.set_zombie(inst, on)
        return describe(inst)

    @router.post("/instances/{name}/chats")
    async def add_chat(name: str, body: ChatIn) -> dict[str, Any]:
        inst = instance(name)
        world.add_chat(inst, body.jid, body.name, body.alt_jid)
        world.emit(inst, "chat", jid=body.jid, name=body.name)
        return describe(inst)

    @router.post("/instances/{name}/contacts")
    async def save_contact(name: str, body: ContactIn) -> dict[str, Any]:
        inst = instance(name)
        world.save_contact(inst, body.jid, body.name)
        return describe(inst)

    @router.post("/instances/{name}/messages")
    async def add_message(name: str, body: MessageIn) -> dict[str, Any]:
        inst = instance(name)
        fields = body.model_dump(exclude={"notify", "media_base64"}, exclude_none=True)
        fields.setdefault("id", new_message_id())
        fields.setdefault("timestamp", int(time.time()))
        if body.media_base64 is not None:
            # Kept before the message is announced: a webhook's receiver may fetch it at once.
            world.attach_media(inst, fields["id"], base64.b64decode(body.media_base64))
        msg = world.add_message(inst, SimMessage(**fields), notify=body.notify)
        return {"id": msg.id, "chat_jid": msg.chat_jid, "timestamp": msg.timestamp}

    @router.delete("/instances/{name}/messages/{message_id}/media")
    async def forget_media(name: str, message_id: str) -> dict[str, Any]:
        """The gateway no longer has this message's media (expired at WhatsApp's CDN)."""
        world.forget_media(instance(name), message_id)
        return {"ok": True}

    @router.post("/instances/{name}/acks")
    async def ack(name: str, body: AckIn) -> dict[str, Any]:
        inst = instance(name)
        world.set_ack(inst, body.chat_jid, body.message_id, body.ack)
        return {"ok": True}

    @router.post("/instances/{name}/seed")
    async def seed(name: str, body: SeedIn) -> dict[str, Any]:
        inst = instance(name)
        world.seed(inst, **body.model_dump())
        return describe(inst)

    @router.post("/bulk")
    async def bulk(body: BulkIn) -> dict[str, Any]:
        """Create `count` instances named `{prefix}-{n}`, paired and open when `paired`."""
        for n in range(body.count):
            inst = world.create(f"{body.prefix}-{n}")
            if body.paired:
                world.start(inst)
                world.scan(inst, phone=f"55119{n:08d}")
        return {"created": body.count}

    @router.post("/fault")
    async def fault(body: FaultIn) -> dict[str, Any]:
        world.fault = body.fault
        world.latency_ms = body.latency_ms
        world.answer_latency_ms = body.answer_latency_ms
        if body.hang_seconds is not None:
            world.hang_seconds = body.hang_seconds
        return {"fault": world.fault.value, "latency_ms": world.latency_ms}

    return router

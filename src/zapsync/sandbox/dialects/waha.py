"""The sandbox world in WAHA's dialect (`/api/...`, `X-Api-Key`), engine NOWEB.

Shapes follow GATEWAYS.md §2, contracts/waha/ and the real 2024.10.8 captures: error bodies,
201 on POST, `engine:{}` while stopped, 404 "We didn't find a session" for a session that is
not running and 422 "Session status is not as expected" for one in the wrong status. It
behaves like WAHA Plus (any session name) with the newer signed webhooks (`X-Webhook-Hmac`,
HMAC-SHA512 of the exact bytes sent). Subscribing to both `message` and `message.any`
doubles incoming messages, as it does on a real WAHA (issue 1384).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

import segno
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from zapsync.sandbox.dialects import DialectFrontEnd
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import (
    LinkState,
    SimChat,
    SimInstance,
    SimMessage,
    WebhookConfig,
    World,
    WorldEvent,
)

SANDBOX_API_KEY = "sandbox-waha-key"
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

NOT_EXPECTED = "Session status is not as expected. Try again later or restart the session"


class WahaError(Exception):
    """Ends a request with `body` as WAHA renders it for this kind of failure."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status_code = status_code
        self.body = body


def nest_error(status_code: int, message: str) -> WahaError:
    """NestJS's HttpException body, which WAHA uses for most refusals."""
    names = {400: "Bad Request", 404: "Not Found", 422: "Unprocessable Entity"}
    body = {"statusCode": status_code, "message": message, "error": names.get(status_code, "")}
    return WahaError(status_code, body)


class _WahaRoute(APIRoute):
    """Checks `X-Api-Key` and renders WahaError, without touching the app's exception
    handlers (server.py owns the app)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            if request.headers.get("x-api-key") != SANDBOX_API_KEY:
                return JSONResponse({"message": "Unauthorized", "statusCode": 401}, 401)
            try:
                return await handler(request)
            except WahaError as exc:
                return JSONResponse(exc.body, status_code=exc.status_code)

        return guarded


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


# --- the front end --------------------------------------------------------------------


class WahaFrontEnd:
    """Sessions' WAHA-only state (config as sent, status history) plus routes and webhooks."""

    def __init__(self, world: World, sender: WebhookSender) -> None:
        self.world = world
        self.sender = sender
        self.configs: dict[str, dict[str, Any] | None] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}

    # --- sessions -------------------------------------------------------------------

    def session(self, name: str) -> SimInstance:
        inst = self.world.get(name)
        if inst is None:
            raise nest_error(404, "Session not found")
        return inst

    def running(self, name: str, *expected: str) -> SimInstance:
        """A started session in one of the `expected` statuses, else WAHA's refusal."""
        inst = self.world.get(name)
        if inst is None or inst.state is LinkState.STOPPED:
            raise nest_error(
                404,
                f"We didn't find a session with name '{name}'.\n"
                f"Please start it first by using POST /api/sessions/{name}/start request",
            )
        status = STATUS[inst.state]
        if status not in expected:
            body = {"error": NOT_EXPECTED, "session": name, "status": status}
            raise WahaError(422, {**body, "expected": list(expected)})
        return inst

    def render(self, inst: SimInstance, *, with_engine: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": inst.name,
            "status": STATUS[inst.state],
            "config": self.configs.get(inst.name),
            "me": me_of(inst),
        }
        if with_engine:
            out["engine"] = {} if inst.state is LinkState.STOPPED else {"engine": ENGINE}
        return out

    def set_config(self, inst: SimInstance, config: dict[str, Any] | None) -> None:
        self.configs[inst.name] = config
        hooks = self.webhooks(inst.name)
        inst.webhook = None
        if hooks:
            first = hooks[0]
            inst.webhook = WebhookConfig(
                url=str(first.get("url")),
                headers={h["name"]: h["value"] for h in first.get("customHeaders") or []},
                hmac_key=(first.get("hmac") or {}).get("key"),
                events=list(first.get("events") or []),
            )

    def webhooks(self, name: str) -> list[dict[str, Any]]:
        config = self.configs.get(name) or {}
        hooks = config.get("webhooks") or []
        return [h for h in hooks if isinstance(h, dict) and h.get("url")]

    def start(self, inst: SimInstance) -> None:
        if inst.state is not LinkState.STOPPED:
            return
        # WAHA passes through STARTING before a QR or WORKING; the world jumps straight on.
        inst.state = LinkState.STARTING
        self.status_changed(inst, "STARTING")
        self.world.start(inst)

    def stop(self, inst: SimInstance) -> None:
        if inst.state is LinkState.STOPPED:
            return
        inst.state = LinkState.STOPPED
        self.world.emit(inst, "status", state=LinkState.STOPPED.value, reason=None)

    # --- webhooks -------------------------------------------------------------------

    def on_event(self, ev: WorldEvent) -> None:
        inst = ev.instance
        if ev.kind == "status":
            self.status_changed(inst, STATUS[LinkState(ev.data["state"])])
        elif ev.kind == "message":
            msg: SimMessage = ev.data["message"]
            if msg.type == "reaction":
                self.publish(inst, "message.reaction", self.reaction(inst, msg))
                return
            payload = wa_message(inst, msg)
            if not msg.from_me:
                self.publish(inst, "message", payload)
            self.publish(inst, "message.any", payload)
        elif ev.kind == "ack":
            self.publish(inst, "message.ack", self.ack(inst, ev.data))
        elif ev.kind == "edit":
            self.publish(inst, "message.edited", self.edited(inst, ev.data))
        elif ev.kind == "revoke":
            self.publish(inst, "message.revoked", self.revoked(inst, ev.data))

    def status_changed(self, inst: SimInstance, status: str) -> None:
        points = self.history.setdefault(inst.name, [])
        points.append({"status": status, "timestamp": int(time.time() * 1000)})
        del points[:-3]
        payload = {"name": inst.name, "status": status, "statuses": list(points)}
        self.publish(inst, "session.status", payload)

    def reaction(self, inst: SimInstance, msg: SimMessage) -> dict[str, Any]:
        chat = inst.chats.get(msg.chat_jid)
        target = find_message(chat, msg.reaction_to)
        target_id = serialized_id(inst, target) if target else msg.reaction_to
        return {
            **message_base(inst, msg),
            "reaction": {"text": msg.body or "", "messageId": target_id},
        }

    def ack(self, inst: SimInstance, data: dict[str, Any]) -> dict[str, Any]:
        chat_jid = str(data["chat_jid"])
        target = find_message(inst.chats.get(chat_jid), data.get("message_id"))
        if target is None:  # an ack for a message the sandbox never stored: assume ours
            target = SimMessage(
                id=str(data["message_id"]), chat_jid=chat_jid, from_me=True, timestamp=0
            )
        base = message_base(inst, target)
        ack = int(data["ack"])
        return {
            "id": base["id"],
            "from": base["from"],
            "to": base["to"],
            "participant": base["participant"],
            "fromMe": target.from_me,
            "ack": ack,
            "ackName": ACK_NAMES.get(ack, "UNKNOWN"),
        }

    def edited(self, inst: SimInstance, data: dict[str, Any]) -> dict[str, Any]:
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

    def revoked(self, inst: SimInstance, data: dict[str, Any]) -> dict[str, Any]:
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

    def publish(self, inst: SimInstance, event: str, payload: dict[str, Any]) -> None:
        config = self.configs.get(inst.name) or {}
        for hook in self.webhooks(inst.name):
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

    # --- sending --------------------------------------------------------------------

    def send(self, body: dict[str, Any], text: str | None, **extra: Any) -> dict[str, Any]:
        session, chat_id = body.get("session"), body.get("chatId")
        if not isinstance(session, str) or not isinstance(chat_id, str):
            raise nest_error(400, "session and chatId are required")
        inst = self.running(session, "WORKING")
        try:
            msg = self.world.send(inst, world_jid(chat_id), text, **extra)
        except ConnectionError as exc:
            raise WahaError(
                500,
                {
                    "statusCode": 500,
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "exception": {"message": str(exc), "name": "Error"},
                },
            ) from None
        # NOWEB answers with the Baileys WebMessageInfo it just sent.
        return {
            "key": {"remoteJid": msg.chat_jid, "fromMe": True, "id": msg.id},
            "message": raw_content(msg),
            "messageTimestamp": str(msg.timestamp),
            "status": "PENDING",
        }


async def json_body(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise nest_error(400, "Unexpected token in JSON") from None
    if not isinstance(data, dict):
        raise nest_error(400, "Body must be a JSON object")
    return data


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise nest_error(400, f"{name} must be an integer number") from None


def page(items: list[Any], request: Request) -> list[Any]:
    offset = int_param(request, "offset") or 0
    limit = int_param(request, "limit")
    return items[offset : offset + limit if limit is not None else None]


def qr_png(code: str) -> bytes:
    return base64.b64decode(segno.make(code, error="m").png_data_uri(scale=4).split(",", 1)[1])


def build(world: World, sender: WebhookSender) -> DialectFrontEnd:
    front = WahaFrontEnd(world, sender)
    router = APIRouter(prefix="/api", route_class=_WahaRoute, tags=["waha dialect"])

    @router.get("/sessions")
    async def list_sessions(
        show_all: bool = Query(False, alias="all"),
    ) -> list[dict[str, Any]]:
        return [
            front.render(inst)
            for inst in world.instances.values()
            if show_all or inst.state is not LinkState.STOPPED
        ]

    @router.post("/sessions", status_code=201)
    async def create_session(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        name = body.get("name") or f"session_{secrets.token_hex(4)}"
        if not isinstance(name, str):
            raise nest_error(400, "name must be a string")
        if world.get(name) is not None:
            raise nest_error(422, f"Session '{name}' already exists. Use PUT to update it.")
        inst = world.create(name)
        front.set_config(inst, body.get("config"))
        front.history[name] = []
        if body.get("start", True):
            front.start(inst)
        return front.render(inst)

    @router.get("/sessions/{name}")
    async def get_session(name: str) -> dict[str, Any]:
        return front.render(front.session(name))

    @router.get("/sessions/{name}/me")
    async def get_me(name: str) -> Response:
        me = me_of(front.session(name))
        return JSONResponse(me) if me else Response(status_code=200)

    @router.put("/sessions/{name}")
    async def update_session(name: str, request: Request) -> dict[str, Any]:
        inst = front.session(name)
        body = await json_body(request)
        front.set_config(inst, body.get("config"))
        if inst.state is not LinkState.STOPPED:  # WAHA restarts a running session on PUT
            front.stop(inst)
            front.start(inst)
        return front.render(inst)

    @router.post("/sessions/{name}/start", status_code=201)
    async def start_session(name: str) -> dict[str, Any]:
        inst = front.session(name)
        if inst.state is not LinkState.STOPPED:
            raise nest_error(422, f"Session '{name}' is already started.")
        front.start(inst)
        return front.render(inst)

    @router.post("/sessions/{name}/stop", status_code=201)
    async def stop_session(name: str) -> dict[str, Any]:
        inst = front.session(name)
        front.stop(inst)
        return front.render(inst)

    @router.post("/sessions/{name}/restart", status_code=201)
    async def restart_session(name: str) -> dict[str, Any]:
        inst = front.session(name)
        front.stop(inst)
        front.start(inst)
        return front.render(inst)

    @router.post("/sessions/{name}/logout", status_code=201)
    async def logout_session(name: str) -> dict[str, Any]:
        inst = front.session(name)
        was_running = inst.state is not LinkState.STOPPED
        world.logout(inst)
        if was_running:  # WAHA logs out and starts again, on to a fresh QR
            front.start(inst)
        return front.render(inst)

    @router.delete("/sessions/{name}")
    async def delete_session(name: str) -> Response:
        inst = front.session(name)
        if inst.state is not LinkState.STOPPED:
            front.stop(inst)
        world.delete(name)
        front.configs.pop(name, None)
        front.history.pop(name, None)
        return Response(status_code=200)

    @router.get("/{name}/auth/qr")
    async def get_qr(name: str, request: Request) -> Response:
        inst = front.running(name, "SCAN_QR_CODE")
        code = inst.qr_code or ""
        if request.query_params.get("format") == "raw":
            return JSONResponse({"value": code})
        png = qr_png(code)
        if "application/json" in request.headers.get("accept", ""):
            data = base64.b64encode(png).decode()
            return JSONResponse({"mimetype": "image/png", "data": data})
        return Response(png, media_type="image/png")

    @router.post("/{name}/auth/request-code", status_code=201)
    async def request_code(name: str, request: Request) -> dict[str, Any]:
        front.running(name, "SCAN_QR_CODE")
        body = await json_body(request)
        if not body.get("phoneNumber"):
            raise nest_error(400, "phoneNumber should not be empty")
        code = secrets.token_hex(4).upper()
        return {"code": f"{code[:4]}-{code[4:]}"}

    @router.get("/{name}/chats")
    async def list_chats(name: str, request: Request) -> list[dict[str, Any]]:
        inst = front.running(name, "WORKING")
        chats = list(inst.chats.values())
        sort_by = request.query_params.get("sortBy", "messageTimestamp")
        descending = request.query_params.get("sortOrder", "desc") != "asc"
        if sort_by == "id":
            chats.sort(key=lambda c: waha_jid(c.jid), reverse=descending)
        elif sort_by == "name":
            chats.sort(key=lambda c: (c.name or "", c.jid), reverse=descending)
        else:
            chats.sort(key=lambda c: (c.last_timestamp, c.jid), reverse=descending)
        out = []
        for chat in page(chats, request):
            item: dict[str, Any] = {"id": waha_jid(chat.jid), "name": chat.name}
            if chat.messages:
                item["conversationTimestamp"] = chat.last_timestamp
            item["unreadCount"] = chat.unread
            out.append(item)
        return out

    @router.get("/{name}/chats/{chat_id}/messages")
    async def list_messages(name: str, chat_id: str, request: Request) -> list[dict[str, Any]]:
        inst = front.running(name, "WORKING")
        chat = inst.chats.get(world_jid(chat_id))
        if chat is None:
            return []
        gte = int_param(request, "filter.timestamp.gte")
        lte = int_param(request, "filter.timestamp.lte")
        from_me = request.query_params.get("filter.fromMe")
        msgs = [
            m
            for m in reversed(chat.messages)
            if (gte is None or m.timestamp >= gte)
            and (lte is None or m.timestamp <= lte)
            and (from_me is None or m.from_me == (from_me == "true"))
        ]
        if int_param(request, "limit") is None:
            msgs = msgs[:100]  # WAHA's default page
        return [wa_message(inst, m) for m in page(msgs, request)]

    @router.post("/{name}/chats/{chat_id}/messages/read")
    async def read_messages(name: str, chat_id: str) -> dict[str, Any]:
        """Every unread message of the chat is read (the receipts go to the sender)."""
        inst = front.running(name, "WORKING")
        try:
            read = front.world.read(inst, world_jid(chat_id))
        except ConnectionError as exc:
            raise nest_error(500, str(exc) or "Connection Closed") from None
        return {"ids": [serialized_id(inst, m) for m in read]}

    @router.post("/sendText", status_code=201)
    async def send_text(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        return front.send(body, body.get("text"))

    async def send_file(request: Request, kind: str) -> dict[str, Any]:
        body = await json_body(request)
        file = body.get("file")
        if not isinstance(file, dict) or not file.get("url"):
            raise nest_error(400, "file.url should not be empty")
        return front.send(
            body,
            body.get("caption"),
            type=kind,
            media_url=file["url"],
            mime_type=file.get("mimetype"),
            file_name=file.get("filename"),
        )

    @router.post("/sendImage", status_code=201)
    async def send_image(request: Request) -> dict[str, Any]:
        return await send_file(request, "image")

    @router.post("/sendFile", status_code=201)
    async def send_document(request: Request) -> dict[str, Any]:
        return await send_file(request, "document")

    return DialectFrontEnd(name="waha", router=router, on_event=front.on_event)

"""The sandbox world in MegaAPI's dialect (`/rest/...`, `Authorization: Bearer`).

MegaAPI is hosted: the provider provisions instances and hands out an account token. The
sandbox stands in for that with MegaAPI's own `POST /rest/instance/init?instance_key=K`
(the route its self-hosted ancestor and client code call), so a test or a demo creates an
instance over HTTP before zapsync attaches to it. Every other route answers 404
`{error:true, message:"instance not found"}` for a key that was never created.

Shapes follow GATEWAYS.md §3 and contracts/megaapi/. Where MegaAPI documents nothing the
sandbox keeps to what its clients read, and says so:
- `qrcode_base64` also carries the raw QR string in `code` (MegaAPI only sends the PNG).
- a `messageType:"qrcode"` webhook announces a new QR (no capture of MegaAPI's exists).
- acks, edits, deletions, contacts and chat events send no webhook: none is documented.
"""

from __future__ import annotations

import json
import secrets
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
    SimInstance,
    SimMessage,
    WebhookConfig,
    World,
    WorldEvent,
)

SANDBOX_TOKEN = "sandbox-megaapi-token"

MEDIA_TYPES = ("image", "video", "audio", "ptt", "ptv", "document")


class MegaApiError(Exception):
    """Ends a request with MegaAPI's error body `{error:true, message}`."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class _MegaApiRoute(APIRoute):
    """Renders a MegaApiError raised anywhere in a route as MegaAPI's error body, without
    touching the app's exception handlers (server.py owns the app)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except MegaApiError as exc:
                body = {"error": True, "message": exc.message}
                return JSONResponse(body, status_code=exc.status_code)

        return guarded


def user_jid(phone: str | None) -> str | None:
    return f"{phone}@s.whatsapp.net" if phone else None


def recipient_jid(to: str) -> str:
    """MegaAPI takes bare digits for people and a full `...@g.us` JID for groups."""
    return to if "@" in to else f"{to}@s.whatsapp.net"


def qr_data_uri(code: str) -> str:
    return str(segno.make(code, error="m").png_data_uri(scale=4))


# --- webhook payloads --------------------------------------------------------------


def _media(msg: SimMessage) -> dict[str, Any]:
    media: dict[str, Any] = {"url": msg.media_url or "", "mimetype": msg.mime_type or ""}
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


# --- front end ---------------------------------------------------------------------


def build(world: World, sender: WebhookSender) -> DialectFrontEnd:
    router = APIRouter(prefix="/rest", tags=["megaapi dialect"], route_class=_MegaApiRoute)
    # MegaAPI can keep a webhook URL while it is switched off; SimInstance has no such flag.
    disabled: set[str] = set()

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        valid = secrets.compare_digest(token.encode(), SANDBOX_TOKEN.encode())
        if scheme.lower() != "bearer" or not valid:
            raise MegaApiError(401, "Unauthorized: invalid or missing bearer token")

    def instance(request: Request, key: str) -> SimInstance:
        authorize(request)
        inst = world.get(key)
        if inst is None:
            raise MegaApiError(404, "instance not found")
        return inst

    async def message_data(request: Request, *, required: bool = True) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise MegaApiError(400, "body is not valid JSON") from None
        data = body.get("messageData") if isinstance(body, dict) else None
        if isinstance(data, dict):
            return data
        if required:
            raise MegaApiError(400, "messageData is required")
        return {}

    def require_str(data: dict[str, Any], field: str) -> str:
        value = data.get(field)
        if not isinstance(value, str) or not value:
            raise MegaApiError(400, f"messageData.{field} is required")
        return value

    def webhook_data(inst: SimInstance) -> dict[str, Any]:
        return {
            "webhookUrl": inst.webhook.url if inst.webhook else "",
            "webhookEnabled": inst.webhook is not None and inst.name not in disabled,
        }

    def require_logged_out(inst: SimInstance) -> None:
        """QR and pairing code exist only for an instance with no paired phone; asking
        for one starts the socket, as the hosted service does."""
        if not inst.logged_out:
            raise MegaApiError(403, "User is already logged in")
        if inst.state is not LinkState.QR:
            world.start(inst)

    def configure_webhook(inst: SimInstance, url: str, enabled: bool) -> None:
        # The URL is kept byte for byte: zapsync's secret rides in its query string.
        inst.webhook = WebhookConfig(url=url)
        if enabled:
            disabled.discard(inst.name)
        else:
            disabled.add(inst.name)

    def sent_body(msg: SimMessage) -> dict[str, Any]:
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

    def send(inst: SimInstance, to: str, body: str | None, **extra: Any) -> JSONResponse:
        if inst.state is not LinkState.OPEN:
            raise MegaApiError(401, "Instance not logged in")
        try:
            msg = world.send(inst, recipient_jid(to), body, **extra)
        except ConnectionError as exc:
            # A zombie socket: the status says connected but Baileys cannot write.
            raise MegaApiError(500, str(exc)) from None
        return JSONResponse(sent_body(msg))

    @router.post("/instance/init")
    async def init(request: Request, instance_key: str | None = None) -> JSONResponse:
        authorize(request)
        key = instance_key or f"megaapi-{secrets.token_hex(6)}"
        inst = world.get(key) or world.create(key)
        # Clients often pass the webhook along with init; the body is optional.
        data = await message_data(request, required=False)
        url = data.get("webhookUrl")
        if isinstance(url, str) and url:
            configure_webhook(inst, url, data.get("webhookEnabled", True) is not False)
        if inst.state is LinkState.STOPPED:
            world.start(inst)
        return JSONResponse({"error": False, "message": "Instance created", "instance_key": key})

    @router.get("/instance/qrcode_base64/{key}")
    async def qrcode_base64(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        require_logged_out(inst)
        code = inst.qr_code or ""
        return JSONResponse(
            {"error": False, "message": "Qrcode fetched", "qrcode": qr_data_uri(code), "code": code}
        )

    @router.get("/instance/pairingCode/{key}")
    async def pairing_code(
        request: Request, key: str, phone_number: str = Query("", alias="phoneNumber")
    ) -> JSONResponse:
        inst = instance(request, key)
        digits = "".join(ch for ch in phone_number if ch.isdigit())
        if not digits:
            raise MegaApiError(400, "phoneNumber is required")
        require_logged_out(inst)
        code = secrets.token_hex(4).upper()
        return JSONResponse(
            {
                "error": False,
                "message": "Pairing code generated",
                "pairingCode": f"{code[:4]}-{code[4:]}",
            }
        )

    @router.delete("/instance/{key}/logout")
    async def logout(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        world.logout(inst)
        return JSONResponse({"error": False, "message": "Instance logged out"})

    @router.delete("/instance/{key}/restart")
    async def restart(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        # A restart drops whatever socket there was (a zombie one included) and opens a
        # fresh one: straight to connected when a phone is paired, else to a new QR.
        world.set_zombie(inst, False)
        inst.state = LinkState.STOPPED
        world.start(inst)
        return JSONResponse({"error": False, "message": "Instance restarted"})

    @router.get("/instance/{key}")
    async def status(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        body: dict[str, Any] = {"key": inst.name, "status": "disconnected"}
        if inst.state is LinkState.OPEN:
            body["status"] = "connected"
            body["user"] = {"id": user_jid(inst.phone), "name": inst.push_name}
        return JSONResponse({"error": False, "message": "Instance data fetched", "instance": body})

    @router.post("/webhook/{key}/configWebhook")
    async def config_webhook(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        data = await message_data(request)
        enabled = data.get("webhookEnabled", True)
        if not isinstance(enabled, bool):
            raise MegaApiError(400, "messageData.webhookEnabled must be a boolean")
        url = data.get("webhookUrl")
        if not isinstance(url, str) or (enabled and not url):
            raise MegaApiError(400, "messageData.webhookUrl is required")
        configure_webhook(inst, url, enabled)
        return JSONResponse(
            {"error": False, "message": "Webhook configured", "webhookData": webhook_data(inst)}
        )

    @router.get("/webhook/{key}")
    async def get_webhook(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        return JSONResponse(
            {"error": False, "message": "Webhook status fetched", "webhookData": webhook_data(inst)}
        )

    @router.post("/sendMessage/{key}/text")
    async def send_text(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        data = await message_data(request)
        return send(inst, require_str(data, "to"), require_str(data, "text"))

    @router.post("/sendMessage/{key}/mediaUrl")
    async def send_media_url(request: Request, key: str) -> JSONResponse:
        inst = instance(request, key)
        data = await message_data(request)
        to, url, kind = require_str(data, "to"), require_str(data, "url"), require_str(data, "type")
        if kind not in MEDIA_TYPES:
            raise MegaApiError(400, f"messageData.type must be one of {', '.join(MEDIA_TYPES)}")
        return send(
            inst,
            to,
            data.get("caption") or None,
            type="video" if kind == "ptv" else kind,
            media_url=url,
            mime_type=data.get("mimeType") or None,
            file_name=data.get("fileName") or None,
        )

    def on_event(event: WorldEvent) -> None:
        inst = event.instance
        if inst.webhook is None or inst.name in disabled:
            return
        payload: dict[str, Any] | None = None
        if event.kind == "message":
            payload = message_payload(inst, event.data["message"])
        elif event.kind == "status":
            state = event.data.get("state")
            if state == LinkState.OPEN.value:
                payload = connection_payload(inst, connected=True)
            elif state == LinkState.STOPPED.value:
                payload = connection_payload(inst, connected=False)
        elif event.kind == "qr":
            payload = qr_payload(inst, event.data["code"])
        if payload is not None:
            # MegaAPI sends no signature and no custom header: only the URL identifies us.
            sender.post(inst.webhook.url, payload)

    return DialectFrontEnd(name="megaapi", router=router, on_event=on_event)

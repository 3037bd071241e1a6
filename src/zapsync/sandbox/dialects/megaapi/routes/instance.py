"""`/rest/instance/...`: create (the sandbox's stand-in for provisioning), QR, pairing code,
status, restart, logout."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.megaapi.dialect import Dialect
from zapsync.sandbox.dialects.megaapi.http import MegaApiError, MegaApiRoute, message_data
from zapsync.sandbox.dialects.megaapi.shapes import media_key_of, qr_data_uri, user_jid
from zapsync.sandbox.world import LinkState

router = APIRouter(route_class=MegaApiRoute)


@router.post("/instance/init")
async def init(request: Request, megaapi: Dialect, instance_key: str | None = None) -> JSONResponse:
    megaapi.authorize(request)
    world = megaapi.world
    key = instance_key or f"megaapi-{secrets.token_hex(6)}"
    inst = world.get(key) or world.create(key)
    # Clients often pass the webhook along with init; the body is optional.
    data = await message_data(request, required=False)
    url = data.get("webhookUrl")
    if isinstance(url, str) and url:
        megaapi.configure_webhook(inst, url, data.get("webhookEnabled", True) is not False)
    if inst.state is LinkState.STOPPED:
        world.start(inst)
    return JSONResponse({"error": False, "message": "Instance created", "instance_key": key})


@router.get("/instance/qrcode_base64/{key}")
async def qrcode_base64(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    megaapi.require_logged_out(inst)
    code = inst.qr_code or ""
    return JSONResponse(
        {"error": False, "message": "Qrcode fetched", "qrcode": qr_data_uri(code), "code": code}
    )


@router.get("/instance/pairingCode/{key}")
async def pairing_code(
    request: Request,
    key: str,
    megaapi: Dialect,
    phone_number: str = Query("", alias="phoneNumber"),
) -> JSONResponse:
    inst = megaapi.instance(request, key)
    digits = "".join(ch for ch in phone_number if ch.isdigit())
    if not digits:
        raise MegaApiError(400, "phoneNumber is required")
    megaapi.require_logged_out(inst)
    code = secrets.token_hex(4).upper()
    return JSONResponse(
        {
            "error": False,
            "message": "Pairing code generated",
            "pairingCode": f"{code[:4]}-{code[4:]}",
        }
    )


@router.delete("/instance/{key}/logout")
async def logout(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    megaapi.world.logout(inst)
    return JSONResponse({"error": False, "message": "Instance logged out"})


@router.delete("/instance/{key}/restart")
async def restart(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    # A restart drops whatever socket there was (a zombie one included) and opens a
    # fresh one: straight to connected when a phone is paired, else to a new QR.
    megaapi.world.set_zombie(inst, False)
    inst.state = LinkState.STOPPED
    megaapi.world.start(inst)
    return JSONResponse({"error": False, "message": "Instance restarted"})


@router.get("/instance/{key}")
async def status(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    body: dict[str, Any] = {"key": inst.name, "status": "disconnected"}
    if inst.state is LinkState.OPEN:
        body["status"] = "connected"
        body["user"] = {"id": user_jid(inst.phone), "name": inst.push_name}
    return JSONResponse({"error": False, "message": "Instance data fetched", "instance": body})


@router.post("/instance/downloadMediaMessage/{key}")
async def download_media(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    """`{messageKeys:{mediaKey, directPath, url, mimetype, messageType}}` -> the decrypted
    file as a `data:` URL in `data`. Keys that open no file the gateway can still get are a
    400 (the CDN dropped it, or the keys are wrong)."""
    inst = megaapi.instance(request, key)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise MegaApiError(400, "body is not valid JSON") from None
    keys = body.get("messageKeys") if isinstance(body, dict) else None
    media_key = keys.get("mediaKey") if isinstance(keys, dict) else None
    if not isinstance(media_key, str) or not media_key:
        raise MegaApiError(400, "messageKeys.mediaKey is required")
    msg = next(
        (m for c in inst.chats.values() for m in c.messages if media_key_of(m) == media_key),
        None,
    )
    found = megaapi.world.download_media(inst, msg.id) if msg is not None else None
    if found is None:
        raise MegaApiError(400, "Failed to download media: the media is no longer available")
    msg, data = found
    mime = msg.mime_type or "application/octet-stream"
    encoded = base64.b64encode(data).decode("ascii")
    return JSONResponse(
        {"error": False, "message": "Media downloaded", "data": f"data:{mime};base64,{encoded}"}
    )

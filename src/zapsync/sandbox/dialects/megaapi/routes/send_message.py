"""`/rest/sendMessage/...`: text, and media by URL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.megaapi.dialect import Dialect
from zapsync.sandbox.dialects.megaapi.http import (
    MegaApiError,
    MegaApiRoute,
    message_data,
    require_str,
)

MEDIA_TYPES = ("image", "video", "audio", "ptt", "ptv", "document")

router = APIRouter(route_class=MegaApiRoute)


@router.post("/sendMessage/{key}/text")
async def send_text(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    data = await message_data(request)
    return megaapi.send(inst, require_str(data, "to"), require_str(data, "text"))


@router.post("/sendMessage/{key}/mediaUrl")
async def send_media_url(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    data = await message_data(request)
    to, url, kind = require_str(data, "to"), require_str(data, "url"), require_str(data, "type")
    if kind not in MEDIA_TYPES:
        raise MegaApiError(400, f"messageData.type must be one of {', '.join(MEDIA_TYPES)}")
    return megaapi.send(
        inst,
        to,
        data.get("caption") or None,
        type="video" if kind == "ptv" else kind,
        media_url=url,
        mime_type=data.get("mimeType") or None,
        file_name=data.get("fileName") or None,
    )

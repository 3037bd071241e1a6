"""`/api/send...`: text, and files by URL (images and documents)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from zapsync.sandbox.dialects.waha.dialect import Dialect, WahaDialect
from zapsync.sandbox.dialects.waha.http import WahaRoute, json_body, nest_error

router = APIRouter(route_class=WahaRoute)


@router.post("/sendText", status_code=201)
async def send_text(request: Request, waha: Dialect) -> dict[str, Any]:
    body = await json_body(request)
    return waha.send(body, body.get("text"))


async def send_file(request: Request, waha: WahaDialect, kind: str) -> dict[str, Any]:
    body = await json_body(request)
    file = body.get("file")
    if not isinstance(file, dict) or not file.get("url"):
        raise nest_error(400, "file.url should not be empty")
    return waha.send(
        body,
        body.get("caption"),
        type=kind,
        media_url=file["url"],
        mime_type=file.get("mimetype"),
        file_name=file.get("filename"),
    )


@router.post("/sendImage", status_code=201)
async def send_image(request: Request, waha: Dialect) -> dict[str, Any]:
    return await send_file(request, waha, "image")


@router.post("/sendFile", status_code=201)
async def send_document(request: Request, waha: Dialect) -> dict[str, Any]:
    return await send_file(request, waha, "document")

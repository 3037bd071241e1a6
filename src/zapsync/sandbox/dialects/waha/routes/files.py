"""`/api/files/{session}/{file}`: the media WAHA downloaded for a message, served behind its
API key and named by the message's id (`<id>.<ext>`), as in a webhook's `media.url`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from zapsync.sandbox.dialects.waha.dialect import Dialect
from zapsync.sandbox.dialects.waha.http import WahaRoute, nest_error
from zapsync.sandbox.dialects.waha.shapes import serialized_id

router = APIRouter(route_class=WahaRoute)


@router.get("/files/{name}/{file_name}")
async def get_file(name: str, file_name: str, waha: Dialect) -> Response:
    inst = waha.session(name)
    stem = file_name.rsplit(".", 1)[0]
    ids = [
        m.id
        for c in inst.chats.values()
        for m in c.messages
        if stem in (m.id, serialized_id(inst, m))
    ]
    found = waha.world.download_media(inst, ids[0]) if ids else None
    if found is None:
        # WAHA's static files: a file it no longer keeps is a plain 404.
        raise nest_error(404, f"Cannot GET /api/files/{name}/{file_name}")
    msg, data = found
    return Response(data, media_type=msg.mime_type or "application/octet-stream")

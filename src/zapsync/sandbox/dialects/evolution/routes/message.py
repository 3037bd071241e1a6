"""`/message/...`: sendText and sendMedia (whose images Baileys must be able to decode)."""

from __future__ import annotations

import base64

import httpx
from fastapi import APIRouter, Request, Response

from zapsync.sandbox.dialects.evolution import shapes
from zapsync.sandbox.dialects.evolution.dialect import Dialect
from zapsync.sandbox.dialects.evolution.http import EvoError, EvoJSON, EvoRoute, read_body

# sendMedia `mediatype` -> world message type (a round video note is still a video).
_MEDIA_TYPES = {
    "image": "image",
    "video": "video",
    "document": "document",
    "audio": "audio",
    "ptv": "video",
}
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
_MAX_MEDIA_BYTES = 5 * 1024 * 1024

router = APIRouter(route_class=EvoRoute)


def _is_image(data: bytes) -> bool:
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return webp or data.startswith(_IMAGE_MAGIC)


async def _media_bytes(media: str) -> bytes | None:
    """`media` as Baileys reads it: downloaded when a URL, decoded when base64. None when the
    sandbox cannot fetch it (an example host in a test): the image is then taken on trust."""
    if media.startswith(("http://", "https://")):
        try:
            async with (
                httpx.AsyncClient(timeout=5.0, follow_redirects=True) as client,
                client.stream("GET", media) as resp,
            ):
                if resp.status_code >= 400:
                    return None
                data = b""
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > _MAX_MEDIA_BYTES:
                        break
                return data
        except httpx.HTTPError:
            return None
    encoded = media.split(",", 1)[1] if media.startswith("data:") else media
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        return b""


@router.post("/message/sendText/{name}")
async def send_text(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    body = await read_body(request)
    number, text = body.get("number"), body.get("text")
    if not isinstance(number, str | int) or not str(number).strip():
        raise EvoError(400, ['instance requires property "number"'])
    if not isinstance(text, str) or not text:
        raise EvoError(400, ['instance requires property "text"'])
    msg = evo.send(inst, shapes.create_jid(str(number)), text)
    return EvoJSON(
        shapes.message_raw(inst, msg, row.instance_id, status="PENDING"), status_code=201
    )


@router.post("/message/sendMedia/{name}")
async def send_media(request: Request, name: str, evo: Dialect) -> Response:
    inst, row = evo.instance(request, name)
    body = await read_body(request)
    number, media = body.get("number"), body.get("media")
    kind = _MEDIA_TYPES.get(str(body.get("mediatype")))
    if not isinstance(number, str | int) or not str(number).strip():
        raise EvoError(400, ['instance requires property "number"'])
    if kind is None:
        raise EvoError(400, ["mediatype must be one of image, video, document, audio, ptv"])
    if not isinstance(media, str) or not media:
        raise EvoError(400, ['instance requires property "media"'])
    if kind == "image":
        image = await _media_bytes(media)
        if image is not None and not _is_image(image):
            # sharp's error, thrown while Baileys makes the thumbnail: a 500 like all.
            raise EvoError(500, "Input buffer contains unsupported image format")
    msg = evo.send(
        inst,
        shapes.create_jid(str(number)),
        body.get("caption") if isinstance(body.get("caption"), str) else None,
        type=kind,
        media_url=media if media.startswith(("http://", "https://")) else None,
        mime_type=body.get("mimetype") if isinstance(body.get("mimetype"), str) else None,
        file_name=body.get("fileName") if isinstance(body.get("fileName"), str) else None,
    )
    return EvoJSON(
        shapes.message_raw(inst, msg, row.instance_id, status="PENDING"), status_code=201
    )

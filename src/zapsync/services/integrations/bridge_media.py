"""The file a mirrored WhatsApp message carries, for Chatwoot: a file zapsync stores (an
agent's upload) is read from disk; another URL (what a gateway gave) is fetched through the
guarded HTTP client, bounded in size and time. A file that cannot be had is left out, and the
message is mirrored with a line that names it instead (never lost, never blocking the rest)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import structlog

from zapsync.connectors.chatwoot.client import Attachment
from zapsync.runtime.context import AppContext
from zapsync.runtime.urls import own_media_name
from zapsync.services import media
from zapsync.services.errors import ServiceError
from zapsync.store.types import AnyRow

log = structlog.get_logger(__name__)

MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})


class _TooLarge(Exception):
    pass


async def attachment_of(ctx: AppContext, message: AnyRow) -> Attachment | None:
    url = message.media_url
    if not url or message.type not in MEDIA_TYPES:
        return None
    limit = media.max_bytes(ctx.settings)
    name = own_media_name(ctx.settings, url)
    try:
        if name is not None:
            data = await asyncio.to_thread(_read, media.path_of(ctx.settings, name), limit)
        else:
            data = await _fetch(ctx, url, limit)
    except (ServiceError, OSError, httpx.HTTPError, _TooLarge) as exc:
        log.info("media left out of a mirrored message", message_id=message.id,
                 reason=f"{type(exc).__name__}: {exc}"[:200])  # fmt: skip
        return None
    mime = message.mime_type or media.guess_mime(message.file_name) or "application/octet-stream"
    file_name = message.file_name or f"{message.type}-{message.id}{_suffix(mime)}"
    return Attachment(file_name, data, mime)


def _read(path: Path, limit: int) -> bytes:
    if path.stat().st_size > limit:
        raise _TooLarge(f"{path.stat().st_size} bytes")
    return path.read_bytes()


async def _fetch(ctx: AppContext, url: str, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async with ctx.gateways.client.stream(
        "GET", url, timeout=ctx.settings.chatwoot_timeout, follow_redirects=False
    ) as resp:
        resp.raise_for_status()
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise _TooLarge(f"more than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _suffix(mime: str) -> str:
    import mimetypes

    return mimetypes.guess_extension(mime) or ""

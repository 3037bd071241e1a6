"""Inbound media a browser can open: the file of a customer's media message, fetched through
its gateway on first view (the URL a gateway reports is WhatsApp's encrypted CDN, or a WAHA
file behind its API key), kept under `data_dir/media/inbound/`, and served from there after.

The cache is the file system: a message's file is named by its organization, its id and a
digest of its gateway key, so no column records it. A download is written to a temporary
file and renamed into place, so a file is there whole or not at all; concurrent first views
in one process wait on one lock per file and fetch once (across processes the rename keeps
it whole; both may fetch). Bounded by `ZAPSYNC_INBOUND_MEDIA_MAX_MB`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.providers.base import (
    Gateway,
    GatewayError,
    GatewayUnavailable,
    MediaGone,
    MediaRef,
    MediaSource,
    MediaTooLarge,
)
from zapsync.runtime.context import AppContext
from zapsync.services.errors import Gone, Invalid, NotFound, TooLarge
from zapsync.services.media import media_dir, normalize_mime
from zapsync.services.sessions.gateway import gateway_for, release
from zapsync.store.models import Message, Session

VIEWABLE_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_OCTET = "application/octet-stream"


class MediaUnreachable(Invalid):
    """The gateway could not be asked now (down, slow, or it refused); the detail says why.
    Nothing was kept: the next view asks again."""


@dataclass(frozen=True, slots=True)
class InboundFile:
    path: Path
    mime_type: str
    file_name: str | None


def max_bytes(settings_mb: float) -> int:
    return int(settings_mb * 1024 * 1024)


def inbound_dir(ctx: AppContext) -> Path:
    return media_dir(ctx.settings) / "inbound"


def signed_name(message_id: int) -> str:
    """What a view URL's signature covers: never a valid upload name (services/media.py), so
    neither kind of URL opens the other."""
    return f"inbound-{message_id}"


def is_viewable(direction: str, type_: str, deleted: bool) -> bool:
    """Whether a message has inbound media zapsync fetches for the browser."""
    return direction == "in" and type_ in VIEWABLE_TYPES and not deleted


def _stem(message: Message) -> str:
    key = f"{message.session_id}:{message.provider_message_id}".encode()
    return f"{message.organization_id}-{message.id}-{hashlib.sha256(key).hexdigest()[:16]}"


def _extension(mime: str) -> str:
    ext = mimetypes.guess_extension(mime) or ".bin"
    return ext if mime != _OCTET else ".bin"


def _cached(folder: Path, stem: str, mime: str | None) -> Path | None:
    if mime is not None:
        path = folder / f"{stem}{_extension(mime)}"
        return path if path.is_file() else None
    # A message stored without a type is named by what the gateway said when it was fetched.
    return next((p for p in folder.glob(f"{stem}.*") if not p.name.startswith(".")), None)


def touch_viewed(path: Path) -> None:
    """Mark a kept file as just viewed: its modification time is its last view, which the
    nightly cleanup reads (services/inbound_media_cleanup.py)."""
    # Removed meanwhile: the file already open is still served.
    with contextlib.suppress(OSError):
        os.utime(path)


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    part = folder / f".{name}.{secrets.token_hex(4)}.part"
    try:
        part.write_bytes(data)
        os.replace(part, target)  # atomic: a reader sees the whole file or none
    finally:
        part.unlink(missing_ok=True)
    return target


_locks: dict[str, asyncio.Lock] = {}
_waiting: dict[str, int] = {}


@asynccontextmanager
async def _one_fetch(stem: str) -> AsyncIterator[None]:
    """One download per file at a time in this process; the lock is dropped with its last user."""
    lock = _locks.setdefault(stem, asyncio.Lock())
    _waiting[stem] = _waiting.get(stem, 0) + 1
    try:
        async with lock:
            yield
    finally:
        _waiting[stem] -= 1
        if not _waiting[stem]:
            del _waiting[stem]
            _locks.pop(stem, None)


def _ref(message: Message, chat_jid: str | None) -> MediaRef:
    return MediaRef(
        provider_message_id=message.provider_message_id,
        chat_jid=message.gateway_chat_jid or chat_jid,
        from_me=message.direction == "out",
        type=message.type,
        media_url=message.media_url,
        mime_type=message.mime_type,
        media_key=message.media_key,
    )


async def open_inbound_media(
    ctx: AppContext, db: AsyncSession, message_id: int, *, organization_id: int | None
) -> InboundFile:
    """The file of inbound message `message_id`, fetched from its gateway when not kept yet.

    `organization_id` is the caller's (a token); None when a signed URL already proved zapsync
    issued the link. NotFound for another organization's message or one without inbound
    media; Gone when the gateway no longer has the file; TooLarge past the limit."""
    message = await db.get(Message, message_id)
    if (
        message is None
        or (organization_id is not None and message.organization_id != organization_id)
        or not is_viewable(message.direction, message.type, message.deleted_at is not None)
    ):
        raise NotFound(f"message {message_id} has no inbound media")
    folder = inbound_dir(ctx)
    stem = _stem(message)
    known_mime = normalize_mime(message.mime_type)
    file_name = message.file_name
    path = _cached(folder, stem, known_mime)
    if path is not None:
        touch_viewed(path)
        return InboundFile(path, known_mime or _mime_of(path), file_name)
    session = await db.get(Session, message.session_id)
    if session is None or session.archived_at is not None:
        raise Gone("the connection this message came through was deleted; its media is gone")
    gateway = gateway_for(ctx, session)
    ref = _ref(message, None)
    await release(db)  # no transaction held while the gateway answers
    try:
        async with _one_fetch(stem):
            path = _cached(folder, stem, known_mime)
            if path is not None:  # another view fetched it meanwhile
                return InboundFile(path, known_mime or _mime_of(path), file_name)
            return await _fetch(ctx, gateway, ref, folder, stem, known_mime, file_name)
    finally:
        await gateway.aclose()


async def _fetch(
    ctx: AppContext,
    gateway: Gateway,
    ref: MediaRef,
    folder: Path,
    stem: str,
    known_mime: str | None,
    file_name: str | None,
) -> InboundFile:
    limit_mb = ctx.settings.inbound_media_max_mb
    if not isinstance(gateway, MediaSource):
        raise Gone("this message's gateway cannot hand its media over")
    try:
        got = await gateway.download_media(ref, max_bytes(limit_mb))
    except MediaGone as exc:
        raise Gone(f"the gateway no longer has this media: {exc.reason}") from None
    except MediaTooLarge:
        raise TooLarge(
            f"the media is larger than the {limit_mb:g} MB limit (ZAPSYNC_INBOUND_MEDIA_MAX_MB)"
        ) from None
    except GatewayUnavailable as exc:
        detail = f"the gateway could not hand the media over now: {exc.reason}"
        raise MediaUnreachable(detail) from None
    except GatewayError as exc:
        detail = f"the gateway refused to hand the media over: {exc.reason}"
        raise MediaUnreachable(detail) from None
    mime = known_mime or normalize_mime(got.mime_type) or _OCTET
    path = await asyncio.to_thread(_write, folder, f"{stem}{_extension(mime)}", got.data)
    return InboundFile(path, mime, file_name or got.file_name)


def _mime_of(path: Path) -> str:
    return normalize_mime(mimetypes.guess_type(path.name)[0]) or _OCTET

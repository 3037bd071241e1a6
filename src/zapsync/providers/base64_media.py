"""Media a gateway answers as base64 in JSON (Evolution's `base64`, MegaAPI's `data`, which
may be a `data:` URL): decoded only after its length says it fits the caller's limit."""

from __future__ import annotations

import base64
import binascii

from zapsync.providers.base import DownloadedMedia, GatewayUnavailable, MediaTooLarge


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def decode_media(
    value: object, max_bytes: int, *, mime_type: str | None = None, file_name: str | None = None
) -> DownloadedMedia:
    """`value` (base64, or `data:<mime>;base64,<...>`) as bytes of at most `max_bytes`."""
    if not isinstance(value, str) or not value:
        raise GatewayUnavailable("the gateway sent no media data")
    text = value
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        declared = header.removeprefix("data:").split(";", 1)[0]
        mime_type = mime_type or declared or None
    # Four base64 characters are three bytes: refused before a byte is decoded.
    if (len(text) - text.count("=")) * 3 // 4 > max_bytes:
        raise MediaTooLarge(f"the media is larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        raise GatewayUnavailable("the gateway sent media data that is not base64") from None
    if len(data) > max_bytes:
        raise MediaTooLarge(f"the media is larger than {max_bytes} bytes")
    if not data:
        raise GatewayUnavailable("the gateway sent empty media data")
    return DownloadedMedia(data, mime_type, file_name)

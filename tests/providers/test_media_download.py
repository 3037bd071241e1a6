"""What the adapters read of a media download without a gateway: base64 (plain or a `data:`
URL) decoded only when it fits, and WAHA's file URLs taken onto the configured base URL so
its API key never travels to another host."""

from __future__ import annotations

import base64

import pytest

from zapsync.providers.base import MediaGone, MediaTooLarge
from zapsync.providers.base64_media import decode_media
from zapsync.providers.waha.client import WahaGateway


def test_a_data_url_gives_its_bytes_and_its_type() -> None:
    encoded = base64.b64encode(b"OggS-voice").decode()
    got = decode_media(f"data:audio/ogg; codecs=opus;base64,{encoded}", 100)
    assert got.data == b"OggS-voice"
    assert got.mime_type == "audio/ogg"


def test_base64_past_the_limit_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(MediaTooLarge):
        decode_media(base64.b64encode(b"x" * 2048).decode(), 1024)


async def test_waha_files_are_fetched_from_the_configured_base_url() -> None:
    gateway = WahaGateway("http://waha.internal:3000/", "key", "default")
    try:
        named = "http://localhost:3000/api/files/default/false_55@c.us_AB.jpeg"
        assert gateway.file_url(named) == (
            "http://waha.internal:3000/api/files/default/false_55@c.us_AB.jpeg"
        )
        with pytest.raises(MediaGone):
            gateway.file_url("https://elsewhere.example/steal-the-key.jpeg")
    finally:
        await gateway.aclose()

"""Where an uploaded file is served: the signed URL the gateway fetches it from
(`GET /api/v1/media/{name}?sig=…`, routes/media.py). Built here, beside the route it names;
the media service is handed the builder and knows no URL."""

from __future__ import annotations

from collections.abc import Callable

from zapsync.services.media import sign
from zapsync.settings import Settings


def signed_url(
    settings: Settings, secret_key: str, name: str, *, issued_at: int | None = None
) -> str:
    sig = sign(secret_key, name, issued_at=issued_at)
    return f"{settings.public_url}/api/v1/media/{name}?sig={sig}"


def url_builder(settings: Settings) -> Callable[[str], str]:
    """A stored file's name -> the URL a gateway fetches it from, signed now."""
    secret_key = settings.resolved_secret_key()
    return lambda name: signed_url(settings, secret_key, name)

"""Where an uploaded file is served: the signed URL the gateway fetches it from
(`GET /api/v1/media/{name}?sig=…`, routes/media.py), and where the browser opens an inbound
message's media (`GET /api/v1/messages/{id}/media?sig=…`). Built here, beside the routes they
name; the media services are handed the builder and know no URL."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from zapsync.services.inbound_media import is_viewable, signed_name
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


def inbound_media_url(secret_key: str, message_id: int, *, issued_at: int | None = None) -> str:
    """Where the browser opens an inbound message's media (`routes/inbound_media.py`): a path
    on the page's own origin, signed, since an `<img>` carries no token."""
    sig = sign(secret_key, signed_name(message_id), issued_at=issued_at)
    return f"/api/v1/messages/{message_id}/media?sig={sig}"


def inbound_url_of(secret_key: str, message: Mapping[str, Any]) -> str | None:
    """The view URL of a message as the API and its events show it; None without inbound media."""
    viewable = is_viewable(
        str(message.get("direction")), str(message.get("type")), bool(message.get("deleted_at"))
    )
    return inbound_media_url(secret_key, int(message["id"])) if viewable else None

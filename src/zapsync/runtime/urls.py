"""The address a gateway posts a session's webhooks to. It is part of how this process is
configured (its public URL), so it is built here, below the services that hand it to
gateways and the jobs that re-register it, and above nothing that knows a route."""

from __future__ import annotations

from collections.abc import Callable

from zapsync.settings import Settings

WEBHOOKS = "/api/v1/webhooks"  # routes/webhooks.py serves under this prefix


def webhook_url(settings: Settings, provider: str, session_id: int) -> str:
    """Where the gateway of session `session_id` delivers its events."""
    return f"{settings.public_url}{WEBHOOKS}/{provider}/{session_id}"


def webhook_urls(settings: Settings) -> Callable[[str, int], str]:
    """(provider, session id) -> the session's webhook URL."""
    return lambda provider, session_id: webhook_url(settings, provider, session_id)


INTEGRATIONS = "/api/v1/integrations"  # routes/integrations.py serves under this prefix


def integration_webhook_url(settings: Settings, integration_id: int, token: str) -> str:
    """Where Chatwoot posts an integration's events; the token proves the sender when the
    Chatwoot release does not sign its webhooks."""
    return f"{settings.public_url}{INTEGRATIONS}/{integration_id}/webhook?token={token}"


MEDIA = "/api/v1/media/"  # routes/media.py serves stored files under this prefix


def own_media_name(settings: Settings, url: str) -> str | None:
    """The stored file a URL of this zapsync names (what an upload was sent with), else None:
    such a file is read from disk rather than fetched from ourselves."""
    prefix = f"{settings.public_url}{MEDIA}"
    if not url.startswith(prefix):
        return None
    return url[len(prefix) :].split("?", 1)[0] or None

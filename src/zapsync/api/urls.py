"""The API's own URLs where something outside a request needs them: the address a gateway
posts a session's webhooks to, and the route a refusal points a person at. Built here, beside
the routes they name; services are handed the builder and know no URL."""

from __future__ import annotations

from collections.abc import Callable

from zapsync.settings import Settings

WEBHOOKS = "/api/v1/webhooks"
SESSIONS = "/api/v1/sessions"


def webhook_url(settings: Settings, provider: str, session_id: int) -> str:
    """Where the gateway of session `session_id` delivers its events (routes/webhooks.py)."""
    return f"{settings.public_url}{WEBHOOKS}/{provider}/{session_id}"


def webhook_urls(settings: Settings) -> Callable[[str, int], str]:
    """(provider, session id) -> the session's webhook URL."""
    return lambda provider, session_id: webhook_url(settings, provider, session_id)


def session_route(method: str, session_id: int, action: str) -> str:
    """`POST /api/v1/sessions/7/connect`: a route as a person types it (routes/sessions.py)."""
    return f"{method} {SESSIONS}/{session_id}/{action}"

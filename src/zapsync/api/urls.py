"""The API's own URLs where something outside a request needs them: the address a gateway
posts a session's webhooks to, and the route a refusal points a person at. Built here, beside
the routes they name; services are handed the builder and know no URL."""

from __future__ import annotations

from zapsync.runtime.urls import WEBHOOKS, webhook_url, webhook_urls

__all__ = ["SESSIONS", "WEBHOOKS", "session_route", "webhook_url", "webhook_urls"]

SESSIONS = "/api/v1/sessions"


def session_route(method: str, session_id: int, action: str) -> str:
    """`POST /api/v1/sessions/7/connect`: a route as a person types it (routes/sessions.py)."""
    return f"{method} {SESSIONS}/{session_id}/{action}"

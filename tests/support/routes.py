"""Enumerates the app's protected routes (from its OpenAPI document) so auth tests cover
every route that exists."""

from __future__ import annotations

import re

from fastapi import FastAPI

PUBLIC_PREFIXES = ("/health", "/api/v1/webhooks/", "/api/v1/cron/")
# Chatwoot's deliveries: proven by its signature or the URL's token, not a Bearer token.
# The web login takes an e-mail and a password instead.
PUBLIC_PATHS = re.compile(
    r"^/api/v1/(integrations/\{\w+\}/webhook|sync/chatwoot/webhook|auth/login)$"
)
METHODS = {"get", "post", "put", "patch", "delete"}


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES) or PUBLIC_PATHS.match(path) is not None


def protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(METHOD, path template) of every /api/ route that needs a Bearer token."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/api/") or is_public(path):
            continue
        for method in sorted(set(operations) & METHODS):
            found.append((method.upper(), path))
    return found


def fill(path: str, value: object) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)

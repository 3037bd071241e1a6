"""Enumerates the app's protected routes (from its OpenAPI document) so auth tests cover
every route that exists."""

from __future__ import annotations

import re

from fastapi import FastAPI

PUBLIC_PREFIXES = ("/health", "/api/v1/webhooks/", "/api/v1/cron/")
METHODS = {"get", "post", "put", "patch", "delete"}


def protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(METHOD, path template) of every /api/ route that needs a Bearer token."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/api/") or path.startswith(PUBLIC_PREFIXES):
            continue
        for method in sorted(set(operations) & METHODS):
            found.append((method.upper(), path))
    return found


def fill(path: str, value: object) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)

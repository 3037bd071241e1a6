"""How the MegaAPI dialect speaks HTTP: its error body, rendered by its routes themselves,
and the `messageData` object its POST bodies carry."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute


class MegaApiError(Exception):
    """Ends a request with MegaAPI's error body `{error:true, message}`."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class MegaApiRoute(APIRoute):
    """Renders a MegaApiError raised anywhere in a route as MegaAPI's error body, without
    touching the app's exception handlers (server.py owns the app)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except MegaApiError as exc:
                body = {"error": True, "message": exc.message}
                return JSONResponse(body, status_code=exc.status_code)

        return guarded


async def message_data(request: Request, *, required: bool = True) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise MegaApiError(400, "body is not valid JSON") from None
    data = body.get("messageData") if isinstance(body, dict) else None
    if isinstance(data, dict):
        return data
    if required:
        raise MegaApiError(400, "messageData is required")
    return {}


def require_str(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise MegaApiError(400, f"messageData.{field} is required")
    return value

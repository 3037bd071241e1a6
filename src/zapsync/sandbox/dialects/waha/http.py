"""How the WAHA dialect speaks HTTP: the `X-Api-Key` check and WAHA's error bodies, both in
its own route class, and the JSON bodies and integer query parameters it reads."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

SANDBOX_API_KEY = "sandbox-waha-key"

NOT_EXPECTED = "Session status is not as expected. Try again later or restart the session"


class WahaError(Exception):
    """Ends a request with `body` as WAHA renders it for this kind of failure."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status_code = status_code
        self.body = body


def nest_error(status_code: int, message: str) -> WahaError:
    """NestJS's HttpException body, which WAHA uses for most refusals."""
    names = {400: "Bad Request", 404: "Not Found", 422: "Unprocessable Entity"}
    body = {"statusCode": status_code, "message": message, "error": names.get(status_code, "")}
    return WahaError(status_code, body)


class WahaRoute(APIRoute):
    """Checks `X-Api-Key` and renders WahaError, without touching the app's exception
    handlers (server.py owns the app)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            if request.headers.get("x-api-key") != SANDBOX_API_KEY:
                return JSONResponse({"message": "Unauthorized", "statusCode": 401}, 401)
            try:
                return await handler(request)
            except WahaError as exc:
                return JSONResponse(exc.body, status_code=exc.status_code)

        return guarded


async def json_body(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise nest_error(400, "Unexpected token in JSON") from None
    if not isinstance(data, dict):
        raise nest_error(400, "Body must be a JSON object")
    return data


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise nest_error(400, f"{name} must be an integer number") from None


def page(items: list[Any], request: Request) -> list[Any]:
    offset = int_param(request, "offset") or 0
    limit = int_param(request, "limit")
    return items[offset : offset + limit if limit is not None else None]

"""How the Evolution dialect speaks HTTP: Express's JSON, Evolution's error body (rendered by
the dialect's own route class), and the loose JSON bodies it reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute


class EvoJSON(JSONResponse):
    """Express's `res.json`: compact, UTF-8 kept as is, charset in the content type."""

    media_type = "application/json; charset=utf-8"


class EvoError(Exception):
    """An error Evolution renders as `{status, error, response:{message}}`."""

    _NAMES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}

    def __init__(self, status: int, message: str | list[Any]) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message

    def response(self) -> Response:
        name = self._NAMES.get(self.status, "Internal Server Error")
        body = {"status": self.status, "error": name, "response": {"message": self.message}}
        return EvoJSON(body, status_code=self.status)


class EvoRoute(APIRoute):
    """Renders an EvoError raised anywhere in a route as Evolution's error body, without
    touching the app's exception handlers (server.py owns the app)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def rendered(request: Request) -> Response:
            try:
                return await handler(request)
            except EvoError as exc:
                return exc.response()

        return rendered


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise EvoError(400, ["Unexpected token in JSON body"]) from None
    if not isinstance(data, dict):
        raise EvoError(400, ["instance requires property body"])
    return data


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def valid_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def int_of(value: Any, default: int, minimum: int = 0) -> int:
    try:
        return max(int(value), minimum)
    except (TypeError, ValueError):
        return default

"""What every Application API request goes through before its handler, in Chatwoot's order:
Rack::Attack's throttle (429 `Retry later`, text, no Retry-After), the access token (401
`{"error": "Invalid Access Token"}`), the account (404), and Chatwoot's error bodies for what a
handler refuses (422 `{"message", "attributes"}` or `{"error"}`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

from zapsync.sandbox.dialects.chatwoot.state import ChatwootState, Invalid, Refused

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def route_class_for(state: ChatwootState) -> type[APIRoute]:
    class ChatwootRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                state.requests += 1
                if state.take_throttle():
                    return PlainTextResponse("Retry later", status_code=429)
                if request.headers.get("api_access_token") != state.token:
                    return JSONResponse({"error": "Invalid Access Token"}, status_code=401)
                account_id = request.path_params.get("account_id")
                if account_id is not None and account_id != str(state.account_id):
                    return JSONResponse({"error": "Resource could not be found"}, status_code=404)
                try:
                    return await handler(request)
                except Invalid as exc:
                    body = {"message": exc.message, "attributes": exc.attributes}
                    return JSONResponse(body, status_code=422)
                except Refused as exc:
                    return JSONResponse({"error": exc.message}, status_code=exc.status)

            return guarded

    return ChatwootRoute


async def body_of(request: Request) -> dict[str, Any]:
    """A request's params as Rails reads them: JSON, or a form (multipart keeps its files)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            fields.setdefault(key, []).append(value)
        return {k: v if k.endswith("[]") else v[-1] for k, v in fields.items()}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise Refused(400, "Invalid JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "Invalid JSON")
    return data


def log_write(state: ChatwootState, request: Request, body: dict[str, Any]) -> None:
    """What zapsync posted, for a test to read back (`GET /_sandbox/chatwoot/writes`)."""
    fields = {k: v for k, v in body.items() if not k.endswith("[]")}
    files = [getattr(f, "filename", None) for f in body.get("attachments[]", [])]
    entry: dict[str, Any] = {"method": request.method, "path": request.url.path, "body": fields}
    if files:
        entry["files"] = files
    state.writes.append(entry)

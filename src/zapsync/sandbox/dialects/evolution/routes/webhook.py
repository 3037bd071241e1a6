"""`/webhook/...`: set and find an instance's webhook."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from zapsync.sandbox.dialects.evolution.dialect import Dialect
from zapsync.sandbox.dialects.evolution.http import (
    EvoError,
    EvoJSON,
    EvoRoute,
    read_body,
    valid_url,
)

router = APIRouter(route_class=EvoRoute)


@router.post("/webhook/set/{name}")
async def webhook_set(request: Request, name: str, evo: Dialect) -> Response:
    _, row = evo.instance(request, name)
    hook = (await read_body(request)).get("webhook")
    if not isinstance(hook, dict):
        raise EvoError(400, ['instance requires property "webhook"'])
    if not valid_url(hook.get("url")):
        raise EvoError(400, ['Invalid "url" property in webhook'])
    if hook.get("headers") is not None and not isinstance(hook["headers"], dict):
        raise EvoError(400, ['Invalid "headers" property in webhook'])
    row.set_webhook(hook)
    return EvoJSON(row.webhook_row(), status_code=201)


@router.get("/webhook/find/{name}")
async def webhook_find(request: Request, name: str, evo: Dialect) -> Response:
    _, row = evo.instance(request, name)
    return EvoJSON(row.webhook_row())

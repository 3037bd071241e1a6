"""`/rest/webhook/...`: the instance's one webhook URL, and whether it is switched on."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.megaapi.dialect import Dialect
from zapsync.sandbox.dialects.megaapi.http import MegaApiError, MegaApiRoute, message_data

router = APIRouter(route_class=MegaApiRoute)


@router.post("/webhook/{key}/configWebhook")
async def config_webhook(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    data = await message_data(request)
    enabled = data.get("webhookEnabled", True)
    if not isinstance(enabled, bool):
        raise MegaApiError(400, "messageData.webhookEnabled must be a boolean")
    url = data.get("webhookUrl")
    if not isinstance(url, str) or (enabled and not url):
        raise MegaApiError(400, "messageData.webhookUrl is required")
    megaapi.configure_webhook(inst, url, enabled)
    return JSONResponse(
        {"error": False, "message": "Webhook configured", "webhookData": megaapi.webhook_data(inst)}
    )


@router.get("/webhook/{key}")
async def get_webhook(request: Request, key: str, megaapi: Dialect) -> JSONResponse:
    inst = megaapi.instance(request, key)
    return JSONResponse(
        {
            "error": False,
            "message": "Webhook status fetched",
            "webhookData": megaapi.webhook_data(inst),
        }
    )

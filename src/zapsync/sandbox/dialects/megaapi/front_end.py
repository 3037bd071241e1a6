"""The MegaAPI dialect put together: its resources' routes under `/rest`, one shared state."""

from __future__ import annotations

from fastapi import APIRouter

from zapsync.sandbox.dialects import DialectFrontEnd
from zapsync.sandbox.dialects.megaapi.dialect import MegaApiDialect
from zapsync.sandbox.dialects.megaapi.routes import instance, send_message, webhook
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World


def build(world: World, sender: WebhookSender) -> DialectFrontEnd:
    megaapi = MegaApiDialect(world, sender)
    router = APIRouter(prefix="/rest", tags=["megaapi dialect"])
    for resource in (instance, webhook, send_message):
        router.include_router(resource.router)
    return DialectFrontEnd(name="megaapi", router=router, on_event=megaapi.on_event, state=megaapi)

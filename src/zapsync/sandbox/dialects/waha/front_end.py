"""The WAHA dialect put together: its resources' routes under `/api`, one shared state."""

from __future__ import annotations

from fastapi import APIRouter

from zapsync.sandbox.dialects import DialectFrontEnd
from zapsync.sandbox.dialects.waha.dialect import WahaDialect
from zapsync.sandbox.dialects.waha.routes import auth, chats, files, sending, sessions
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World


def build(world: World, sender: WebhookSender) -> DialectFrontEnd:
    waha = WahaDialect(world, sender)
    router = APIRouter(prefix="/api", tags=["waha dialect"])
    for resource in (files, sessions, auth, chats, sending):
        router.include_router(resource.router)
    return DialectFrontEnd(name="waha", router=router, on_event=waha.webhooks.on_event, state=waha)

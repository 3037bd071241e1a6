"""The Evolution dialect put together: its controllers' routes, the sandbox's controls of it,
one shared state."""

from __future__ import annotations

from fastapi import APIRouter

from zapsync.sandbox.dialects import DialectFrontEnd
from zapsync.sandbox.dialects.evolution.dialect import GLOBAL_API_KEY, EvolutionDialect
from zapsync.sandbox.dialects.evolution.routes import chat, control, instance, message, webhook
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World


def build(world: World, sender: WebhookSender, api_key: str = GLOBAL_API_KEY) -> DialectFrontEnd:
    evo = EvolutionDialect(world, sender, api_key)
    router = APIRouter(tags=["evolution dialect"])
    for resource in (instance, webhook, chat, message, control):
        router.include_router(resource.router)
    return DialectFrontEnd("evolution", router, evo.webhooks.on_event, evo)

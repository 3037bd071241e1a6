"""The Chatwoot dialect put together: its routers by resource, its control API, its state."""

from __future__ import annotations

from fastapi import APIRouter

from zapsync.sandbox.dialects import DialectFrontEnd
from zapsync.sandbox.dialects.chatwoot import accounts, contacts, conversations, messages
from zapsync.sandbox.dialects.chatwoot.control import build_control_router
from zapsync.sandbox.dialects.chatwoot.state import ChatwootState
from zapsync.sandbox.dialects.chatwoot.webhooks import Outgoing
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World, WorldEvent

# Chatwoot posts a webhook once, with a 5 s timeout, and never retries (CHATWOOT.md §6).
WEBHOOK_ATTEMPTS = 1
WEBHOOK_TIMEOUT = 5.0


def build(
    world: World, sender: WebhookSender, state: ChatwootState | None = None
) -> DialectFrontEnd:
    state = state or ChatwootState()
    sender.attempts = WEBHOOK_ATTEMPTS
    sender.timeout = WEBHOOK_TIMEOUT
    out = Outgoing(state, sender)
    router = APIRouter()
    router.include_router(build_control_router(state, out, sender))
    router.include_router(accounts.build_router(state))
    router.include_router(contacts.build_router(state, out))
    # Messages before conversations: both begin /conversations/{id}, and the longer wins.
    router.include_router(messages.build_router(state, out))
    router.include_router(conversations.build_router(state, out))
    router.include_router(messages.build_blob_router(state))

    def on_event(_: WorldEvent) -> None:
        """A helpdesk has no WhatsApp link: the gateway world's events are not Chatwoot's."""

    return DialectFrontEnd(name="chatwoot", router=router, on_event=on_event, state=state)

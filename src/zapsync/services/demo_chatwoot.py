"""The demo's Chatwoot: `zapsync serve --demo` serves the sandbox's Chatwoot dialect on a port
of its own (a thread with its own event loop, as a Chatwoot elsewhere would be), and the demo
organization has an integration of it bridged to the demo phone, so `make run` shows the whole
loop: a WhatsApp message appears in the Chatwoot inbox, an agent's reply there reaches the
phone.

The sandbox Chatwoot lives in this process's memory and starts empty at every start: what
zapsync mapped into the previous one (its refs) is forgotten then, so the bridge mirrors the
demo's history into the new one."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import structlog
import uvicorn

from zapsync.runtime.context import AppContext
from zapsync.runtime.urls import integration_webhook_url
from zapsync.sandbox.dialects.chatwoot.state import WebhookTarget
from zapsync.sandbox.dialects.chatwoot.webhooks import CONTACT_EVENTS
from zapsync.sandbox.server import build_sandbox_app
from zapsync.services.integrations.connections import (
    CHATWOOT,
    ChatwootConfig,
    add_tested_integration,
    config_of,
    webhook_token_of,
)
from zapsync.store import external_refs
from zapsync.store import integrations as store

log = structlog.get_logger(__name__)

DEMO_CHATWOOT_PORT_OFFSET = 1  # beside zapsync's own port: 8001 for `make run`


class DemoChatwoot:
    """The sandbox Chatwoot served in a thread; `start()` once, `stop()` once."""

    def __init__(self, host: str, port: int) -> None:
        self.app = build_sandbox_app("chatwoot")
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host=host, port=port, log_level="warning", log_config=None)
        )
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name="demo-chatwoot", daemon=True
        )

    @property
    def state(self) -> Any:
        return self.app.state.dialect

    async def start(self) -> None:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the demo Chatwoot could not listen on {self.url}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, 10)


async def load_demo_chatwoot(
    ctx: AppContext, chatwoot: DemoChatwoot, organization_id: int, session_id: int
) -> int:
    """The demo organization's integration of the demo Chatwoot, created when missing; its id."""
    state = chatwoot.state
    api_url = chatwoot.url
    inbox = next(i for i in state.inboxes.values() if i.channel_type == "Channel::Api")
    wanted = ChatwootConfig(
        account_id=state.account_id, api_url=api_url, inbox_id=inbox.id, session_ids=(session_id,)
    )
    async with ctx.db.session() as db:
        found = await store.integrations_of(db, organization_id, CHATWOOT)
        if found:
            integration = found[0]
            # A new, empty Chatwoot: nothing zapsync mapped into the last one is there.
            await external_refs.delete_refs(db, organization_id, CHATWOOT)
            if config_of(integration) != wanted:
                integration.config = wanted.as_json()
            token = webhook_token_of(ctx, integration)
        else:
            integration, token = await add_tested_integration(
                ctx, db, organization_id, CHATWOOT, state.token, wanted, None
            )
        await db.commit()
    url = integration_webhook_url(ctx.settings, integration.id, token)
    # As a team sets it up: the API inbox posts its conversations' and messages' events, the
    # account webhook the contacts' (subscribed to those only, so nothing arrives twice).
    inbox.webhook_url = url
    state.webhook = WebhookTarget(url, None, CONTACT_EVENTS)
    log.info("demo chatwoot ready", integration_id=integration.id, url=api_url)
    return integration.id

"""Integration rows as a Chatwoot connection and its pull leave them, for tests of the routes
that read them (no Chatwoot is called)."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import Tenant
from zapsync.runtime.context import AppContext
from zapsync.services.runs import start_run
from zapsync.store.models import Integration


async def chatwoot_records(app: FastAPI, who: Tenant) -> tuple[int, int]:
    """An integration and a run of it, as a pull leaves them, for the routes that read them."""
    ctx: AppContext = app.state.ctx
    async with ctx.db.session() as db:
        integration = Integration(
            organization_id=who.organization_id,
            provider="chatwoot",
            credentials_encrypted=ctx.cipher.encrypt_json({"api_key": "k"}),
            config={"account_id": 1, "api_url": "https://chatwoot.example", "session_ids": []},
            webhook_token_encrypted=ctx.cipher.encrypt_text("t"),
        )
        db.add(integration)
        await db.flush()
        run = await start_run(db, kind="chatwoot_contacts_pull", trigger="manual",
                              organization_id=who.organization_id)  # fmt: skip
        run.integration_id = integration.id
        await db.commit()
        return integration.id, run.id

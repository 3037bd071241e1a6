"""`zapsync status-sync` from a terminal wires the process as `serve` does: a session it finds
connected has its conversations imported before the command ends."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.support.gateways import create_session, running_sandbox
from tests.test_cli_sandbox_sessions import status_of, zapsync_cli
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings
from zapsync.store.models import Conversation, Message, SyncRun


async def counts(ctx: AppContext, session_id: int) -> tuple[int, int]:
    async with ctx.db.session() as db:
        conversations = await db.scalar(
            select(func.count()).where(Conversation.session_id == session_id)
        )
        messages = await db.scalar(select(func.count()).where(Message.session_id == session_id))
    return int(conversations or 0), int(messages or 0)


async def test_status_sync_from_the_cli_imports_a_session_it_finds_connected(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, settings: Settings, tmp_path: Path
) -> None:
    with running_sandbox("evolution") as gateway:
        # Paired at the gateway, whose webhooks go nowhere: zapsync has not heard of it.
        name = gateway.new_instance()
        sid = int((await create_session(client, tenant, gateway, name))["id"])
        gateway.scan(name)
        gateway.control(f"/instances/{name}/seed", {"chats": 6, "messages": 60})
        assert await status_of(client, tenant, sid) != "connected"
        assert await counts(ctx, sid) == (0, 0)

        result = await zapsync_cli(settings, tmp_path, "status-sync")

        assert result.returncode == 0, result.stderr
        assert await status_of(client, tenant, sid) == "connected"
        conversations, messages = await counts(ctx, sid)
        assert conversations == 6 and messages == 60
        async with ctx.db.session() as db:
            run = await db.scalar(select(SyncRun).where(SyncRun.session_id == sid))
        assert run is not None and run.trigger == "connect" and run.status == "succeeded"

"""Seed 000: when a session connects its conversations are imported by themselves, and the
manual sync finds nothing left to write."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import Tenant
from zapsync.runtime.context import AppContext
from zapsync.store.models import Conversation, Message, SyncRun


async def settle(app: FastAPI, ctx: AppContext) -> None:
    for _ in range(3):
        await app.state.sandbox_pump.drain()
        await ctx.bus.drain()
        await ctx.tasks.drain()


async def test_connect_imports_conversations_and_a_second_sync_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = (
        await client.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "loja", "provider": "sandbox", "config": {}},
        )
    ).json()["id"]
    inst = ctx.world.get(f"zapsync-{sid}")
    assert inst is not None
    ctx.world.seed(inst, chats=12, groups=2, empty=1, messages=300, status_broadcast=True)

    await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    await settle(app, ctx)

    async with ctx.db.session() as db:
        run = await db.scalar(select(SyncRun).where(SyncRun.kind == "import-conversations"))
        assert run is not None and run.trigger == "connect" and run.status == "succeeded"
        conversations = await db.scalar(select(func.count()).select_from(Conversation))
        messages = await db.scalar(select(func.count()).select_from(Message))
    # 12 chats - 2 groups - 1 empty = 9 conversations; the groups' and broadcast's messages
    # are not imported.
    group_and_broadcast = sum(
        len(c.messages) for c in inst.chats.values() if c.is_group or c.jid == "status@broadcast"
    )
    assert conversations == 9
    assert messages == 300 - group_and_broadcast

    again = await client.post(f"/api/v1/sessions/{sid}/sync-conversations", headers=tenant.headers)
    assert again.status_code == 200, again.text
    report = again.json()
    assert report["created"] == 0
    assert report["messages"].get("created", 0) == 0
    async with ctx.db.session() as db:
        assert await db.scalar(select(func.count()).select_from(Message)) == messages

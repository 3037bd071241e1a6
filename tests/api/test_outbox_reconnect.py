"""A send held back by an outage goes out as soon as its session is connected again, not when
its (long) retry delay ends."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import Tenant
from tests.support.inbox import (
    connected_session,
    conversations_of,
    customer_writes,
    eventually,
    instance,
    messages_of,
)
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings
from zapsync.store.models import OutboxItem

CUSTOMER = "5511987650001"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A first retry 10 minutes away: only the reconnection can explain a prompt delivery.
    return settings.model_copy(update={"outbox_base_delay": 600.0, "outbox_max_attempts": 5})


async def outbox_state(ctx: AppContext) -> list[tuple[int, str | None]]:
    async with ctx.db.session() as db:
        rows = await db.execute(select(OutboxItem.attempts, OutboxItem.last_error))
        return [(r.attempts, r.last_error) for r in rows.all()]


async def test_a_send_waiting_out_an_outage_goes_when_the_session_reconnects(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    sid = await connected_session(app, client, tenant)
    await customer_writes(app, sid, CUSTOMER, "oi", name="Rita")
    (conversation,) = await conversations_of(client, tenant)
    drop = await client.post(f"/api/v1/sandbox/sessions/{sid}/drop", headers=tenant.headers)
    assert drop.status_code == 200, drop.text

    sent = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers=tenant.headers,
        json={"type": "text", "content": "ainda aí?"},
    )
    assert sent.status_code == 202, sent.text
    # One failed attempt, then a retry scheduled ten minutes out. The claim counts the attempt
    # before the gateway call and the failure is written after it, so wait for the reason.
    state = await eventually(
        lambda: outbox_state(ctx), lambda s: bool(s) and s[0][0] >= 1 and s[0][1] is not None
    )
    assert state[0][0] == 1
    assert instance(app, sid).sent == []

    # The status sync finds the silent drop and restarts the session: connected again.
    synced = await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    assert synced.status_code == 200, synced.text

    async def ours() -> list[dict[str, object]]:
        page = await messages_of(client, tenant, conversation["id"])
        return [m for m in page if m["direction"] == "out"]

    out = await eventually(ours, lambda ms: bool(ms) and ms[0]["ack"] == "sent", timeout=10)
    assert [m.body for m in instance(app, sid).sent] == ["ainda aí?"]
    assert out[0]["ack"] == "sent"

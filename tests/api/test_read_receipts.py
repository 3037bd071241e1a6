"""Reading a conversation in zapsync reads it on WhatsApp too: the gateway is told, over real
HTTP for Evolution and WAHA, and the phone's unread count clears. A gateway that fails leaves
zapsync's own read state in place."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from structlog.testing import capture_logs

from tests.conftest import Tenant, make_tenant
from tests.support.gateways import SandboxGateway, create_session, running_sandbox
from tests.support.inbox import (
    connected_session,
    conversations_of,
    customer_writes,
    instance,
    settle,
)
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import Fault
from zapsync.settings import Settings

CUSTOMER = "5511987650001"
JID = f"{CUSTOMER}@s.whatsapp.net"


async def read(client: httpx.AsyncClient, tenant: Tenant, conversation_id: int) -> None:
    resp = await client.put(f"/api/v1/conversations/{conversation_id}/read", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["unread_count"] == 0


@pytest.fixture(scope="module", params=["evolution", "waha"])
def gateway(request: pytest.FixtureRequest) -> Iterator[SandboxGateway]:
    with running_sandbox(request.param) as gw:
        yield gw


async def test_reading_a_conversation_reads_it_on_the_gateways_phone(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, ctx: AppContext
) -> None:
    name = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, name))["id"]
    for text in ("oi", "tem o tênis azul?"):
        gateway.control(
            f"/instances/{name}/messages", {"chat_jid": JID, "body": text, "notify": False}
        )
    gateway.scan(name)
    # Connected: the import brings the chat in with the phone's unread count.
    synced = await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    assert synced.status_code == 200, synced.text
    await ctx.tasks.drain()
    (conversation,) = await conversations_of(client, tenant)
    assert conversation["unread_count"] == 2
    assert gateway.instance(name)["unread"] == {JID: 2}

    await read(client, tenant, conversation["id"])
    await ctx.bus.drain()
    await ctx.tasks.drain()

    assert gateway.instance(name)["unread"] == {}, "the phone shows the chat read"


async def test_the_sandbox_phone_is_read_and_a_failure_keeps_the_read_state(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    sid = await connected_session(app, client, tenant)
    await customer_writes(app, sid, CUSTOMER, "alô?", name="Rita")
    (conversation,) = await conversations_of(client, tenant)
    phone = instance(app, sid).chats[JID]
    assert (conversation["unread_count"], phone.unread) == (1, 1)
    await read(client, tenant, conversation["id"])
    await settle(app)
    assert phone.unread == 0

    await customer_writes(app, sid, CUSTOMER, "tem alguém aí?")
    ctx.world.fault = Fault.ERROR
    with capture_logs() as logs:
        await read(client, tenant, conversation["id"])
        await settle(app)
    ctx.world.fault = Fault.NONE

    (after,) = await conversations_of(client, tenant)
    assert after["unread_count"] == 0, "zapsync's read state stands"
    assert phone.unread == 1, "nothing reached the phone"
    failed = [e for e in logs if e["event"] == "read receipts not sent"]
    assert failed and "sandbox gateway" in failed[0]["reason"]

    # Read again: nothing is unread in zapsync any more, so nothing is sent.
    await read(client, tenant, conversation["id"])
    await settle(app)
    assert phone.unread == 1


async def test_read_receipts_can_be_turned_off(settings: Settings) -> None:
    quiet = settings.model_copy(update={"read_receipts": False})
    app = create_app(quiet)
    async with LifespanManager(app):
        ctx: AppContext = app.state.ctx
        tenant = await make_tenant(ctx, "Loja", "ana@loja.test")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            sid = await connected_session(app, client, tenant)
            await customer_writes(app, sid, CUSTOMER, "oi")
            (conversation,) = await conversations_of(client, tenant)
            await read(client, tenant, conversation["id"])
            await settle(app)
            assert instance(app, sid).chats[JID].unread == 1

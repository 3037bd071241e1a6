"""Read receipts for a chat the gateway keeps under the person's `@lid` name the messages by
that JID, not by the phone JID zapsync keeps the conversation under: only then does the phone
show the chat read (Evolution, over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.gateways import SandboxGateway, create_session, running_sandbox
from tests.support.inbox import conversations_of
from zapsync.runtime.context import AppContext

LID = "204101010101010@lid"
PHONE_JID = "5511987650001@s.whatsapp.net"


@pytest.fixture(scope="module")
def gateway() -> Iterator[SandboxGateway]:
    with running_sandbox("evolution") as gw:
        yield gw


async def test_a_lid_chat_read_in_zapsync_is_read_on_the_phone(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, ctx: AppContext
) -> None:
    name = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, name))["id"]
    for text in ("oi", "ainda tem?"):
        gateway.control(
            f"/instances/{name}/messages",
            {"chat_jid": LID, "chat_alt_jid": PHONE_JID, "body": text, "notify": False},
        )
    gateway.scan(name)
    synced = await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    assert synced.status_code == 200, synced.text
    await ctx.tasks.drain()
    (conversation,) = await conversations_of(client, tenant)
    assert conversation["unread_count"] == 2
    assert gateway.instance(name)["unread"] == {LID: 2}

    resp = await client.put(
        f"/api/v1/conversations/{conversation['id']}/read", headers=tenant.headers
    )
    assert resp.status_code == 200, resp.text
    await ctx.bus.drain()
    await ctx.tasks.drain()
    assert gateway.instance(name)["unread"] == {}, "the phone shows the chat read"

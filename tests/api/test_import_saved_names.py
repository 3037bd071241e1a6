"""An import names people as the phone saved them: Evolution's `findChats` shows the Chat
row's name (the WhatsApp profile name, or nothing), so the names come from `findContacts`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.gateways import SandboxGateway, create_session, running_sandbox
from tests.support.inbox import conversations_of
from zapsync.runtime.context import AppContext

BRUNO = "5511977776666@s.whatsapp.net"
CARLA = "5511966665555@s.whatsapp.net"


@pytest.fixture(scope="module")
def gateway() -> Iterator[SandboxGateway]:
    with running_sandbox("evolution") as gw:
        yield gw


async def test_a_saved_contact_is_imported_under_its_saved_name(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, ctx: AppContext
) -> None:
    name = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, name))["id"]
    for jid, push_name in ((BRUNO, "Bruno"), (CARLA, "Carla")):
        gateway.control(
            f"/instances/{name}/messages",
            {"chat_jid": jid, "body": "oi", "push_name": push_name, "notify": False},
        )
    gateway.control(f"/instances/{name}/contacts", {"jid": BRUNO, "name": "Bruno Lima"})
    async with httpx.AsyncClient(base_url=gateway.base_url) as raw:
        found = await raw.post(
            f"/chat/findChats/{name}",
            headers={"apikey": gateway.config(name)["api_key"]},
            json={"where": {}},
        )
    chats = found.json()
    assert {c["remoteJid"]: c["pushName"] for c in chats}[BRUNO] == "Bruno"  # the trap

    gateway.scan(name)
    synced = await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    assert synced.status_code == 200, synced.text
    await ctx.tasks.drain()
    names = {c["chat_jid"]: c["name"] for c in await conversations_of(client, tenant)}
    assert names == {BRUNO: "Bruno Lima", CARLA: "Carla"}

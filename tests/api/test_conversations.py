"""The inbox over the API: conversations newest first, search, pages of messages going back
in time, read and status changes, contacts."""

from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.inbox import (
    collect,
    connected_session,
    conversations_of,
    customer_writes,
    messages_of,
)
from zapsync.runtime.context import AppContext
from zapsync.store.models import Conversation

T0 = int(time.time()) - 3600
ANA, BRUNO, CARLA = "5511987650001", "5511987650002", "5521987650003"


async def three_customers(app: FastAPI, client: httpx.AsyncClient, tenant: Tenant) -> int:
    sid = await connected_session(app, client, tenant)
    await customer_writes(app, sid, ANA, "bom dia", name="Ana Souza", at=T0)
    await customer_writes(app, sid, BRUNO, "quero um orçamento", name="Bruno", at=T0 + 10)
    await customer_writes(app, sid, CARLA, "oi", name="Carla", at=T0 + 20)
    await customer_writes(app, sid, ANA, "ainda aí?", name="Ana Souza", at=T0 + 30)
    return sid


async def test_conversations_come_newest_first_with_contact_preview_and_unread(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    sid = await three_customers(app, client, tenant)
    items = await conversations_of(client, tenant)
    assert [c["contact"]["name"] for c in items] == ["Ana Souza", "Carla", "Bruno"]
    ana = items[0]
    assert ana["session_id"] == sid
    assert ana["unread_count"] == 2
    assert ana["last_message_preview"] == "ainda aí?"
    assert ana["contact"]["phone_e164"] == f"+{ANA}"
    assert ana["status"] == "open"
    one = await client.get(f"/api/v1/conversations/{ana['id']}", headers=tenant.headers)
    assert one.json()["contact"]["name"] == "Ana Souza"


async def test_cursor_pages_cover_every_conversation_once_in_order(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    sid = await connected_session(app, client, tenant)
    for i in range(5):
        # two pairs share a timestamp: the id breaks the tie
        await customer_writes(app, sid, f"55119000000{i:02d}", f"m{i}", at=T0 + (i // 2) * 60)
    async with ctx.db.session() as db:
        # a chat listed by the gateway with no message yet comes last
        db.add(
            Conversation(
                organization_id=tenant.organization_id,
                session_id=sid,
                chat_key="+5511900000099",
                chat_jid="5511900000099@s.whatsapp.net",
                name="Sem mensagens",
            )
        )
        await db.commit()
    everything = await conversations_of(client, tenant, limit=100)
    assert len(everything) == 6
    assert everything[-1]["name"] == "Sem mensagens"
    assert [c["last_message_preview"] for c in everything[:5]] == ["m4", "m3", "m2", "m1", "m0"]

    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/conversations", headers=tenant.headers, params=params)
        body = page.json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [c["id"] for c in seen] == [c["id"] for c in everything]

    bad = await client.get(
        "/api/v1/conversations", headers=tenant.headers, params={"cursor": "not-a-cursor"}
    )
    assert bad.status_code == 422
    assert "cursor" in problem_of(bad)["detail"]


async def test_search_finds_name_phone_and_filters_by_session_and_status(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    sid = await three_customers(app, client, tenant)
    other_sid = await connected_session(app, client, tenant, name="Filial")
    await customer_writes(app, other_sid, "5531987650004", "olá", name="Daniela", at=T0 + 40)

    def names(items: list[dict[str, Any]]) -> list[str]:
        return [c["contact"]["name"] for c in items]

    assert names(await conversations_of(client, tenant, q="ana s")) == ["Ana Souza"]
    assert names(await conversations_of(client, tenant, q="BRUNO")) == ["Bruno"]
    assert names(await conversations_of(client, tenant, q="21 98765")) == ["Carla"]
    assert names(await conversations_of(client, tenant, q="+55 31")) == ["Daniela"]
    assert await conversations_of(client, tenant, q="%") == []
    assert names(await conversations_of(client, tenant, session_id=other_sid)) == ["Daniela"]
    assert len(await conversations_of(client, tenant, session_id=sid)) == 3
    assert await conversations_of(client, tenant, status="resolved") == []
    bad = await client.get("/api/v1/conversations", headers=tenant.headers, params={"status": "x"})
    assert bad.status_code == 422


async def test_messages_page_back_in_time_oldest_first_within_a_page(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    sid = await connected_session(app, client, tenant)
    for i in range(7):
        await customer_writes(app, sid, ANA, f"msg {i}", at=T0 + i)
    (conversation,) = await conversations_of(client, tenant)
    url = f"/api/v1/conversations/{conversation['id']}/messages"

    first = (await client.get(url, headers=tenant.headers, params={"limit": 3})).json()
    assert [m["body"] for m in first["messages"]] == ["msg 4", "msg 5", "msg 6"]
    assert first["has_more"] is True
    assert first["next_before"] == first["messages"][0]["id"]
    second = (
        await client.get(
            url, headers=tenant.headers, params={"limit": 3, "before": first["next_before"]}
        )
    ).json()
    assert [m["body"] for m in second["messages"]] == ["msg 1", "msg 2", "msg 3"]
    last = (
        await client.get(
            url, headers=tenant.headers, params={"limit": 3, "before": second["next_before"]}
        )
    ).json()
    assert [m["body"] for m in last["messages"]] == ["msg 0"]
    assert last["next_before"] is None and last["has_more"] is False

    by_page = await messages_of(client, tenant, conversation["id"], page=2, limit=3)
    assert [m["body"] for m in by_page] == ["msg 1", "msg 2", "msg 3"]
    message = by_page[0]
    assert message["direction"] == "in" and message["sender"] == "client"
    assert message["ack"] == "delivered" and message["error"] is None

    both = await client.get(url, headers=tenant.headers, params={"page": 1, "before": 1})
    assert both.status_code == 422
    elsewhere = await client.get(url, headers=tenant.headers, params={"before": 10**9})
    assert elsewhere.status_code == 422
    assert "is not in conversation" in problem_of(elsewhere)["detail"]


async def test_reading_zeroes_unread_and_publishes_messages_read_once(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    await three_customers(app, client, tenant)
    ana = (await conversations_of(client, tenant))[0]
    events = collect(ctx, "messages_read")
    for _ in range(2):
        read = await client.put(f"/api/v1/conversations/{ana['id']}/read", headers=tenant.headers)
        assert read.status_code == 200, read.text
        assert read.json()["unread_count"] == 0
        await ctx.bus.drain()
    assert [(e.conversation_id, e.data["unread_count"]) for e in events] == [(ana["id"], 0)]
    assert (await conversations_of(client, tenant))[0]["unread_count"] == 0


async def test_status_changes_publish_and_a_new_message_reopens(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    sid = await three_customers(app, client, tenant)
    bruno = next(c for c in await conversations_of(client, tenant) if c["name"] == "Bruno")
    url = f"/api/v1/conversations/{bruno['id']}"
    events = collect(ctx, "conversation_updated")
    resolved = await client.patch(url, headers=tenant.headers, json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    await ctx.bus.drain()
    assert [(e.conversation_id, e.data["status"]) for e in events] == [(bruno["id"], "resolved")]
    assert [c["id"] for c in await conversations_of(client, tenant, status="resolved")] == [
        bruno["id"]
    ]

    for body, reason in (({"status": "closed"}, "status"), ({}, "nothing to change")):
        bad = await client.patch(url, headers=tenant.headers, json=body)
        assert bad.status_code == 422
        assert reason in problem_of(bad)["detail"]

    await customer_writes(app, sid, BRUNO, "e aí?", at=T0 + 100)
    assert (await client.get(url, headers=tenant.headers)).json()["status"] == "open"


async def test_contacts_list_by_name_page_search_and_detail(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await three_customers(app, client, tenant)
    names: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/contacts", headers=tenant.headers, params=params)).json()
        names.extend(c["name"] for c in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert names == ["Ana Souza", "Bruno", "Carla"]

    found = (
        await client.get("/api/v1/contacts", headers=tenant.headers, params={"q": "987650003"})
    ).json()["items"]
    assert [c["name"] for c in found] == ["Carla"]

    detail = await client.get(f"/api/v1/contacts/{found[0]['id']}", headers=tenant.headers)
    assert detail.status_code == 200
    assert detail.json()["phone_e164"] == f"+{CARLA}"
    assert [c["last_message_preview"] for c in detail.json()["conversations"]] == ["oi"]
    missing = await client.get("/api/v1/contacts/999999", headers=tenant.headers)
    assert missing.status_code == 404
    problem_of(missing)

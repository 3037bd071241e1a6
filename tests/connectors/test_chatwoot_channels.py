"""Chatwoot conversations of another channel than the bridged inbox (e-mail here), over real
HTTP to the sandbox's Chatwoot: a pull stores them as the integration's, with their contact
and messages, once; the inbox lists them with their channel; a reply from zapsync is refused
(409) and writes nothing; their webhooks take the same path as the pull."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from tests.conftest import Tenant, problem_of
from tests.connectors.conftest import ChatwootSandbox, ChatwootTeam
from zapsync.runtime.context import AppContext
from zapsync.store.models import Contact, Conversation, ExternalRef, Message, OutboxItem

BRIDGED_INBOX = 1  # the sandbox account's API inbox
EMAIL_INBOX = 2  # its "Support e-mail" inbox (Channel::Email)
PULL = {"provider": "chatwoot", "entity_type": "conversations", "direction": "pull"}


class Setup(ChatwootTeam):
    def __init__(self, api: httpx.AsyncClient, tenant: Tenant, chatwoot: ChatwootSandbox) -> None:
        super().__init__(api, tenant, chatwoot)
        self.contact: dict[str, Any] = {}
        self.display_id = 0

    async def email_thread(self, messages: int) -> None:
        self.contact = await self.chatwoot.do(
            "POST", "/contacts", json={"fields": {"name": "Ana Email", "email": "ana@example.com"}}
        )
        conversation = await self.chatwoot.do(
            "POST",
            "/conversations",
            json={"contact_id": self.contact["id"], "inbox_id": EMAIL_INBOX, "messages": messages},
        )
        self.display_id = int(conversation["id"])

    async def pull(self) -> dict[str, Any]:
        return dict((await self.call("POST", "/api/v1/sync/run", json=PULL))["data"])

    async def listed(self, **query: Any) -> list[dict[str, Any]]:
        page = await self.call("GET", "/api/v1/conversations", params=query)
        return list(page["items"])

    async def channel_conversation(self) -> dict[str, Any]:
        (found,) = [c for c in await self.listed() if c["channel"] is not None]
        return found

    def webhook_path(self) -> str:
        url = urlsplit(self.integration["webhook_url"])
        return f"{url.path}?{url.query}"


async def count(ctx: AppContext, model: type[Any]) -> int:
    async with ctx.db.session() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def last_update(ctx: AppContext) -> Any:
    async with ctx.db.session() as db:
        return (
            await db.scalar(select(func.max(Conversation.updated_at))),
            await db.scalar(select(func.max(ExternalRef.updated_at))),
        )


async def test_a_pull_stores_an_email_conversation_with_its_messages_once(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    setup = Setup(client, tenant, chatwoot)
    await setup.connect(BRIDGED_INBOX)
    # 25 messages: two pages of Chatwoot's 20; and an agent's private note, never stored.
    await setup.email_thread(25)
    await chatwoot.do(
        "POST",
        f"/conversations/{setup.display_id}/agent_messages",
        json={"content": "nota interna", "private": True},
    )
    first = await setup.pull()
    assert (first["created"], first["updated"], first["errors"]) == (1, 0, 0), first

    listed = await setup.channel_conversation()
    assert listed["session_id"] is None
    assert listed["integration_id"] == setup.integration["id"]
    assert listed["channel"] == "email"
    assert listed["name"] == "Ana Email"
    assert listed["contact"]["email"] == "ana@example.com"
    page = await setup.call(
        "GET", f"/api/v1/conversations/{listed['id']}/messages", params={"limit": 100}
    )
    bodies = [m["body"] for m in page["messages"]]
    assert bodies == [f"history {n}" for n in range(1, 26)]
    assert [m["direction"] for m in page["messages"][:2]] == ["in", "out"]
    assert all(m["session_id"] is None for m in page["messages"])
    # The contact is the one a contacts pull finds of the same Chatwoot contact: one person.
    await setup.call("POST", f"/api/v1/integrations/{setup.integration['id']}/sync")
    assert await count(ctx, Contact) == 1

    stamps = await last_update(ctx)
    messages = await count(ctx, Message)
    refs = await count(ctx, ExternalRef)
    second = await setup.pull()
    assert (second["created"], second["updated"], second["skipped"]) == (0, 0, 1), second
    assert await last_update(ctx) == stamps  # nothing written
    assert (await count(ctx, Message), await count(ctx, ExternalRef)) == (messages, refs)

    # Upstream changes: a new message, then a status: each pull after it is an update.
    await chatwoot.do(
        "POST",
        f"/conversations/{setup.display_id}/agent_messages",
        json={"content": "Resposta por e-mail"},
    )
    changed = await setup.pull()
    assert (changed["created"], changed["updated"], changed["skipped"]) == (0, 1, 0), changed
    assert await count(ctx, Message) == messages + 1
    await chatwoot.do(
        "POST", f"/conversations/{setup.display_id}/status", json={"status": "resolved"}
    )
    resolved = await setup.pull()
    assert resolved["updated"] == 1, resolved
    listed = await setup.channel_conversation()
    assert listed["status"] == "resolved"
    assert listed["last_message_preview"] == "Resposta por e-mail"
    assert await count(ctx, Message) == messages + 1
    assert await count(ctx, Conversation) == 1


async def test_the_inbox_lists_it_but_a_session_filter_does_not_and_a_send_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    setup = Setup(client, tenant, chatwoot)
    await setup.connect(BRIDGED_INBOX)
    await setup.email_thread(2)
    await setup.pull()
    session = await setup.call(
        "POST", "/api/v1/sessions", json={"name": "loja", "provider": "sandbox", "config": {}}
    )
    assert [c["channel"] for c in await setup.listed()] == ["email"]
    assert await setup.listed(session_id=session["id"]) == []
    listed = await setup.channel_conversation()
    one = await setup.call("GET", f"/api/v1/conversations/{listed['id']}")
    assert (one["session_id"], one["channel"]) == (None, "email")

    before = (await count(ctx, Message), await count(ctx, OutboxItem))
    resp = await client.post(
        f"/api/v1/conversations/{listed['id']}/messages",
        headers=tenant.headers,
        json={"type": "text", "content": "daqui não"},
    )
    assert resp.status_code == 409, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    detail = problem_of(resp)["detail"]
    assert detail == "this conversation is in Chatwoot's e-mail channel: reply from Chatwoot"
    upload = await client.post(
        f"/api/v1/conversations/{listed['id']}/messages",
        headers=tenant.headers,
        files={"file": ("a.txt", b"hello", "text/plain")},
    )
    assert upload.status_code == 409, upload.text
    assert (await count(ctx, Message), await count(ctx, OutboxItem)) == before
    # Read in zapsync: its unread count is zeroed; nothing goes to a gateway.
    read = await setup.call("PUT", f"/api/v1/conversations/{listed['id']}/read")
    assert read["unread_count"] == 0


async def test_webhooks_of_an_email_conversation_store_it_as_the_pull_does(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    setup = Setup(client, tenant, chatwoot)
    await setup.connect(BRIDGED_INBOX)
    await setup.email_thread(0)
    contact = setup.contact
    conversation = {
        "id": setup.display_id,
        "inbox_id": EMAIL_INBOX,
        "status": "open",
        "channel": "Channel::Email",
        "labels": [],
        "meta": {"sender": {"id": contact["id"], "type": "contact"}},
        "last_activity_at": 1776333600,
    }
    message = {
        "event": "message_created",
        "id": 9001,
        "content": "Olá, por e-mail",
        "message_type": "incoming",
        "private": False,
        "created_at": "2026-04-16T10:00:00.000Z",
        "inbox": {"id": EMAIL_INBOX, "name": "Support e-mail"},
        "sender": {"id": contact["id"], "name": "Ana Email", "email": "ana@example.com"},
        "conversation": conversation,
    }
    for _ in range(2):  # delivered twice (Chatwoot issue #11901): stored once
        resp = await client.post(setup.webhook_path(), json=message)
        assert resp.status_code == 200, resp.text
    note = {**message, "id": 9002, "private": True, "content": "nota"}
    assert (await client.post(setup.webhook_path(), json=note)).status_code == 200
    listed = await setup.channel_conversation()
    assert (listed["channel"], listed["contact"]["email"]) == ("email", "ana@example.com")
    page = await setup.call("GET", f"/api/v1/conversations/{listed['id']}/messages")
    assert [m["body"] for m in page["messages"]] == ["Olá, por e-mail"]
    assert await count(ctx, OutboxItem) == 0  # nothing towards WhatsApp

    changed = {**conversation, "event": "conversation_status_changed", "status": "resolved"}
    resp = await client.post(setup.webhook_path(), json=changed)
    assert resp.status_code == 200 and resp.json()["applied"] == 1, resp.text
    assert (await setup.channel_conversation())["status"] == "resolved"
    # The webhooks left no fingerprint: the next pull reconciles the thread with Chatwoot's.
    pulled = await setup.pull()
    assert (pulled["created"], pulled["updated"], pulled["errors"]) == (0, 1, 0), pulled
    assert await count(ctx, Conversation) == 1

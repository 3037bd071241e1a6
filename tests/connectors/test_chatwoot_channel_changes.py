"""What changes in a conversation of Chatwoot's other channels (e-mail here), both ways, over
real HTTP: zapsync served on a port (where the sandbox Chatwoot posts its account webhook),
and the sandbox's Chatwoot.

- A status set in zapsync reaches Chatwoot (`toggle_status`) through the bridge's outbox pass,
  once; Chatwoot's webhook of it is an echo that changes nothing; an agent's change in
  Chatwoot is taken and not told back; a Chatwoot that is down delays it, loses nothing.
- Chatwoot's `message_updated` changes the stored message (an edit; a deletion, marked and its
  text kept), stores one zapsync never saw, is applied once when delivered twice, leaves
  private notes out, and is published live as `message_updated`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import Tenant
from tests.connectors.conftest import ChatwootSandbox
from tests.connectors.test_chatwoot_channels import BRIDGED_INBOX, EMAIL_INBOX, Setup
from tests.support.inbox import eventually
from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.services.integrations import bridge_mirror
from zapsync.store.models import ExternalRef


class Channel(Setup):
    """An e-mail thread pulled into zapsync, Chatwoot's account webhook pointed at zapsync."""

    ours: dict[str, Any]

    async def ready(self, messages: int = 2) -> None:
        await self.connect(BRIDGED_INBOX)  # no session bridged: only other channels matter
        await self.email_thread(messages)
        pulled = await self.pull()
        assert pulled["created"] == 1, pulled
        self.ours = await self.channel_conversation()
        await self.chatwoot.do("POST", "/webhook", json={"url": self.integration["webhook_url"]})

    async def chatwoot_status(self) -> str:
        conversation = await self.chatwoot.client().get_conversation(self.display_id)
        return str(conversation["status"])

    async def our_status(self) -> str:
        return str((await self.call("GET", f"/api/v1/conversations/{self.ours['id']}"))["status"])

    async def set_status(self, status: str) -> None:
        path = f"/api/v1/conversations/{self.ours['id']}"
        await self.call("PATCH", path, json={"status": status})

    async def toggles(self) -> list[str]:
        return await self.chatwoot.toggled(self.display_id)

    async def deliveries(self, event: str) -> list[dict[str, Any]]:
        return [d for d in await self.chatwoot.do("GET", "/deliveries") if d["event"] == event]

    async def all_answered(self) -> None:
        """Every webhook the sandbox posted so far answered (they go in the background, and
        Chatwoot's carry no order to tell a late one by)."""
        await eventually(
            lambda: self.chatwoot.do("GET", "/deliveries"),
            lambda found: all(d["status"] is not None for d in found),
        )

    async def messages(self) -> list[dict[str, Any]]:
        page = await self.call(
            "GET", f"/api/v1/conversations/{self.ours['id']}/messages", params={"limit": 100}
        )
        return list(page["messages"])

    async def chatwoot_message_ids(self) -> list[int]:
        listed = await self.chatwoot.do("GET", f"/conversations/{self.display_id}/messages")
        return [int(m["id"]) for m in listed]


async def test_a_status_set_in_zapsync_reaches_chatwoot_once_and_is_not_echoed(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    channel = Channel(api, tenant, chatwoot)
    await channel.ready()

    await channel.set_status("resolved")
    await eventually(channel.chatwoot_status, lambda status: status == "resolved")
    # Chatwoot's webhooks of that change came back (answered) and changed nothing.
    await eventually(
        lambda: channel.deliveries("conversation_status_changed"),
        lambda found: len(found) == 1 and found[0]["status"] == 200,
    )
    assert await channel.our_status() == "resolved"

    await channel.set_status("open")
    await eventually(channel.chatwoot_status, lambda status: status == "open")
    await channel.all_answered()
    assert await channel.our_status() == "open"

    # An agent resolves it in Chatwoot: taken here, not told back.
    await chatwoot.do(
        "POST", f"/conversations/{channel.display_id}/status", json={"status": "resolved"}
    )
    await eventually(channel.our_status, lambda status: status == "resolved")
    await channel.all_answered()
    # A pull finds Chatwoot and zapsync agreeing: nothing to take, nothing to tell.
    await channel.pull()
    # A later pass of the bridge (woken by a status set on another conversation would do;
    # a message stored wakes it too) tells nothing more.
    await bridge_mirror.mirror_due(ctx)
    assert await channel.toggles() == ["resolved", "open"]
    assert (await channel.chatwoot_status(), await channel.our_status()) == (
        "resolved",
        "resolved",
    )


async def test_a_status_set_while_chatwoot_is_down_reaches_it_once_it_is_back(
    api: httpx.AsyncClient,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bridge's pause after a failure, in milliseconds rather than Chatwoot-friendly seconds.
    monkeypatch.setattr(bridge_mirror, "BACKOFF_BASE", 0.05)
    monkeypatch.setattr(bridge_mirror, "BACKOFF_CAP", 0.5)
    channel = Channel(api, tenant, chatwoot)
    await channel.ready()
    faults = f"{chatwoot.url}/_sandbox/fault"
    (await chatwoot.control.post(faults, json={"fault": "error"})).raise_for_status()
    try:
        await channel.set_status("resolved")
        path = f"/api/v1/integrations/{channel.integration['id']}"
        shown = await eventually(
            lambda: channel.call("GET", path), lambda i: i["status"] == "unavailable"
        )
        assert shown["last_error"] == "Internal Server Error"
        assert await channel.toggles() == []  # refused before the sandbox took it
    finally:
        (await chatwoot.control.post(faults, json={"fault": "none"})).raise_for_status()
    await eventually(channel.chatwoot_status, lambda status: status == "resolved")
    healthy = await eventually(
        lambda: channel.call("GET", path), lambda i: i["status"] == "connected"
    )
    assert healthy["last_error"] is None
    assert await channel.toggles() == ["resolved"]
    assert await channel.our_status() == "resolved"


async def test_messages_edited_or_deleted_in_chatwoot_change_in_zapsync(
    api: httpx.AsyncClient, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    channel = Channel(api, tenant, chatwoot)
    # A message written before the webhook pointed at zapsync: zapsync never saw it.
    await channel.connect(BRIDGED_INBOX)
    await channel.email_thread(2)
    await channel.pull()
    channel.ours = await channel.channel_conversation()
    unseen = await chatwoot.do(
        "POST",
        f"/conversations/{channel.display_id}/agent_messages",
        json={"content": "escrita antes do webhook"},
    )
    await chatwoot.do("POST", "/webhook", json={"url": channel.integration["webhook_url"]})
    first, second, _ = await channel.chatwoot_message_ids()

    # The customer's e-mail edited (as a channel's edit reaches Chatwoot).
    await chatwoot.do("PATCH", f"/messages/{first}", json={"content": "history 1, corrigida"})
    edited = await eventually(
        channel.messages, lambda ms: bool(ms) and ms[0]["body"] == "history 1, corrigida"
    )
    assert edited[0]["edited_at"] is not None and edited[0]["deleted_at"] is None

    # An agent deletes the second, through Chatwoot's API: marked deleted, its text kept.
    async with httpx.AsyncClient(
        base_url=f"{chatwoot.url}/api/v1/accounts/{SANDBOX_ACCOUNT_ID}",
        headers={"api_access_token": SANDBOX_TOKEN},
    ) as agent:
        resp = await agent.delete(f"/conversations/{channel.display_id}/messages/{second}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["content_attributes"] == {"deleted": True}
    deleted = await eventually(
        channel.messages, lambda ms: len(ms) >= 2 and ms[1]["deleted_at"] is not None
    )
    assert deleted[1]["body"] == "history 2"

    # An update of the message zapsync never stored: stored now, as its creation would be.
    await chatwoot.do("PATCH", f"/messages/{unseen['id']}", json={"content": "reescrita"})
    final = await eventually(channel.messages, lambda ms: len(ms) == 3)
    assert [m["body"] for m in final] == ["history 1, corrigida", "history 2", "reescrita"]
    assert final[2]["direction"] == "out"
    listed = await channel.channel_conversation()
    assert listed["last_message_preview"] == "reescrita"
    for delivery in await channel.deliveries("message_updated"):
        assert delivery["status"] == 200, delivery

    # The pull after it finds the thread as zapsync holds it: nothing stored again.
    pulled = await channel.pull()
    assert pulled["errors"] == 0, pulled
    assert [m["body"] for m in await channel.messages()] == [m["body"] for m in final]


def message_updated(setup: Setup, message_id: int, content: str, **fields: Any) -> dict[str, Any]:
    """Chatwoot's `message_updated` (Message#webhook_data) of an e-mail conversation."""
    return {
        "event": "message_updated",
        "id": message_id,
        "content": content,
        "content_type": "text",
        "content_attributes": {},
        "additional_attributes": {},
        "message_type": "incoming",
        "private": False,
        "source_id": None,
        "created_at": "2026-04-16T10:00:00.000Z",
        "account": {"id": SANDBOX_ACCOUNT_ID, "name": "Sandbox"},
        "inbox": {"id": EMAIL_INBOX, "name": "Support e-mail"},
        "sender": {"id": setup.contact["id"], "name": "Ana Email", "email": "ana@example.com"},
        "conversation": {
            "id": setup.display_id,
            "inbox_id": EMAIL_INBOX,
            "status": "open",
            "channel": "Channel::Email",
            "labels": [],
            "meta": {"sender": {"id": setup.contact["id"], "type": "contact"}},
            "last_activity_at": 1776333600,
        },
        **fields,
    }


async def test_a_message_update_delivered_twice_is_applied_and_published_once(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    setup = Setup(client, tenant, chatwoot)
    await setup.connect(BRIDGED_INBOX)
    await setup.email_thread(0)
    seen: list[Event] = []

    async def keep(event: Event) -> None:
        seen.append(event)

    ctx.bus.subscribe(keep, names={"new_message", "message_updated"})

    async def post(payload: dict[str, Any]) -> dict[str, Any]:
        resp = await client.post(setup.webhook_path(), json=payload)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    created = {**message_updated(setup, 9001, "Olá"), "event": "message_created"}
    assert (await post(created))["applied"] == 1
    edit = message_updated(setup, 9001, "Olá, corrigido")
    assert (await post(edit))["applied"] == 1
    again = await post(edit)  # the same delivery twice: one effect
    assert (again["applied"], again["ignored"]) == (0, ["unchanged"])
    # Chatwoot's message_created delivered late (issue #11901): not taken back to "Olá".
    late = await post(created)
    assert (late["applied"], late["ignored"]) == (0, ["duplicate"])
    note = message_updated(setup, 9002, "nota", private=True)
    assert (await post(note))["ignored"] == ["private note"]
    # Deleted in Chatwoot (messages_controller#destroy): marked, once.
    gone = message_updated(setup, 9001, "This message was deleted",
                           content_attributes={"deleted": True})  # fmt: skip
    assert (await post(gone))["applied"] == 1
    assert (await post(gone))["ignored"] == ["unchanged"]
    # An edit of a deleted message changes nothing: deleted is for good.
    assert (await post(edit))["ignored"] == ["unchanged"]
    # Never stored, first seen deleted: stored, marked, without Chatwoot's placeholder.
    unseen = message_updated(setup, 9003, "This message was deleted",
                             content_attributes={"deleted": True})  # fmt: skip
    assert (await post(unseen))["applied"] == 1

    listed = await setup.channel_conversation()
    page = await setup.call("GET", f"/api/v1/conversations/{listed['id']}/messages")
    messages = page["messages"]
    assert [(m["body"], m["deleted_at"] is not None) for m in messages] == [
        ("Olá, corrigido", True),
        (None, True),
    ]
    assert messages[0]["edited_at"] is not None
    published = [(e.name, e.data["id"], e.data["body"], e.data["deleted_at"] is not None)
                 for e in seen]  # fmt: skip
    first, third = messages[0]["id"], messages[1]["id"]
    assert published == [
        ("new_message", first, "Olá", False),
        ("message_updated", first, "Olá, corrigido", False),
        ("message_updated", first, "Olá, corrigido", True),
        ("new_message", third, None, True),
    ]
    assert all(e.conversation_id == listed["id"] for e in seen)


async def test_a_status_set_here_before_zapsync_knew_chatwoots_is_told_after_a_pull(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    """A ref written before zapsync kept what Chatwoot holds (none): a change made here is
    not told blindly; the next pull learns Chatwoot's status, and the change is told then."""
    setup = Setup(client, tenant, chatwoot)
    await setup.connect(BRIDGED_INBOX)
    await setup.email_thread(1)
    await setup.pull()
    async with ctx.db.session() as db:
        await db.execute(
            update(ExternalRef)
            .where(ExternalRef.entity_type == "channel_conversation")
            .values(pushed_fingerprint=None)
        )
        await db.commit()
    ours = await setup.channel_conversation()
    await setup.call("PATCH", f"/api/v1/conversations/{ours['id']}", json={"status": "resolved"})
    await bridge_mirror.mirror_due(ctx)
    assert not await chatwoot.toggled()

    pulled = await setup.pull()  # unchanged in Chatwoot: skipped, its status learnt
    assert pulled["skipped"] == 1, pulled
    assert (await setup.channel_conversation())["status"] == "resolved"  # kept

    async def told() -> list[str]:
        await bridge_mirror.mirror_due(ctx)
        return await chatwoot.toggled()

    assert await eventually(told, lambda found: bool(found)) == ["resolved"]
    conversation = await chatwoot.client().get_conversation(setup.display_id)
    assert conversation["status"] == "resolved"
    assert await told() == ["resolved"]  # once

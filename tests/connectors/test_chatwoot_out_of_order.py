"""Chatwoot's conversation webhooks delivered out of order (Chatwoot issue #11901), over real
HTTP: the sandbox's Chatwoot posts its webhooks to a receiver, and the test hands them to
zapsync in another order than they were sent.

Each conversation record carries its `updated_at` (a float of unix time): zapsync keeps, on
the conversation's ref, the one it applied last. A record older than that one is stale:
answered as ignored ("stale"), it writes nothing (no row, no outbox item, nothing told back to
Chatwoot), for a bridged conversation (the API inbox) as for a conversation of another channel
(e-mail). The status zapsync told Chatwoot, coming back, is answered as ignored ("echo"). A
pull whose record is older than the one applied is skipped the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from tests.conftest import Tenant
from tests.connectors.conftest import ChatwootSandbox
from tests.connectors.test_chatwoot_bridge import Bridge
from tests.connectors.test_chatwoot_channels import BRIDGED_INBOX, Setup
from tests.support.inbox import eventually
from tests.support.receiver import Delivery, Receiver, receiving
from zapsync.runtime.context import AppContext
from zapsync.services.integrations import bridge_mirror
from zapsync.store.models import Conversation, ExternalRef, Message, OutboxItem

STATUS_CHANGED = "conversation_status_changed"


@pytest.fixture
def late() -> Iterator[Receiver]:
    """Where the sandbox's Chatwoot posts its webhooks instead of zapsync: held back."""
    with receiving() as receiver:
        yield receiver


def webhook_path(team: Any) -> str:
    url = urlsplit(team.integration["webhook_url"])
    return f"{url.path}?{url.query}"


async def deliver(api: httpx.AsyncClient, team: Any, delivery: Delivery) -> dict[str, Any]:
    """One held-back webhook handed to zapsync, its body byte for byte."""
    resp = await api.post(
        webhook_path(team), content=delivery.body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def status_changes(late: Receiver, count: int) -> list[Delivery]:
    """The `conversation_status_changed` deliveries, oldest record first."""
    found = await late.wait_for(STATUS_CHANGED, count)
    return sorted(found, key=lambda d: float(d.doc["updated_at"]))


async def snapshot(ctx: AppContext) -> dict[str, Any]:
    """Every row a webhook could write, whole."""
    async with ctx.db.session() as db:
        tables = {}
        for model in (Conversation, ExternalRef, Message, OutboxItem):
            rows = (await db.execute(select(model.__table__).order_by(model.id))).all()
            tables[model.__tablename__] = [tuple(row) for row in rows]
    return tables


async def set_chatwoot_status(chatwoot: ChatwootSandbox, display_id: int, status: str) -> None:
    await chatwoot.do("POST", f"/conversations/{display_id}/status", json={"status": status})


# --- a bridged conversation ---------------------------------------------------------------


async def bridged(
    api: httpx.AsyncClient, tenant: Tenant, chatwoot: ChatwootSandbox, late: Receiver
) -> tuple[Bridge, int]:
    """A WhatsApp conversation mirrored into Chatwoot (display id 1), its inbox's webhooks
    held back from here on; our conversation's id."""
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored()
    (ours,) = (await bridge.call("GET", "/api/v1/conversations"))["items"]
    inbox_id = bridge.integration["config"]["inbox_id"]
    await chatwoot.do("POST", f"/inboxes/{inbox_id}/webhook", json={"webhook_url": late.url})
    return bridge, int(ours["id"])


async def our_status(team: Any, conversation_id: int) -> str:
    return str((await team.call("GET", f"/api/v1/conversations/{conversation_id}"))["status"])


async def test_a_bridged_conversations_status_webhooks_in_reverse_order_leave_the_newer(
    api: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    late: Receiver,
) -> None:
    bridge, ours = await bridged(api, tenant, chatwoot, late)
    # An agent resolves the conversation, then reopens it; the reopening arrives first.
    await set_chatwoot_status(chatwoot, 1, "resolved")
    await set_chatwoot_status(chatwoot, 1, "open")
    resolved, reopened = await status_changes(late, 2)
    assert (resolved.doc["status"], reopened.doc["status"]) == ("resolved", "open")
    assert isinstance(reopened.doc["updated_at"], float)

    newer = await deliver(api, bridge, reopened)
    assert (newer["applied"], newer["ignored"]) == (0, ["unchanged"]), newer
    before = await snapshot(ctx)
    older = await deliver(api, bridge, resolved)
    assert (older["applied"], older["ignored"]) == (0, ["stale"]), older
    assert await our_status(bridge, ours) == "open"
    assert await snapshot(ctx) == before  # nothing written, nothing queued
    await bridge_mirror.mirror_due(ctx)
    assert await chatwoot.toggled() == []  # nothing told back

    # Now the other way: pending, then resolved; the resolution arrives first and is taken.
    await set_chatwoot_status(chatwoot, 1, "pending")
    await set_chatwoot_status(chatwoot, 1, "resolved")
    _, _, pending, resolved_again = await status_changes(late, 4)
    newer = await deliver(api, bridge, resolved_again)
    assert (newer["applied"], newer["ignored"]) == (1, None), newer
    assert await our_status(bridge, ours) == "resolved"
    before = await snapshot(ctx)
    older = await deliver(api, bridge, pending)
    assert (older["applied"], older["ignored"]) == (0, ["stale"]), older
    assert await snapshot(ctx) == before
    # The same record delivered again (its `conversation_updated` twin included): one effect.
    again = await deliver(api, bridge, resolved_again)
    assert (again["applied"], again["ignored"]) == (0, ["unchanged"]), again
    (twin,) = [d for d in late.of("conversation_updated") if d.doc["updated_at"]
               == resolved_again.doc["updated_at"]]  # fmt: skip
    assert (await deliver(api, bridge, twin))["ignored"] == ["unchanged"]
    assert await our_status(bridge, ours) == "resolved"
    await bridge_mirror.mirror_due(ctx)
    assert await chatwoot.toggled() == []


async def test_a_bridged_conversations_echo_is_ignored_and_said_so(
    api: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    late: Receiver,
) -> None:
    bridge, ours = await bridged(api, tenant, chatwoot, late)
    await bridge.call("PATCH", f"/api/v1/conversations/{ours}", json={"status": "resolved"})
    await eventually(chatwoot.toggled, lambda found: found == ["resolved"])
    (echo,) = await status_changes(late, 1)
    answer = await deliver(api, bridge, echo)
    assert (answer["applied"], answer["ignored"]) == (0, ["echo"]), answer
    assert await our_status(bridge, ours) == "resolved"


async def test_a_bridged_pull_older_than_the_webhook_applied_changes_nothing(
    api: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    late: Receiver,
) -> None:
    """A pulled page read before a webhook that overtook it: its record is older than the
    one applied, skipped (counted stale); the next, newer one is applied."""
    bridge, ours = await bridged(api, tenant, chatwoot, late)
    await set_chatwoot_status(chatwoot, 1, "resolved")
    (resolved,) = await status_changes(late, 1)
    assert (await deliver(api, bridge, resolved))["applied"] == 1
    # As if a newer record had been applied since (a webhook from the future).
    ahead = datetime.now(UTC) + timedelta(hours=1)
    async with ctx.db.session() as db:
        await db.execute(
            update(ExternalRef)
            .where(ExternalRef.entity_type == "conversation", ExternalRef.external_id == "1")
            .values(upstream_updated_at=ahead)
        )
        await db.commit()
    await set_chatwoot_status(chatwoot, 1, "open")  # its webhook held back: only a pull tells
    body = {"provider": "chatwoot", "entity_type": "conversations", "direction": "pull"}
    pulled = (await bridge.call("POST", "/api/v1/sync/run", json=body))["data"]
    assert (pulled["updated"], pulled["errors"]) == (0, 0), pulled
    assert await our_status(bridge, ours) == "resolved"
    async with ctx.db.session() as db:
        await db.execute(
            update(ExternalRef)
            .where(ExternalRef.entity_type == "conversation", ExternalRef.external_id == "1")
            .values(upstream_updated_at=ahead - timedelta(hours=2))
        )
        await db.commit()
    pulled = (await bridge.call("POST", "/api/v1/sync/run", json=body))["data"]
    assert pulled["updated"] == 1, pulled
    assert await our_status(bridge, ours) == "open"
    async with ctx.db.session() as db:
        held = await db.scalar(
            select(ExternalRef.upstream_updated_at).where(
                ExternalRef.entity_type == "conversation", ExternalRef.external_id == "1"
            )
        )
    chatwoots = await chatwoot.client().get_conversation(1)
    assert held == datetime.fromtimestamp(chatwoots["updated_at"], UTC)


# --- a conversation of another channel (e-mail) ---------------------------------------------


async def email_channel(
    client: httpx.AsyncClient, tenant: Tenant, chatwoot: ChatwootSandbox, late: Receiver
) -> tuple[Setup, int]:
    """An e-mail thread pulled into zapsync, Chatwoot's account webhook held back; our id."""
    setup = Setup(client, tenant, chatwoot)
    await setup.connect(BRIDGED_INBOX)
    await setup.email_thread(2)
    pulled = await setup.pull()
    assert pulled["created"] == 1, pulled
    await chatwoot.do("POST", "/webhook", json={"url": late.url})
    return setup, int((await setup.channel_conversation())["id"])


async def test_a_channel_conversations_status_webhooks_in_reverse_order_leave_the_newer(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    late: Receiver,
) -> None:
    setup, ours = await email_channel(client, tenant, chatwoot, late)
    await set_chatwoot_status(chatwoot, setup.display_id, "resolved")
    await set_chatwoot_status(chatwoot, setup.display_id, "open")
    resolved, reopened = await status_changes(late, 2)

    newer = await deliver(client, setup, reopened)
    assert newer["applied"] == 0, newer  # open already: nothing new
    before = await snapshot(ctx)
    older = await deliver(client, setup, resolved)
    assert (older["applied"], older["ignored"]) == (0, ["stale"]), older
    # Its `conversation_updated` twin too.
    (twin,) = [d for d in late.of("conversation_updated")
               if d.doc["updated_at"] == resolved.doc["updated_at"]]  # fmt: skip
    assert (await deliver(client, setup, twin))["ignored"] == ["stale"]
    assert await our_status(setup, ours) == "open"
    assert await snapshot(ctx) == before
    await bridge_mirror.mirror_due(ctx)
    assert await chatwoot.toggled() == []

    await set_chatwoot_status(chatwoot, setup.display_id, "pending")
    await set_chatwoot_status(chatwoot, setup.display_id, "resolved")
    _, _, pending, resolved_again = await status_changes(late, 4)
    newer = await deliver(client, setup, resolved_again)
    assert (newer["applied"], newer["ignored"]) == (1, None), newer
    assert await our_status(setup, ours) == "resolved"
    before = await snapshot(ctx)
    older = await deliver(client, setup, pending)
    assert (older["applied"], older["ignored"]) == (0, ["stale"]), older
    assert await snapshot(ctx) == before
    again = await deliver(client, setup, resolved_again)  # the same record: one effect
    assert (again["applied"], again["ignored"]) == (0, ["unchanged"]), again
    assert await our_status(setup, ours) == "resolved"
    await bridge_mirror.mirror_due(ctx)
    assert await chatwoot.toggled() == []

    # The next pull finds Chatwoot's record as applied: nothing written.
    pulled = await setup.pull()
    assert (pulled["updated"], pulled["errors"]) == (1, 0), pulled  # the webhook's cleared print
    before = await snapshot(ctx)
    pulled = await setup.pull()
    assert (pulled["skipped"], pulled["updated"]) == (1, 0), pulled
    assert await snapshot(ctx) == before


async def test_a_stale_message_webhook_stores_its_message_and_keeps_the_conversation(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    late: Receiver,
) -> None:
    """A customer's e-mail whose webhook arrives after the conversation was resolved: the
    message is stored; the older conversation record it carries does not reopen it."""
    setup, ours = await email_channel(client, tenant, chatwoot, late)
    await chatwoot.do(
        "POST",
        f"/conversations/{setup.display_id}/agent_messages",
        json={"content": "Resolvido, obrigado"},
    )
    (message,) = await late.wait_for("message_created", 1)
    await set_chatwoot_status(chatwoot, setup.display_id, "resolved")
    (resolved,) = await status_changes(late, 1)
    assert (await deliver(client, setup, resolved))["applied"] == 1
    answer = await deliver(client, setup, message)
    assert answer["applied"] == 1, answer
    assert await our_status(setup, ours) == "resolved"
    page = await setup.call("GET", f"/api/v1/conversations/{ours}/messages")
    assert page["messages"][-1]["body"] == "Resolvido, obrigado"
    assert (await deliver(client, setup, message))["ignored"] == ["duplicate"]


async def test_a_channel_conversations_echo_is_ignored_and_said_so(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    late: Receiver,
) -> None:
    setup, ours = await email_channel(client, tenant, chatwoot, late)
    await setup.call("PATCH", f"/api/v1/conversations/{ours}", json={"status": "resolved"})

    async def told() -> list[str]:
        await bridge_mirror.mirror_due(ctx)
        return await chatwoot.toggled()

    assert await eventually(told, lambda found: bool(found)) == ["resolved"]
    (echo,) = await status_changes(late, 1)
    before = await snapshot(ctx)
    answer = await deliver(client, setup, echo)
    assert (answer["applied"], answer["ignored"]) == (0, ["echo"]), answer
    (twin,) = late.of("conversation_updated")
    assert (await deliver(client, setup, twin))["ignored"] == ["unchanged"]
    assert await our_status(setup, ours) == "resolved"
    after = await snapshot(ctx)
    assert (after["messages"], after["outbox"]) == (before["messages"], before["outbox"])
    assert await told() == ["resolved"]  # told once

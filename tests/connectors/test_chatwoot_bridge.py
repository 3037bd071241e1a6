"""The two-way bridge over real HTTP: zapsync served on a port (where the sandbox Chatwoot posts
its API inbox's webhooks), its built-in sandbox phone, and the sandbox Chatwoot.

A WhatsApp message appears in the Chatwoot inbox once; an agent's reply reaches WhatsApp once,
even delivered twice; a private note and zapsync's own
writes never go to WhatsApp; a webhook without the URL's token, or with a bad or stale
signature, is refused with 401 and changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.connectors.conftest import ChatwootSandbox, ChatwootTeam
from tests.support.inbox import eventually
from tests.support.servers import serving_zapsync
from zapsync.connectors.chatwoot.signatures import expected_signature
from zapsync.runtime.context import AppContext
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.services.integrations import bridge_mirror
from zapsync.settings import Settings
from zapsync.store.models import OutboxItem

CUSTOMER = "5511987654321"


class Bridge(ChatwootTeam):
    session_id = 0

    async def set_up(self) -> None:
        session = await self.call(
            "POST", "/api/v1/sessions", json={"name": "loja", "provider": "sandbox", "config": {}}
        )
        self.session_id = session["id"]
        await self.call("POST", f"/api/v1/sandbox/sessions/{self.session_id}/scan")
        await self.connect("create", [self.session_id])

    async def first_message_mirrored(self, body: str = "Oi") -> None:
        """The bridge set up, and a customer's first message in the Chatwoot inbox."""
        await self.set_up()
        await self.inbound(body)
        await eventually(self.chatwoot_messages, lambda m: len(m) == 1)

    async def inbound(self, body: str) -> None:
        await self.call(
            "POST",
            f"/api/v1/sandbox/sessions/{self.session_id}/inbound",
            json={"from_phone": CUSTOMER, "body": body},
        )

    async def chatwoot_conversations(self) -> list[dict[str, Any]]:
        state = await self.chatwoot.do("GET", "/state")
        return [{"id": n} for n in range(1, state["conversations"] + 1)]

    async def chatwoot_messages(self, display_id: int = 1) -> list[dict[str, Any]]:
        resp = await self.chatwoot.control.get(f"/conversations/{display_id}/messages")
        return list(resp.json()) if resp.status_code == 200 else []

    async def sent_to_whatsapp(self) -> list[str | None]:
        phone = await self.call("GET", f"/api/v1/sandbox/sessions/{self.session_id}")
        return [s["body"] for s in phone["sent"]]


def contents(messages: list[dict[str, Any]]) -> list[str | None]:
    return [m.get("content") for m in messages]


async def test_whatsapp_and_chatwoot_talk_both_ways_once(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.set_up()
    await bridge.inbound("Oi, quero um orçamento")
    mirrored = await eventually(bridge.chatwoot_messages, lambda m: len(m) >= 1)
    assert contents(mirrored) == ["Oi, quero um orçamento"]
    assert mirrored[0]["message_type"] == 0  # incoming: the customer's

    reply = await chatwoot.do(
        "POST", "/conversations/1/agent_messages", json={"content": "Olá! Envio já."}
    )
    await eventually(bridge.sent_to_whatsapp, lambda sent: "Olá! Envio já." in sent)
    await chatwoot.do(
        "POST", "/conversations/1/agent_messages", json={"content": "nota", "private": True}
    )
    # the same delivery again, as Chatwoot sends duplicates (issue #11901)
    deliveries = await chatwoot.do("GET", "/deliveries")
    first = next(d for d in deliveries if d["event"] == "message_created" and d["status"] == 200)
    again = await httpx.AsyncClient().post(
        first["url"], content=_body_of_reply(reply), headers={"content-type": "application/json"}
    )
    assert again.status_code == 200 and again.json()["ignored"] == ["duplicate"], again.text
    await bridge.inbound("Obrigado")
    final = await eventually(bridge.chatwoot_messages, lambda m: len(m) >= 4)
    assert contents(final) == ["Oi, quero um orçamento", "Olá! Envio já.", "nota", "Obrigado"]
    assert (await bridge.sent_to_whatsapp()).count("Olá! Envio já.") == 1
    assert "nota" not in await bridge.sent_to_whatsapp()
    assert len(await bridge.chatwoot_conversations()) == 1


def _body_of_reply(reply: dict[str, Any]) -> bytes:
    """A `message_created` delivery of the agent's reply, as Chatwoot posts it."""
    payload = {**reply, "event": "message_created", "message_type": "outgoing",
               "conversation": {"id": reply.get("conversation_id", 1)}}  # fmt: skip
    return json.dumps(payload).encode()


async def test_webhooks_without_proof_are_refused_and_change_nothing(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored()
    hook = f"/api/v1/integrations/{bridge.integration['id']}/webhook"
    reply = {"id": 9001, "content": "forjada", "message_type": "outgoing", "private": False,
             "conversation": {"id": 1}, "event": "message_created"}  # fmt: skip
    body = json.dumps(reply).encode()
    for params in ({}, {"token": "wrong"}):
        refused = await api.post(hook, params=params, content=body)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    seed_hook = await api.post("/api/v1/sync/chatwoot/webhook", params={"token": "x"}, content=body)
    assert seed_hook.status_code == 401

    # with a webhook secret, only Chatwoot's signature is proof
    await bridge.call(
        "PATCH",
        f"/api/v1/integrations/{bridge.integration['id']}",
        json={"config": {"webhook_secret": "cw-secret"}},
    )
    token = bridge.integration["webhook_url"].split("token=", 1)[1]
    now = str(int(time.time()))
    stale = str(int(time.time()) - 600)
    cases = [
        {"X-Chatwoot-Timestamp": now, "X-Chatwoot-Signature": "sha256=" + "0" * 64},
        {"X-Chatwoot-Timestamp": stale,
         "X-Chatwoot-Signature": expected_signature("cw-secret", stale, body)},
        {},
    ]  # fmt: skip
    for headers in cases:
        refused = await api.post(hook, params={"token": token}, content=body, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
    good = {"X-Chatwoot-Timestamp": now,
            "X-Chatwoot-Signature": expected_signature("cw-secret", now, body)}  # fmt: skip
    async with ctx.db.session() as db:
        queued = await db.scalar(select(func.count()).select_from(OutboxItem))
    assert queued == 0, "nothing refused was queued"
    accepted = await api.post(hook, content=body, headers=good)
    assert accepted.status_code == 200 and accepted.json()["applied"] == 1, accepted.text
    await eventually(bridge.sent_to_whatsapp, lambda sent: "forjada" in sent)
    malformed = await api.post(hook, content=b"{not json", headers=good)
    assert malformed.status_code in (400, 401)


async def test_resolving_on_either_side_resolves_on_the_other_once(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored()
    (ours,) = (await bridge.call("GET", "/api/v1/conversations"))["items"]

    async def chatwoot_status() -> str:
        conversation = await chatwoot.client().get_conversation(1)
        return str(conversation["status"])

    await bridge.call("PATCH", f"/api/v1/conversations/{ours['id']}", json={"status": "resolved"})
    await eventually(chatwoot_status, lambda status: status == "resolved")

    # Reopened by an agent in Chatwoot: reopened here, and not told back to Chatwoot.
    await chatwoot.do("POST", "/conversations/1/status", json={"status": "open"})

    async def our_status() -> str:
        return str((await bridge.call("GET", f"/api/v1/conversations/{ours['id']}"))["status"])

    await eventually(our_status, lambda status: status == "open")
    await bridge.inbound("Ainda preciso de ajuda")  # a pass of the bridge runs after it
    await eventually(bridge.chatwoot_messages, lambda m: len(m) == 2)
    assert await chatwoot.toggled() == ["resolved"]
    assert await chatwoot_status() == "open"


async def test_messages_written_while_chatwoot_is_down_arrive_once_after_it_returns(
    settings: Settings,
    ctx: AppContext,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if settings.database_url.startswith("sqlite"):
        # Restarted in this same process, a task the first server cancelled at shutdown can
        # keep an SQLite connection (and the write lock) open; a real restart is a new process.
        pytest.skip("a restart within one process; run on PostgreSQL")
    # The bridge's pause after a failure, in milliseconds rather than Chatwoot-friendly seconds.
    monkeypatch.setattr(bridge_mirror, "BACKOFF_BASE", 0.05)
    monkeypatch.setattr(bridge_mirror, "BACKOFF_CAP", 0.5)
    faults = f"{chatwoot.url}/_sandbox/fault"
    with serving_zapsync(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            bridge = Bridge(api, tenant, chatwoot)
            await bridge.first_message_mirrored("1 antes da queda")
            (await chatwoot.control.post(faults, json={"fault": "error"})).raise_for_status()
            await bridge.inbound("2 durante a queda")
            await bridge.inbound("3 durante a queda")
            # the bridge tried, Chatwoot answered 500, and the integration says so
            path = f"/api/v1/integrations/{bridge.integration['id']}"
            shown = await eventually(
                lambda: bridge.call("GET", path), lambda i: i["status"] == "unavailable"
            )
            assert shown["last_error"] == "Internal Server Error"
    # zapsync restarts while Chatwoot is still down, and a customer writes meanwhile.
    with serving_zapsync(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            bridge.api = api
            await bridge.inbound("4 depois do reinício")
            assert contents(await bridge.chatwoot_messages()) == ["1 antes da queda"]
            (await chatwoot.control.post(faults, json={"fault": "none"})).raise_for_status()
            final = await eventually(bridge.chatwoot_messages, lambda m: len(m) >= 4)
            await bridge.inbound("5 normal")
            final = await eventually(bridge.chatwoot_messages, lambda m: len(m) >= 5)
            healthy = await bridge.call("GET", path)
            assert (healthy["status"], healthy["last_error"]) == ("connected", None)
    assert contents(final) == [
        "1 antes da queda",
        "2 durante a queda",
        "3 durante a queda",
        "4 depois do reinício",
        "5 normal",
    ]
    assert len(await bridge.chatwoot_conversations()) == 1


async def test_a_file_sent_from_zapsync_reaches_chatwoot_as_an_attachment(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored("Manda o catálogo?")
    (ours,) = (await bridge.call("GET", "/api/v1/conversations"))["items"]
    pdf = b"%PDF-1.4 catalogo" + b"." * 2048
    sent = await api.post(
        f"/api/v1/conversations/{ours['id']}/messages",
        headers=tenant.headers,
        files={"file": ("catalogo.pdf", pdf, "application/pdf")},
        data={"caption": "Segue o catálogo"},
    )
    assert sent.status_code in (200, 201, 202), sent.text
    mirrored = await eventually(bridge.chatwoot_messages, lambda m: len(m) == 2)
    assert mirrored[1]["content"] == "Segue o catálogo"
    assert [a["file_type"] for a in mirrored[1]["attachments"]] == ["file"]
    writes = await chatwoot.do("GET", "/writes")
    posted = [w for w in writes if w["path"].endswith("/messages") and w.get("files")]
    assert [w["files"] for w in posted] == [["catalogo.pdf"]]


async def test_one_reply_delivered_three_times_at_once_reaches_whatsapp_once(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored()
    reply = {"id": 777, "content": "Uma vez só", "message_type": "outgoing", "private": False,
             "conversation": {"id": 1}, "event": "message_created"}  # fmt: skip
    url = bridge.integration["webhook_url"]
    body = json.dumps(reply).encode()
    async with httpx.AsyncClient(timeout=30) as poster:
        answers = await asyncio.gather(*(poster.post(url, content=body) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200], [a.text for a in answers]
    assert sum(a.json()["applied"] for a in answers) == 1
    await eventually(bridge.sent_to_whatsapp, lambda sent: "Uma vez só" in sent)
    async with ctx.db.session() as db:
        queued = await db.scalar(select(func.count()).select_from(OutboxItem))
    assert queued == 1
    assert (await bridge.sent_to_whatsapp()).count("Uma vez só") == 1


async def test_a_pull_brings_what_missed_webhooks_should_have_told(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored()
    inbox_id = bridge.integration["config"]["inbox_id"]
    # Chatwoot's deliveries are lost from here on (it never retries one).
    await chatwoot.do("POST", f"/inboxes/{inbox_id}/webhook", json={"webhook_url": ""})
    await chatwoot.do("POST", "/conversations/1/agent_messages", json={"content": "Perdida?"})
    await chatwoot.do("POST", "/conversations/1/status", json={"status": "resolved"})
    someone = await chatwoot.do("POST", "/contacts", json={"fields": {"name": "Por e-mail"}})
    await chatwoot.do(
        "POST", "/conversations", json={"contact_id": someone["id"], "inbox_id": 2, "messages": 2}
    )
    assert "Perdida?" not in await bridge.sent_to_whatsapp()

    async def run(entity: str) -> dict[str, Any]:
        body = {"provider": "chatwoot", "entity_type": entity, "direction": "pull"}
        return dict((await bridge.call("POST", "/api/v1/sync/run", json=body))["data"])

    conversations = await run("conversations")
    # the bridged one updated; the e-mail one stored as the integration's (never bridged)
    assert (conversations["updated"], conversations["created"]) == (1, 1), conversations
    listed = (await bridge.call("GET", "/api/v1/conversations"))["items"]
    (ours,) = [c for c in listed if c["session_id"] == bridge.session_id]
    assert ours["status"] == "resolved"
    assert [c["channel"] for c in listed if c["session_id"] is None] == ["email"]
    replies = await run("messages")
    assert (replies["created"], replies["errors"]) == (1, 0), replies
    await eventually(bridge.sent_to_whatsapp, lambda sent: "Perdida?" in sent)
    again = await run("messages")
    assert (again["created"], again["skipped"]) == (0, 1), again
    assert (await bridge.sent_to_whatsapp()).count("Perdida?") == 1
    # resolved in Chatwoot is not told back to Chatwoot
    writes = await chatwoot.do("GET", "/writes")
    assert not [w for w in writes if w["path"].endswith("/toggle_status")]


async def test_labels_set_in_chatwoot_are_kept_on_the_conversation(
    api: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, chatwoot: ChatwootSandbox
) -> None:
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored()
    (ours,) = (await bridge.call("GET", "/api/v1/conversations"))["items"]
    assert ours["labels"] == []
    labels_path = f"/api/v1/accounts/{SANDBOX_ACCOUNT_ID}/conversations/1/labels"
    agent = {"api_access_token": SANDBOX_TOKEN}

    async def our_labels() -> list[str]:
        return list((await bridge.call("GET", f"/api/v1/conversations/{ours['id']}"))["labels"])

    # An agent labels the conversation: its webhook brings the labels, as a set.
    async with httpx.AsyncClient(base_url=chatwoot.url, headers=agent) as cw:
        labelled = await cw.post(labels_path, json={"labels": ["vip", "suporte", "vip"]})
        assert labelled.json() == {"payload": ["suporte", "vip"]}
        await eventually(our_labels, lambda labels: labels == ["suporte", "vip"])

        # A change whose webhook is lost: the next conversations pull brings it, once.
        inbox_id = bridge.integration["config"]["inbox_id"]
        await chatwoot.do("POST", f"/inboxes/{inbox_id}/webhook", json={"webhook_url": ""})
        await cw.post(labels_path, json={"labels": ["suporte"]})
    body = {"provider": "chatwoot", "entity_type": "conversations", "direction": "pull"}
    pulled = (await bridge.call("POST", "/api/v1/sync/run", json=body))["data"]
    assert (pulled["updated"], pulled["errors"]) == (1, 0), pulled
    assert await our_labels() == ["suporte"]
    again = (await bridge.call("POST", "/api/v1/sync/run", json=body))["data"]
    assert (again["updated"], again["skipped"]) == (0, 1), again
    # Labels are Chatwoot's: zapsync wrote none back.
    writes = await chatwoot.do("GET", "/writes")
    assert not [w for w in writes if "labels" in w["path"]]


async def test_pushing_messages_by_hand_sends_what_the_paused_bridge_still_owes_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    chatwoot: ChatwootSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After a failure the bridge waits a minute before it tries again by itself.
    monkeypatch.setattr(bridge_mirror, "BACKOFF_BASE", 60.0)
    bridge = Bridge(api, tenant, chatwoot)
    await bridge.first_message_mirrored("1 antes da queda")
    faults = f"{chatwoot.url}/_sandbox/fault"
    (await chatwoot.control.post(faults, json={"fault": "error"})).raise_for_status()
    await bridge.inbound("2 durante a queda")
    path = f"/api/v1/integrations/{bridge.integration['id']}"
    await eventually(lambda: bridge.call("GET", path), lambda i: i["status"] == "unavailable")

    async def push() -> dict[str, Any]:
        body = {"provider": "chatwoot", "entity_type": "messages", "direction": "push"}
        return dict((await bridge.call("POST", "/api/v1/sync/run", json=body))["data"])

    down = await push()
    assert (down["created"], down["errors"]) == (0, 1), down
    (await chatwoot.control.post(faults, json={"fault": "none"})).raise_for_status()
    back = await push()
    assert (back["created"], back["errors"]) == (1, 0), back
    assert contents(await bridge.chatwoot_messages()) == ["1 antes da queda", "2 durante a queda"]
    assert (await bridge.call("GET", path))["status"] == "connected"
    again = await push()
    assert (again["created"], again["errors"]) == (0, 0), again
    runs = await bridge.call("GET", "/api/v1/sync/runs", params={"kind": "chatwoot_mirror_push"})
    assert len(runs["data"]) == 3, runs

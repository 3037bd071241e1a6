"""The sandbox's Chatwoot dialect over real HTTP, as Chatwoot behaves: its envelopes and page
sizes (the contract samples' keys), its error bodies, its throttle, and its signed webhooks
(checked with zapsync's own verifier) when an agent writes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.receiver import Receiver
from tests.support.servers import serving_app
from zapsync.connectors.chatwoot.mapping import map_message
from zapsync.connectors.chatwoot.signatures import SignatureRefused, verify_signature
from zapsync.sandbox.dialects import DIALECTS
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_TOKEN
from zapsync.sandbox.server import build_sandbox_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "chatwoot"
API = "/api/v1/accounts/1"
SECRET = "account-webhook-secret"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving_app(build_sandbox_app("chatwoot")) as url,
        httpx.AsyncClient(
            base_url=url, headers={"api_access_token": SANDBOX_TOKEN}, timeout=60
        ) as client,
    ):
        yield client


async def ok(resp: Any) -> Any:
    response = await resp
    assert response.status_code == 200, response.text
    return response.json()


async def seed_conversation(http: httpx.AsyncClient, messages: int = 0) -> dict[str, Any]:
    contact = await ok(http.post("/_sandbox/chatwoot/contacts", json={
        "fields": {"name": "Maria Souza", "phone_number": "+5511987654321"}}))  # fmt: skip
    conv: dict[str, Any] = await ok(
        http.post(
            "/_sandbox/chatwoot/conversations",
            json={"contact_id": contact["id"], "messages": messages},
        )
    )
    return conv


def test_the_chatwoot_dialect_is_registered() -> None:
    assert "chatwoot" in DIALECTS


async def test_envelopes_and_fields_are_chatwoots(http: httpx.AsyncClient) -> None:
    await ok(http.post("/_sandbox/chatwoot/contacts/seed", json={"count": 20}))
    conv = await seed_conversation(http, messages=3)
    first = await ok(http.get(f"{API}/contacts"))
    second = await ok(http.get(f"{API}/contacts", params={"page": 2}))
    sample = fixture("contacts.list.page1.response.json")
    assert set(first) == set(sample) and set(first["meta"]) == set(sample["meta"])
    assert set(first["payload"][0]) == set(sample["payload"][0])
    assert first["meta"]["current_page"] == 1 and second["meta"]["current_page"] == "2"
    assert len(first["payload"]) == 15 and len(second["payload"]) == 6
    assert first["meta"]["count"] == 21

    convs = await ok(http.get(f"{API}/conversations", params={"status": "all"}))
    sample = fixture("conversations.list.response.json")
    assert set(convs["data"]["meta"]) == set(sample["data"]["meta"])
    assert set(sample["data"]["payload"][0]) <= set(convs["data"]["payload"][0])

    msgs = await ok(http.get(f"{API}/conversations/{conv['id']}/messages"))
    sample = fixture("messages.list.response.json")
    assert set(msgs["meta"]) == set(sample["meta"])
    assert set(msgs["payload"][0]) == set(sample["payload"][0])
    assert isinstance(msgs["payload"][0]["message_type"], int)
    assert isinstance(msgs["payload"][0]["created_at"], int)


async def test_errors_have_chatwoots_bodies(http: httpx.AsyncClient) -> None:
    bad = await http.get(f"{API}/contacts", headers={"api_access_token": "nope"})
    assert (bad.status_code, bad.json()) == (401, fixture("error.401.json"))
    unknown = await http.get("/api/v1/accounts/77/contacts")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Resource could not be found"})
    body = {"name": "Maria", "phone_number": "+5511987654321"}
    assert (await http.post(f"{API}/contacts", json=body)).status_code == 200
    taken = await http.post(f"{API}/contacts", json={**body, "name": "Maria S."})
    assert (taken.status_code, taken.json()) == (422, fixture("error.422.phone-taken.json"))
    blank = await http.get(f"{API}/contacts/search", params={"q": ""})
    assert blank.json() == {"error": "Specify search string with parameter q"}


async def test_injected_429s_are_plain_text_without_retry_after(http: httpx.AsyncClient) -> None:
    await ok(http.post("/_sandbox/chatwoot/throttle", json={"count": 2}))
    answers = [await http.get(f"{API}/inboxes") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].text == "Retry later"
    assert answers[0].headers["content-type"].startswith("text/plain")
    assert "retry-after" not in answers[0].headers


async def test_contacts_with_only_a_name_are_not_listed(http: httpx.AsyncClient) -> None:
    await ok(http.post("/_sandbox/chatwoot/contacts", json={"fields": {"name": "Só nome"}}))
    listed = await ok(http.get(f"{API}/contacts"))
    assert listed["payload"] == [] and listed["meta"]["count"] == 0


async def test_fifty_thousand_seeded_contacts_page_to_the_end(http: httpx.AsyncClient) -> None:
    await ok(http.post("/_sandbox/chatwoot/contacts/seed", json={"count": 50_000}))
    last = await ok(http.get(f"{API}/contacts", params={"page": 3334}))
    past = await ok(http.get(f"{API}/contacts", params={"page": 3335}))
    assert len(last["payload"]) == 50_000 - 3333 * 15
    assert last["payload"][-1]["name"] == "Seeded 49999"
    assert past["payload"] == []


async def test_an_agent_reply_is_posted_signed_once(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await ok(http.post("/_sandbox/chatwoot/webhook", json={"url": receiver.url, "secret": SECRET}))
    conv = await seed_conversation(http)
    await ok(http.post(f"/_sandbox/chatwoot/conversations/{conv['id']}/agent_messages",
                       json={"content": "Entregamos sim, até as 18h."}))  # fmt: skip
    await ok(http.post(f"/_sandbox/chatwoot/conversations/{conv['id']}/agent_messages",
                       json={"content": "nota interna", "private": True}))  # fmt: skip
    delivered = await receiver.wait_for("message_created", count=2, within=30)
    # Each delivery is its own job, as in Chatwoot: they may arrive in either order.
    [reply] = [d for d in delivered if not d.doc["private"]]
    [note] = [d for d in delivered if d.doc["private"]]
    headers = reply.headers
    stamp = verify_signature(SECRET, reply.body, headers["x-chatwoot-signature"],
                             headers["x-chatwoot-timestamp"])  # fmt: skip
    assert stamp > 0
    with pytest.raises(SignatureRefused):
        verify_signature(SECRET, reply.body + b"\n", headers["x-chatwoot-signature"],
                         headers["x-chatwoot-timestamp"])  # fmt: skip
    assert reply.headers["x-chatwoot-delivery"] != note.headers["x-chatwoot-delivery"]
    msg = map_message(reply.doc)
    assert reply.doc["message_type"] == "outgoing"
    assert reply.doc["created_at"].endswith("Z")
    assert msg.reaches_whatsapp and msg.body == "Entregamos sim, até as 18h."
    assert map_message(note.doc).private
    assert set(fixture("webhook.message_created.json")) == set(reply.doc)


async def test_an_api_inbox_webhook_gets_message_events_unsigned_without_a_secret(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await ok(http.post("/_sandbox/chatwoot/webhook", json={"url": receiver.url}))
    conv = await seed_conversation(http)
    await ok(http.post(f"{API}/conversations/{conv['id']}/messages",
                       json={"content": "oi", "message_type": "incoming"}))  # fmt: skip
    await ok(http.post(f"{API}/conversations/{conv['id']}/toggle_status",
                       json={"status": "resolved"}))  # fmt: skip
    [created] = await receiver.wait_for("message_created", within=30)
    await receiver.wait_for("conversation_status_changed", within=30)
    assert "x-chatwoot-signature" not in created.headers
    assert "x-chatwoot-delivery" in created.headers
    assert created.doc["message_type"] == "incoming"
    assert "type" not in created.doc["sender"]  # a contact's webhook_data has none

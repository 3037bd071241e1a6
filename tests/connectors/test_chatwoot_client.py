"""The Chatwoot client against the sandbox's Chatwoot dialect over real HTTP: every page of
contacts once through 429s, Chatwoot's own reasons for bad credentials, the typed "already
taken" error a caller links on, messages paged back with `before=`, and the bridge's writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.connectors.conftest import ChatwootSandbox
from zapsync.connectors.chatwoot import (
    ChatwootAuthError,
    ChatwootContactTaken,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootRejected,
    ChatwootUnavailable,
)
from zapsync.connectors.chatwoot.client import Attachment, ChatwootClient
from zapsync.connectors.chatwoot.mapping import map_contact
from zapsync.connectors.chatwoot.paginators import PageNumberPaginator, paginate_ahead
from zapsync.providers.registry import GatewayFactory
from zapsync.sandbox.world import World


@pytest.fixture(params=["httpx", "bare"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[GatewayFactory | None]:
    """No pool (the client's own httpx) or zapsync's shared one, whose bare GET reads pages."""
    if request.param == "httpx":
        yield None
        return
    factory = GatewayFactory(World(), timeout=10)
    yield factory
    await factory.aclose()


async def test_pull_of_1234_contacts_through_429s_gets_each_once(
    chatwoot: ChatwootSandbox, pool: GatewayFactory | None
) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 1234})
    await chatwoot.do("POST", "/throttle", json={"count": 3})
    seen: list[int] = []
    options = {} if pool is None else {"http": pool.client, "bare_get": pool.bare_get}
    async with chatwoot.client(**options) as client:
        pages = 0
        async for page in client.contact_pages():
            pages += 1
            seen.extend(int(c["id"]) for c in page)
            if pages in (10, 40):  # Chatwoot throttles again midway
                await chatwoot.do("POST", "/throttle", json={"count": 2})
        throttled = client.throttled
    assert len(seen) == 1234
    assert len(set(seen)) == 1234
    assert pages == 83  # 82 full pages of 15 and one of 4; the empty 84th ends it
    assert throttled == 7
    state = await chatwoot.do("GET", "/state")
    assert state["throttled"] == 7


async def test_contact_pages_resume_after_the_last_page_a_run_finished(
    chatwoot: ChatwootSandbox,
) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 100})
    async with chatwoot.client() as client:
        first = await client.list_contacts(2)
        assert first.current_page == 2  # Chatwoot answers "2", a string
        assert first.count == 100
        paginator = PageNumberPaginator(first_page=5)
        rest = [c["id"] async for page in client.contact_pages(paginator) for c in page]
    assert len(rest) == 100 - 4 * 15
    assert paginator.last_page_done == 7


async def test_the_bare_get_keeps_to_the_address_guard() -> None:
    """A metadata address is refused on the bare GET as on httpx's pool, with the reason."""
    factory = GatewayFactory(World(), timeout=10)
    try:
        client = ChatwootClient(
            "t", 1, "http://169.254.169.254", http=factory.client, bare_get=factory.bare_get
        )
        with pytest.raises(ChatwootUnavailable) as refused:
            await client.list_contacts()
        assert "link-local" in refused.value.reason
    finally:
        await factory.aclose()


async def test_a_bad_token_over_the_bare_get_is_refused_with_chatwoots_reason(
    chatwoot: ChatwootSandbox, pool: GatewayFactory | None
) -> None:
    options = {} if pool is None else {"http": pool.client, "bare_get": pool.bare_get}
    async with chatwoot.client(api_key="not-the-token", **options) as client:
        with pytest.raises(ChatwootAuthError) as refused:
            await client.list_contacts()
    assert refused.value.reason == "Invalid Access Token"


async def test_a_bad_token_fails_the_connection_test_with_chatwoots_reason(
    chatwoot: ChatwootSandbox,
) -> None:
    async with chatwoot.client(api_key="not-the-token") as client:
        with pytest.raises(ChatwootAuthError) as refused:
            await client.test_connection()
    assert refused.value.reason == "Invalid Access Token"
    assert refused.value.status == 401


async def test_an_unknown_account_fails_the_connection_test(chatwoot: ChatwootSandbox) -> None:
    async with chatwoot.client(account_id=999) as client:
        with pytest.raises(ChatwootNotFound) as refused:
            await client.test_connection()
    assert "Account 999" in refused.value.reason
    assert "Resource could not be found" in refused.value.reason


async def test_good_credentials_pass_the_connection_test(chatwoot: ChatwootSandbox) -> None:
    async with chatwoot.client() as client:
        check = await client.test_connection()
    assert check.account_name == "Sandbox"
    assert check.role == "administrator"
    assert [i["channel_type"] for i in check.inboxes] == ["Channel::Api", "Channel::Email"]


async def test_a_taken_phone_is_a_typed_error_and_the_holder_is_found(
    chatwoot: ChatwootSandbox,
) -> None:
    async with chatwoot.client() as client:
        created = await client.create_contact(name="Maria Souza", phone_number="+5511987654321")
        # The same person pushed again (another spelling of her name): Chatwoot says 422.
        with pytest.raises(ChatwootContactTaken) as taken:
            await client.create_contact(name="Maria S.", phone_number="+5511987654321")
        assert taken.value.reason == "Phone number has already been taken"
        assert taken.value.attributes == ("phone_number",)
        holder = await client.find_contact(phone_number="+5511987654321")
        listed = await client.list_contacts()
    assert holder is not None
    assert holder["id"] == created["contact"]["id"]
    assert listed.count == 1  # no duplicate was made


async def test_a_phone_without_plus_is_refused_not_taken(chatwoot: ChatwootSandbox) -> None:
    async with chatwoot.client() as client:
        with pytest.raises(ChatwootRejected) as refused:
            await client.create_contact(name="Ana", phone_number="5511987654321")
    assert not isinstance(refused.value, ChatwootContactTaken)
    assert refused.value.reason == "Phone number should be in e164 format"


async def test_still_throttled_after_every_retry_is_rate_limited(
    chatwoot: ChatwootSandbox,
) -> None:
    await chatwoot.do("POST", "/throttle", json={"count": 50})
    async with chatwoot.client(max_attempts=3) as client:
        with pytest.raises(ChatwootRateLimited):
            await client.list_inboxes()
        assert client.throttled == 3


async def test_messages_page_back_with_before_until_the_first(chatwoot: ChatwootSandbox) -> None:
    contact = await chatwoot.do(
        "POST", "/contacts", json={"fields": {"name": "Ana", "phone_number": "+5511912345678"}}
    )
    conv = await chatwoot.do(
        "POST", "/conversations", json={"contact_id": contact["id"], "messages": 47}
    )
    async with chatwoot.client() as client:
        pages = [list(p) async for p in client.message_pages(conv["id"])]
        latest = await client.list_messages(conv["id"])
    assert [len(p) for p in pages] == [20, 20, 7]
    for page in pages:
        ids = [m["id"] for m in page]
        assert ids == sorted(ids)  # each page ascending
    everything = [m["content"] for page in reversed(pages) for m in page]
    assert everything == [f"history {n}" for n in range(1, 48)]
    assert [m["id"] for m in latest] == [m["id"] for m in pages[0]]


async def test_conversations_of_every_status_come_25_a_page(chatwoot: ChatwootSandbox) -> None:
    await chatwoot.do("POST", "/contacts/seed", json={"count": 30})
    statuses = ["open", "resolved", "pending", "snoozed"]
    for n in range(30):
        await chatwoot.do(
            "POST", "/conversations", json={"contact_id": n + 1, "status": statuses[n % 4]}
        )
    async with chatwoot.client() as client:
        pages = [list(p) async for p in client.conversation_pages()]
        only_open = await client.list_conversations(status="open")
    assert [len(p) for p in pages] == [25, 5]
    assert len({c["id"] for p in pages for c in p}) == 30
    assert {c["status"] for p in pages for c in p} == set(statuses)
    assert len(only_open) == 8


async def test_the_bridge_writes_a_chat_into_the_api_inbox(chatwoot: ChatwootSandbox) -> None:
    async with chatwoot.client() as client:
        created = await client.create_contact(name="Maria", phone_number="+5511987654321")
        contact_id = created["contact"]["id"]
        link = await client.create_contact_inbox(contact_id, 1, "zapsync:1:5511987654321")
        again = await client.create_contact_inbox(contact_id, 1, "zapsync:1:5511987654321")
        assert link["source_id"] == again["source_id"] == "zapsync:1:5511987654321"
        conv = await client.create_conversation(
            inbox_id=1, contact_id=contact_id, source_id="zapsync:1:5511987654321"
        )
        display_id = conv["id"]
        incoming = await client.create_message(
            display_id, "Oi, vocês entregam amanhã?", message_type="incoming", source_id="WAID:1"
        )
        photo = await client.create_message(
            display_id,
            "a foto",
            message_type="outgoing",
            source_id="WAID:2",
            attachments=[Attachment("foto.jpg", b"\xff\xd8jpeg", "image/jpeg")],
        )
        toggled = await client.toggle_status(display_id, "resolved")
        shown = await client.get_conversation(display_id)
        history = await client.list_messages(display_id)
        profile = map_contact(await client.get_contact(contact_id))
    assert incoming["message_type"] == 0 and incoming["sender"]["type"] == "contact"
    assert photo["message_type"] == 1
    attachment = photo["attachments"][0]
    assert attachment["file_type"] == "image"
    async with httpx.AsyncClient() as http:
        assert (await http.get(attachment["data_url"])).content == b"\xff\xd8jpeg"
    assert toggled["current_status"] == "resolved"
    assert shown["status"] == "resolved"
    assert [m["source_id"] for m in history] == ["WAID:1", "WAID:2"]
    assert profile.phone_e164 == "+5511987654321"
    writes = await chatwoot.do("GET", "/writes")
    assert writes[-2]["files"] == ["foto.jpg"]


async def test_incoming_messages_only_go_into_api_inboxes(chatwoot: ChatwootSandbox) -> None:
    contact = await chatwoot.do(
        "POST", "/contacts", json={"fields": {"email": "ana@example.com", "name": "Ana"}}
    )
    conv = await chatwoot.do(
        "POST", "/conversations", json={"contact_id": contact["id"], "inbox_id": 2}
    )
    async with chatwoot.client() as client:
        with pytest.raises(ChatwootRejected) as refused:
            await client.create_message(conv["id"], "oi", message_type="incoming")
    assert refused.value.reason == "Incoming messages are only allowed in Api inboxes"


async def test_chatwoot_down_is_unavailable_not_an_answer() -> None:
    from tests.support.servers import free_port
    from zapsync.connectors.chatwoot import ChatwootClient, ChatwootUnavailable

    async with ChatwootClient("t", 1, f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ChatwootUnavailable):
            await client.list_inboxes()


async def test_pages_asked_ahead_come_out_in_order_and_stop_at_the_empty_one() -> None:
    """Later pages that answer first wait their turn; nothing past the empty page is kept, and
    the paginator counts only pages given out (where a run resumes)."""
    answered: list[int] = []

    async def fetch(params: dict[str, Any]) -> list[int]:
        page = int(params["page"])
        await asyncio.sleep(0.002 * (page % 3 == 1))  # every third page slower than the next
        answered.append(page)
        return [page * 100 + i for i in range(2)] if page <= 7 else []

    paginator = PageNumberPaginator(first_page=2)
    pages = [list(p) async for p in paginate_ahead(fetch, paginator, {"q": 1}, in_flight=3)]
    assert pages == [[p * 100, p * 100 + 1] for p in range(2, 8)]
    assert answered != sorted(answered)  # they did come back out of order
    assert paginator.last_page_done == 7
    assert not paginator.has_next_page

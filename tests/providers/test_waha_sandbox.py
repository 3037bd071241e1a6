"""The WAHA adapter over real HTTP against the sandbox's WAHA dialect, with webhooks
delivered to a real receiver and checked the way zapsync's endpoint checks them."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.contracts import CONTRACTS
from tests.support.gateways import control, serving_dialect
from tests.support.receiver import Receiver
from zapsync.domain.gateway import (
    Ack,
    MessageAcked,
    MessageReceived,
    MessageType,
    StatusChanged,
)
from zapsync.domain.status import SessionStatus
from zapsync.providers.base import (
    GatewayRejected,
    GatewayUnavailable,
    MediaToSend,
    Signature,
    WebhookTarget,
)
from zapsync.providers.waha.client import WahaGateway

KEY = "sandbox-waha-key"
SECRET = "s3cr3t-for-tests"
SIGNING_KEY = "signing-key-for-tests"
PHONE = "5511900000001"
CUSTOMER = "5511988887777@s.whatsapp.net"
SAMPLE = CONTRACTS / "waha" / "webhook.message.json"


@pytest.fixture
def sandbox() -> Iterator[str]:
    with serving_dialect("waha", retry_delay=0.01) as url:
        yield url


@pytest.fixture
async def gw(sandbox: str) -> AsyncIterator[WahaGateway]:
    gateway = WahaGateway(sandbox, KEY, "s1", timeout=2.0)
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def raw(sandbox: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the sandbox, for what the adapter does not expose."""
    async with httpx.AsyncClient(base_url=sandbox, headers={"X-Api-Key": KEY}) as client:
        yield client


async def paired(
    gw: WahaGateway, raw: httpx.AsyncClient, hook: str = "http://127.0.0.1:9/none"
) -> None:
    await gw.create_instance(WebhookTarget(hook, SECRET))
    await control(raw, "/instances/s1/scan", {"phone": PHONE, "push_name": "Loja"})


# --- lifecycle ---------------------------------------------------------------------------


async def test_create_shows_a_qr_and_pairing_connects(
    gw: WahaGateway, raw: httpx.AsyncClient
) -> None:
    info = await gw.create_instance(WebhookTarget("http://127.0.0.1:9/none", SECRET))
    assert info.instance == "s1"
    assert info.status is SessionStatus.QR_PENDING
    world = (await raw.get("/_sandbox/instances/s1")).json()
    assert info.qr is not None and info.qr.code == world["qr_code"]
    assert (await gw.get_qr()).code == world["qr_code"]

    png = await raw.get("/api/s1/auth/qr")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    as_json = (await raw.get("/api/s1/auth/qr", headers={"Accept": "application/json"})).json()
    assert as_json["mimetype"] == "image/png"
    assert base64.b64decode(as_json["data"]).startswith(b"\x89PNG")

    await control(raw, "/instances/s1/scan", {"phone": PHONE})
    state = await gw.get_state()
    assert (state.status, state.raw_status, state.phone) == (
        SessionStatus.CONNECTED,
        "WORKING",
        PHONE,
    )
    with pytest.raises(GatewayRejected, match="Session status is not as expected"):
        await gw.get_qr()


async def test_create_again_attaches_and_moves_the_webhook(
    gw: WahaGateway, raw: httpx.AsyncClient
) -> None:
    await gw.create_instance(WebhookTarget("http://old.example/hook", SECRET, SIGNING_KEY))
    info = await gw.create_instance(WebhookTarget("http://new.example/hook", SECRET, SIGNING_KEY))
    assert info.status is SessionStatus.QR_PENDING
    session = (await raw.get("/api/sessions/s1")).json()
    [hook] = session["config"]["webhooks"]
    assert hook["url"] == "http://new.example/hook"
    # The key WAHA signs with is not the secret that travels in the header.
    assert hook["hmac"] == {"key": SIGNING_KEY}
    assert hook["customHeaders"] == [{"name": "X-Zapsync-Token", "value": SECRET}]
    assert "message.any" in hook["events"] and "message" not in hook["events"]


async def test_attaching_to_a_stopped_session_keeps_its_other_webhooks(
    gw: WahaGateway, raw: httpx.AsyncClient
) -> None:
    theirs = {"url": "http://crm.example/wh", "events": ["message"]}
    created = await raw.post(
        "/api/sessions", json={"name": "s1", "start": False, "config": {"webhooks": [theirs]}}
    )
    assert created.status_code == 201 and created.json()["status"] == "STOPPED"
    assert created.json()["engine"] == {}

    info = await gw.create_instance(WebhookTarget("http://zapsync.example/wh", SECRET))
    assert info.status is SessionStatus.QR_PENDING  # started, showing a QR
    urls = [h["url"] for h in (await raw.get("/api/sessions/s1")).json()["config"]["webhooks"]]
    assert urls == ["http://crm.example/wh", "http://zapsync.example/wh"]


async def test_duplicate_create_is_refused_in_wahas_shape(raw: httpx.AsyncClient) -> None:
    assert (await raw.post("/api/sessions", json={"name": "dup"})).status_code == 201
    again = await raw.post("/api/sessions", json={"name": "dup"})
    assert again.status_code == 422
    assert again.json() == {
        "statusCode": 422,
        "message": "Session 'dup' already exists. Use PUT to update it.",
        "error": "Unprocessable Entity",
    }


async def test_silent_drop_shows_disconnected_and_connect_heals(
    gw: WahaGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    await control(raw, "/instances/s1/drop", silent="true")

    state = await gw.get_state()
    assert (state.status, state.raw_status) == (SessionStatus.DISCONNECTED, "STOPPED")
    # The plain list hides stopped sessions; the adapter asks by name, which still answers.
    assert [s["name"] for s in (await raw.get("/api/sessions")).json()] == []
    assert [s["name"] for s in (await raw.get("/api/sessions", params={"all": "true"})).json()] == [
        "s1"
    ]

    await gw.connect()
    assert (await gw.get_state()).status is SessionStatus.CONNECTED  # still paired: no QR


async def test_logout_then_delete(gw: WahaGateway, raw: httpx.AsyncClient) -> None:
    await paired(gw, raw)
    await gw.logout()
    state = await gw.get_state()
    # WAHA restarts it on to a fresh QR; the adapter stops it so the logout sticks.
    assert state.status is SessionStatus.DISCONNECTED
    assert state.phone is None
    assert (await raw.get("/_sandbox/instances/s1")).json()["logged_out"] is True

    await gw.delete()
    with pytest.raises(GatewayRejected) as info:
        await gw.get_state()
    assert info.value.status_code == 404 and info.value.reason == "Session not found"
    await gw.delete()  # deleting what is gone is not an error


async def test_wrong_api_key_is_rejected_with_the_gateways_reason(sandbox: str) -> None:
    gateway = WahaGateway(sandbox, "not-the-key", "s1", timeout=2.0)
    try:
        with pytest.raises(GatewayRejected) as info:
            await gateway.create_instance(WebhookTarget("http://x.example/wh", SECRET))
        assert info.value.status_code == 401 and info.value.reason == "Unauthorized"
        with pytest.raises(GatewayRejected):
            await gateway.get_state()
    finally:
        await gateway.aclose()


@pytest.mark.parametrize(
    "fault",
    [{"fault": "error"}, {"fault": "malformed"}, {"latency_ms": 800}],
    ids=["5xx", "malformed", "timeout"],
)
async def test_faults_are_unavailable_not_a_status(
    sandbox: str, raw: httpx.AsyncClient, fault: dict[str, Any]
) -> None:
    setup = WahaGateway(sandbox, KEY, "s1", timeout=10)
    try:
        await setup.create_instance(WebhookTarget("http://x.example/wh", SECRET))
    finally:
        await setup.aclose()
    # Impatient only for the calls under test: a loaded machine must not fail the setup.
    gateway = WahaGateway(sandbox, KEY, "s1", timeout=0.3)
    try:
        await control(raw, "/fault", fault)
        with pytest.raises(GatewayUnavailable):
            await gateway.get_state()
        with pytest.raises(GatewayUnavailable):
            await gateway.send_text(CUSTOMER, "oi")
    finally:
        await control(raw, "/fault", {"fault": "none"})
        await gateway.aclose()
    assert (await gateway_state(sandbox)).status is SessionStatus.QR_PENDING


async def gateway_state(sandbox: str) -> Any:
    gateway = WahaGateway(sandbox, KEY, "s1", timeout=2.0)
    try:
        return await gateway.get_state()
    finally:
        await gateway.aclose()


# --- chats, messages, sending ---------------------------------------------------------------


async def test_chats_and_messages_page_through_everything(
    gw: WahaGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    await control(raw, "/instances/s1/seed", {"chats": 7, "groups": 2, "empty": 1, "messages": 30})

    pages = [page async for page in gw.list_chats(page_size=3)]
    assert [len(p) for p in pages] == [3, 3, 1]
    jids = [c.jid for p in pages for c in p]
    assert len(set(jids)) == 7
    assert sum(j.endswith("@g.us") for j in jids) == 2
    assert all(j.endswith(("@g.us", "@s.whatsapp.net")) for j in jids)
    groups = [c for p in pages for c in p if c.is_group]
    assert len(groups) == 2

    chat = "5511900000002@s.whatsapp.net"
    msg_pages = [page async for page in gw.list_messages(chat, page_size=2)]
    msgs = [m for p in msg_pages for m in p]
    assert [len(p) for p in msg_pages] == [2, 2, 1]
    assert len(msgs) == 5 and all(m.chat_jid == chat for m in msgs)
    stamps = [m.timestamp for m in msgs]
    assert stamps == sorted(stamps, reverse=True)
    assert all(
        m.provider_message_id.startswith(("true_5511900000002@c.us_", "false_5511900000002@c.us_"))
        for m in msgs
    )

    since = stamps[2]
    recent = [m async for p in gw.list_messages(chat, since=since, page_size=2) for m in p]
    assert [m.timestamp for m in recent] == stamps[:3]


async def test_chats_refused_before_the_session_works(gw: WahaGateway) -> None:
    await gw.create_instance(WebhookTarget("http://x.example/wh", SECRET))
    with pytest.raises(GatewayRejected) as info:
        _ = [page async for page in gw.list_chats()]
    assert info.value.status_code == 422


async def test_send_text_and_media(gw: WahaGateway, raw: httpx.AsyncClient) -> None:
    await paired(gw, raw)
    sent = await gw.send_text(CUSTOMER, "olá, tudo bem?")
    assert sent.provider_message_id.startswith("true_5511988887777@c.us_")
    world = (await raw.get("/_sandbox/instances/s1")).json()
    assert world["sent"][-1]["body"] == "olá, tudo bem?"
    assert sent.provider_message_id.endswith(world["sent"][-1]["id"])

    image = MediaToSend("image", "http://files.example/a.jpg", "image/jpeg", caption="foto")
    doc = MediaToSend("document", "http://files.example/b.pdf", "application/pdf", "b.pdf")
    await gw.send_media(CUSTOMER, image)
    await gw.send_media(CUSTOMER, doc)

    [page] = [p async for p in gw.list_messages(CUSTOMER)]
    by_type = {m.type: m for m in page}
    assert by_type[MessageType.TEXT].provider_message_id == sent.provider_message_id
    assert by_type[MessageType.IMAGE].caption == "foto"
    assert by_type[MessageType.IMAGE].media_url == "http://files.example/a.jpg"
    assert by_type[MessageType.DOCUMENT].file_name == "b.pdf"
    assert all(m.from_me for m in page)


async def test_send_refused_when_not_working_and_zombie_fails(
    gw: WahaGateway, raw: httpx.AsyncClient
) -> None:
    await gw.create_instance(WebhookTarget("http://x.example/wh", SECRET))
    with pytest.raises(GatewayRejected) as info:
        await gw.send_text(CUSTOMER, "oi")
    assert info.value.status_code == 422
    assert "Session status is not as expected" in info.value.reason

    await control(raw, "/instances/s1/scan", {"phone": PHONE})
    await control(raw, "/instances/s1/zombie", on="true")
    assert (await gw.get_state()).status is SessionStatus.CONNECTED  # it lies
    with pytest.raises(GatewayUnavailable):
        await gw.send_text(CUSTOMER, "oi")


# --- webhooks -------------------------------------------------------------------------------


async def test_signed_webhooks_carry_status_messages_and_acks(
    gw: WahaGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await gw.create_instance(WebhookTarget(receiver.url, SECRET, SIGNING_KEY))
    await control(raw, "/instances/s1/scan", {"phone": PHONE, "push_name": "Loja"})
    statuses = await receiver.wait_for("session.status", 3)  # STARTING, SCAN_QR_CODE, WORKING
    for d in statuses:
        assert d.headers["x-webhook-hmac-algorithm"] == "sha512"
        assert d.headers["x-webhook-request-id"] and d.headers["x-webhook-timestamp"].isdigit()
        assert d.headers["x-zapsync-token"] == SECRET
        assert gw.verify_webhook(d.headers, d.body, SIGNING_KEY).signature is Signature.VALID
        # signed with the signing key, not with the secret that travels beside it
        assert gw.verify_webhook(d.headers, d.body, SECRET).signature is Signature.INVALID
        assert gw.verify_webhook(d.headers, d.body, "someone-else").signature is Signature.INVALID
    events = [e for d in statuses for e in gw.parse_webhook(d.body)]
    assert any(
        e == StatusChanged(SessionStatus.CONNECTED, "WORKING", phone=PHONE, at=e.at) and e.at
        for e in events
        if isinstance(e, StatusChanged)
    )
    assert any(
        isinstance(e, StatusChanged) and e.status is SessionStatus.QR_PENDING for e in events
    )

    inbound = await control(
        raw, "/instances/s1/messages", {"chat_jid": CUSTOMER, "body": "oi", "push_name": "Ana"}
    )
    [d] = await receiver.wait_for("message.any")
    assert gw.verify_webhook(d.headers, d.body, SIGNING_KEY).signature is Signature.VALID
    [event] = gw.parse_webhook(d.body)
    assert isinstance(event, MessageReceived)
    msg = event.message
    assert (msg.chat_jid, msg.sender_jid, msg.sender_name) == (CUSTOMER, CUSTOMER, "Ana")
    assert msg.provider_message_id == f"false_5511988887777@c.us_{inbound['id']}"
    assert not msg.from_me and msg.body == "oi"

    sent = await gw.send_text(CUSTOMER, "olá")
    own = (await receiver.wait_for("message.any", 2))[1]
    [event] = gw.parse_webhook(own.body)
    assert isinstance(event, MessageReceived)
    assert event.message.from_me and event.message.provider_message_id == sent.provider_message_id

    world_id = sent.provider_message_id.rsplit("_", 1)[1]
    await control(
        raw, "/instances/s1/acks", {"chat_jid": CUSTOMER, "message_id": world_id, "ack": 3}
    )
    [ack] = await receiver.wait_for("message.ack")
    assert gw.parse_webhook(ack.body) == [
        MessageAcked(sent.provider_message_id, CUSTOMER, Ack.READ)
    ]

    await asyncio.sleep(0.2)
    assert receiver.of("message") == []  # not subscribed: no doubled deliveries


async def test_message_and_message_any_both_subscribed_double_up(
    gw: WahaGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await paired(gw, raw)
    hook = {"url": receiver.url, "events": ["message", "message.any"], "hmac": {"key": SECRET}}
    assert (
        await raw.put("/api/sessions/s1", json={"config": {"webhooks": [hook]}})
    ).status_code == 200
    await control(raw, "/instances/s1/messages", {"chat_jid": CUSTOMER, "body": "duplicado?"})

    [plain] = await receiver.wait_for("message")
    [any_] = await receiver.wait_for("message.any")
    ids = set()
    for d in (plain, any_):
        assert gw.verify_webhook(d.headers, d.body, SECRET).signature is Signature.VALID
        [event] = gw.parse_webhook(d.body)
        assert isinstance(event, MessageReceived)
        ids.add(event.message.provider_message_id)
    assert len(ids) == 1  # the store dedupes on it


async def test_reaction_webhook_points_at_the_original(
    gw: WahaGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await paired(gw, raw, receiver.url)
    original = await control(
        raw, "/instances/s1/messages", {"chat_jid": CUSTOMER, "body": "preço?"}
    )
    await control(
        raw,
        "/instances/s1/messages",
        {"chat_jid": CUSTOMER, "body": "❤️", "type": "reaction", "reaction_to": original["id"]},
    )
    [d] = await receiver.wait_for("message.reaction")
    [event] = gw.parse_webhook(d.body)
    assert isinstance(event, MessageReceived)
    assert event.message.type is MessageType.REACTION and event.message.body == "❤️"
    assert event.message.reaction_to == f"false_5511988887777@c.us_{original['id']}"


async def test_sandbox_webhook_has_the_documented_envelope(
    gw: WahaGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    sample = json.loads(SAMPLE.read_text())
    await paired(gw, raw, receiver.url)
    await control(raw, "/instances/s1/messages", {"chat_jid": CUSTOMER, "body": "oi"})
    [d] = await receiver.wait_for("message.any")
    body = json.loads(d.body)
    assert list(body) == list(sample)
    assert set(sample["payload"]) <= set(body["payload"])
    assert body["me"] == {"id": f"{PHONE}@c.us", "pushName": "Loja"}
    assert abs(body["timestamp"] / 1000 - datetime.now(tz=UTC).timestamp()) < 30

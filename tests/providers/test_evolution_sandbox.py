"""The Evolution adapter over real HTTP against the sandbox's Evolution dialect, with the
dialect's webhooks delivered to a real receiver: the whole life of an instance, Evolution's
traps (stale fetchInstances, silent drops, zombie sends, error-with-200), paging, sending, and
the shapes the dialect answers compared with the contract's samples and real captures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.support.contracts import CONTRACTS
from tests.support.gateways import control, serving_dialect
from tests.support.receiver import Delivery, Receiver
from zapsync.domain.gateway import (
    Ack,
    ContactSeen,
    MessageAcked,
    MessageReceived,
    MessageType,
    QrUpdated,
    StatusChanged,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus
from zapsync.providers.base import (
    GatewayRejected,
    GatewayUnavailable,
    MediaToSend,
    WebhookTarget,
)
from zapsync.providers.evolution.client import TOKEN_HEADER, WEBHOOK_EVENTS, EvolutionGateway
from zapsync.sandbox.dialects.evolution.dialect import GLOBAL_API_KEY

SECRET = "s3cr3t-for-tests"
PHONE = "5511900000001"
CUSTOMER = "5511988887777@s.whatsapp.net"
EVOLUTION = CONTRACTS / "evolution"
REAL = EVOLUTION / "real-2.3.6"


def load(name: str) -> Any:
    return json.loads((EVOLUTION / name).read_text())


def real(number: str) -> Any:
    [path] = REAL.glob(f"{number}-*.json")
    return json.loads(path.read_text())


@pytest.fixture
def sandbox() -> Iterator[str]:
    with serving_dialect("evolution", retry_delay=0.01) as url:
        yield url


@pytest.fixture
async def gw(sandbox: str) -> AsyncIterator[EvolutionGateway]:
    gateway = EvolutionGateway(sandbox, GLOBAL_API_KEY, "vendas", timeout=2.0)
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def raw(sandbox: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the sandbox, for what the adapter does not expose."""
    async with httpx.AsyncClient(base_url=sandbox, headers={"apikey": GLOBAL_API_KEY}) as client:
        yield client


async def paired(
    gw: EvolutionGateway, raw: httpx.AsyncClient, hook: str = "http://127.0.0.1:9/none"
) -> None:
    await gw.create_instance(WebhookTarget(hook, SECRET))
    await control(raw, "/instances/vendas/scan", {"phone": PHONE, "push_name": "Loja Centro"})


def events_of(gw: EvolutionGateway, delivery: Delivery) -> list[WebhookEvent]:
    """The delivery's events; a status change's time (its envelope's `date_time`) is checked
    here, then left out so the tests compare what changed."""
    events = gw.parse_webhook(delivery.body)
    for e in events:
        if isinstance(e, StatusChanged):
            assert e.at is not None, "the sandbox dates its status webhooks as Evolution does"
    return [replace(e, at=None) if isinstance(e, StatusChanged) else e for e in events]


def keys(obj: Any) -> Any:
    """The nested key structure of a JSON value (lists by their first element)."""
    if isinstance(obj, dict):
        return {k: keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [keys(obj[0])] if obj else []
    return None


# --- lifecycle ---------------------------------------------------------------------------


async def test_create_shows_a_qr_and_registers_the_webhook(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    info = await gw.create_instance(WebhookTarget(receiver.url, SECRET))
    world = (await raw.get("/_sandbox/instances/vendas")).json()
    assert (info.instance, info.status) == ("vendas", SessionStatus.QR_PENDING)
    assert info.qr is not None and info.qr.code == world["qr_code"]
    assert (await gw.get_qr()).code == world["qr_code"]

    hook = (await raw.get("/webhook/find/vendas")).json()
    assert (hook["url"], hook["headers"], hook["webhookByEvents"]) == (
        receiver.url,
        {TOKEN_HEADER: SECRET},
        False,
    )
    assert hook["events"] == list(WEBHOOK_EVENTS)

    [qr] = await receiver.wait_for("qrcode.updated")
    assert qr.headers[TOKEN_HEADER.lower()] == SECRET  # the custom header, sent as given
    assert events_of(gw, qr) == [QrUpdated(info.qr)]
    assert qr.doc["data"]["qrcode"]["base64"].startswith("data:image/png;base64,")
    [connecting] = await receiver.wait_for("connection.update")
    assert events_of(gw, connecting) == [StatusChanged(SessionStatus.CONNECTING, "connecting")]


async def test_pair_drop_heal_logout_delete(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await gw.create_instance(WebhookTarget(receiver.url, SECRET))
    await control(raw, "/instances/vendas/scan", {"phone": PHONE, "push_name": "Loja Centro"})
    state = await gw.get_state()
    assert (state.status, state.raw_status) == (SessionStatus.CONNECTED, "open")
    opened = (await receiver.wait_for("connection.update", 2))[-1]
    assert events_of(gw, opened) == [StatusChanged(SessionStatus.CONNECTED, "open", phone=PHONE)]
    assert opened.doc["sender"] == f"{PHONE}@s.whatsapp.net"

    # A silent drop: the live state says close, no webhook is sent, and the DB row that
    # fetchInstances reads still says open. That is why status never comes from there.
    before = await receiver.settle()
    await control(raw, "/instances/vendas/drop", silent="true")
    assert (await gw.get_state()).status is SessionStatus.DISCONNECTED
    assert await receiver.settle() == before
    [row] = (await raw.get("/instance/fetchInstances", params={"instanceName": "vendas"})).json()
    assert row["connectionStatus"] == "open"

    await gw.connect()  # heals: the paired phone reconnects without a QR
    assert (await gw.get_state()).status is SessionStatus.CONNECTED
    await receiver.wait_for("connection.update", 3)

    await gw.logout()
    closed = (await receiver.wait_for("connection.update", 4))[-1]
    assert events_of(gw, closed) == [StatusChanged(SessionStatus.LOGGED_OUT, "close", reason="401")]
    assert (await gw.get_state()).status is SessionStatus.DISCONNECTED
    [row] = (await raw.get("/instance/fetchInstances", params={"instanceName": "vendas"})).json()
    assert (row["connectionStatus"], row["disconnectionReasonCode"]) == ("close", 401)

    again = await raw.delete("/instance/logout/vendas")
    assert again.status_code == 400  # Evolution refuses to log out a closed instance...
    await gw.logout()  # ...which the adapter takes as done

    await gw.delete()
    with pytest.raises(GatewayRejected) as err:
        await gw.get_state()
    assert (err.value.status_code, err.value.reason) == (
        404,
        'The "vendas" instance does not exist',
    )
    await gw.delete()  # deleting what is gone is fine


async def test_a_new_instance_reads_open_in_fetch_instances_until_it_really_opens(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await gw.create_instance(WebhookTarget("http://127.0.0.1:9/none", SECRET))
    [row] = (await raw.get("/instance/fetchInstances")).json()
    assert row["connectionStatus"] == "open"  # Prisma's default (issue #1662)
    assert (await gw.get_state()).status is SessionStatus.CONNECTING


async def test_create_again_attaches_and_moves_the_webhook(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    first = await gw.create_instance(WebhookTarget("http://old.example/hook", SECRET))
    again = await gw.create_instance(WebhookTarget("http://new.example/hook", "other"))
    assert again.status is SessionStatus.QR_PENDING
    assert again.qr == first.qr  # still the QR on screen
    hook = (await raw.get("/webhook/find/vendas")).json()
    assert (hook["url"], hook["headers"]) == ("http://new.example/hook", {TOKEN_HEADER: "other"})
    assert len((await raw.get("/instance/fetchInstances")).json()) == 1


async def test_wrong_api_key_is_rejected_with_the_gateways_reason(
    sandbox: str, gw: EvolutionGateway
) -> None:
    await gw.create_instance(WebhookTarget("http://127.0.0.1:9/none", SECRET))
    wrong = EvolutionGateway(sandbox, "not-the-key", "vendas", timeout=2.0)
    try:
        for call in (
            wrong.get_state(),
            wrong.create_instance(WebhookTarget("http://x.example", SECRET)),
        ):
            with pytest.raises(GatewayRejected) as err:
                await call
            assert (err.value.reason, err.value.status_code) == ("Unauthorized", 401)
    finally:
        await wrong.aclose()


async def test_the_instance_token_works_on_its_own_routes_only(
    sandbox: str, raw: httpx.AsyncClient
) -> None:
    created = await raw.post("/instance/create", json={"instanceName": "mine", "token": "tok-mine"})
    assert created.status_code == 201 and created.json()["hash"] == "tok-mine"
    await raw.post("/instance/create", json={"instanceName": "theirs"})
    own = EvolutionGateway(sandbox, "tok-mine", "mine", timeout=2.0)
    other = EvolutionGateway(sandbox, "tok-mine", "theirs", timeout=2.0)
    try:
        assert (await own.get_state()).status is SessionStatus.DISCONNECTED
        with pytest.raises(GatewayRejected, match="Unauthorized"):
            await other.get_state()
    finally:
        await own.aclose()
        await other.aclose()
    listed = await raw.get("/instance/fetchInstances", headers={"apikey": "tok-mine"})
    assert [row["name"] for row in listed.json()] == ["mine"]


@pytest.mark.parametrize("fault", ["timeout", "error", "malformed"])
async def test_injected_faults_make_the_gateway_unavailable(
    sandbox: str, gw: EvolutionGateway, raw: httpx.AsyncClient, fault: str
) -> None:
    await raw.post("/instance/create", json={"instanceName": "vendas"})
    impatient = EvolutionGateway(sandbox, GLOBAL_API_KEY, "vendas", timeout=0.3)
    # The hang outlasts the client's timeout yet ends before the server shuts down.
    await control(raw, "/fault", {"fault": fault, "hang_seconds": 1.0})
    try:
        with pytest.raises(GatewayUnavailable):
            await impatient.get_state()
        with pytest.raises(GatewayUnavailable):
            await impatient.send_text(CUSTOMER, "oi")
    finally:
        await control(raw, "/fault", {"fault": "none"})
        await impatient.aclose()
    assert (await gw.get_state()).raw_status == "close"  # the same call answers once it can


async def test_restart_of_a_closed_instance_answers_an_error_with_200(
    raw: httpx.AsyncClient,
) -> None:
    await raw.post("/instance/create", json={"instanceName": "vendas"})
    resp = await raw.post("/instance/restart/vendas")
    assert (resp.status_code, resp.json()) == (200, real("19")["response"])


# --- reading -----------------------------------------------------------------------------


async def test_list_chats_pages_and_hides_chats_without_messages(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    await control(
        raw, "/instances/vendas/seed", {"chats": 7, "groups": 1, "empty": 2, "messages": 25}
    )
    pages = [page async for page in gw.list_chats(page_size=2)]
    assert [len(p) for p in pages] == [2, 2, 1]
    chats = [c for p in pages for c in p]
    assert len({c.jid for c in chats}) == 5  # the two empty chats never show
    stamps = [c.last_message_at.timestamp() for c in chats if c.last_message_at]
    assert len(stamps) == 5 and stamps == sorted(stamps, reverse=True)
    assert [c.is_group for c in chats].count(True) == 1


async def test_list_messages_pages_newest_first_and_stops_at_since(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    for n in range(9):
        await control(
            raw,
            "/instances/vendas/messages",
            {
                "chat_jid": CUSTOMER,
                "body": f"m{n}",
                "timestamp": 1_800_000_000 + n * 60,
                "notify": False,
            },
        )
    pages = [page async for page in gw.list_messages(CUSTOMER, page_size=4)]
    assert [[m.body for m in p] for p in pages] == [
        ["m8", "m7", "m6", "m5"],
        ["m4", "m3", "m2", "m1"],
        ["m0"],
    ]
    since = pages[1][0].timestamp  # m4
    recent = [m.body async for p in gw.list_messages(CUSTOMER, since=since, page_size=4) for m in p]
    assert recent == ["m8", "m7", "m6", "m5", "m4"]


# --- sending and webhooks ----------------------------------------------------------------


async def test_send_text_answers_and_emits_send_message(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await paired(gw, raw, receiver.url)
    sent = await gw.send_text(CUSTOMER, "Seu pedido saiu para entrega")
    assert sent.ack is Ack.PENDING
    world = (await raw.get("/_sandbox/instances/vendas")).json()
    assert world["sent"] == [
        {"id": sent.provider_message_id, "to": CUSTOMER, "body": "Seu pedido saiu para entrega"}
    ]
    [echo] = await receiver.wait_for("send.message")
    [event] = events_of(gw, echo)
    assert isinstance(event, MessageReceived)
    assert (event.message.provider_message_id, event.message.from_me, event.message.body) == (
        sent.provider_message_id,
        True,
        "Seu pedido saiu para entrega",
    )
    assert not receiver.of("messages.upsert")  # an API send is announced once


async def test_send_media(gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver) -> None:
    await paired(gw, raw, receiver.url)
    media = MediaToSend("image", "https://cdn.example/p.jpg", "image/jpeg", caption="catálogo")
    sent = await gw.send_media(CUSTOMER, media)
    [echo] = await receiver.wait_for("send.message")
    [event] = events_of(gw, echo)
    assert isinstance(event, MessageReceived)
    msg = event.message
    assert (msg.provider_message_id, msg.type, msg.caption, msg.media_url, msg.mime_type) == (
        sent.provider_message_id,
        MessageType.IMAGE,
        "catálogo",
        "https://cdn.example/p.jpg",
        "image/jpeg",
    )


async def test_sends_fail_with_connection_closed_when_not_open_or_zombie(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await gw.create_instance(WebhookTarget("http://127.0.0.1:9/none", SECRET))
    with pytest.raises(GatewayUnavailable, match="Connection Closed"):
        await gw.send_text(CUSTOMER, "oi")
    await control(raw, "/instances/vendas/scan", {"phone": PHONE})
    await control(raw, "/instances/vendas/zombie", on="true")
    assert (await gw.get_state()).status is SessionStatus.CONNECTED  # it says open...
    with pytest.raises(GatewayUnavailable, match="Connection Closed"):
        await gw.send_text(CUSTOMER, "oi")  # ...and cannot send
    resp = await raw.post(
        "/message/sendText/vendas", json={"number": "5511988887777", "text": "oi"}
    )
    assert (resp.status_code, resp.json()) == (500, real("15")["response"])


async def test_inbound_messages_acks_and_contacts_arrive_as_webhooks(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await paired(gw, raw, receiver.url)
    added = await control(
        raw,
        "/instances/vendas/messages",
        {"chat_jid": CUSTOMER, "body": "oi", "push_name": "Maria"},
    )
    [upsert] = await receiver.wait_for("messages.upsert")
    [event] = events_of(gw, upsert)
    assert isinstance(event, MessageReceived)
    assert (event.message.provider_message_id, event.message.body, event.message.sender_name) == (
        added["id"],
        "oi",
        "Maria",
    )
    assert event.message.ack is Ack.DELIVERED
    [contact] = await receiver.wait_for("contacts.upsert")
    assert isinstance(contact.doc["data"], dict)  # first message from someone: one object
    assert events_of(gw, contact) == [ContactSeen(CUSTOMER, "Maria")]
    assert len(await receiver.wait_for("chats.upsert")) == 1

    await control(
        raw, "/instances/vendas/acks", {"chat_jid": CUSTOMER, "message_id": added["id"], "ack": 3}
    )
    [ack] = await receiver.wait_for("messages.update")
    assert events_of(gw, ack) == [MessageAcked(added["id"], CUSTOMER, Ack.READ)]

    # An ack for a message the gateway never stored is dropped without a webhook.
    await control(
        raw, "/instances/vendas/acks", {"chat_jid": CUSTOMER, "message_id": "NOPE", "ack": 3}
    )
    await control(
        raw, "/instances/vendas/chats", {"jid": "5511977776666@s.whatsapp.net", "name": "Bruno"}
    )
    contacts = await receiver.wait_for("contacts.upsert", 2)
    assert isinstance(contacts[-1].doc["data"], list)  # from the address book: an array
    assert events_of(gw, contacts[-1]) == [ContactSeen("5511977776666@s.whatsapp.net", "Bruno")]
    assert len(receiver.of("messages.update")) == 1


async def test_lid_chats_carry_the_phone_jid(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await paired(gw, raw, receiver.url)
    await control(
        raw,
        "/instances/vendas/messages",
        {
            "chat_jid": "204101010101010@lid",
            "chat_alt_jid": CUSTOMER,
            "body": "oi",
            "push_name": "Maria",
        },
    )
    [upsert] = await receiver.wait_for("messages.upsert")
    key = upsert.doc["data"]["key"]
    assert (key["addressingMode"], key["remoteJidAlt"]) == ("lid", CUSTOMER)
    [event] = events_of(gw, upsert)
    assert isinstance(event, MessageReceived)
    assert (event.message.chat_jid, event.message.chat_alt_jid) == ("204101010101010@lid", CUSTOMER)
    [[chat]] = [page async for page in gw.list_chats()]
    assert (chat.jid, chat.alt_jid) == ("204101010101010@lid", CUSTOMER)


async def test_by_events_webhooks_get_the_kebab_suffix(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await gw.create_instance(WebhookTarget("http://127.0.0.1:9/none", SECRET))
    hook = {"enabled": True, "url": receiver.url, "byEvents": True, "events": ["CONNECTION_UPDATE"]}
    assert (await raw.post("/webhook/set/vendas", json={"webhook": hook})).status_code == 201
    await control(raw, "/instances/vendas/scan", {"phone": PHONE})
    [opened] = await receiver.wait_for("connection.update")
    assert opened.path == "/hook/connection-update"
    assert opened.doc["destination"] == receiver.url
    assert await receiver.settle() == 1  # nothing it did not subscribe to


# --- shapes, compared with the contract --------------------------------------------------


async def test_answers_have_the_contract_shapes(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = {
        "url": receiver.url,
        "byEvents": False,
        "base64": False,
        "events": ["MESSAGES_UPSERT", "CONNECTION_UPDATE"],
    }
    created = await raw.post(
        "/instance/create", json={"instanceName": "vendas", "qrcode": True, "webhook": hook}
    )
    assert created.status_code == 201
    expected = real("03")["response"]
    expected["qrcode"] = {"pairingCode": None, "code": None, "base64": None, "count": None}
    assert keys(created.json()) == keys(expected)
    assert created.headers["content-type"] == "application/json; charset=utf-8"

    [row] = (await raw.get("/instance/fetchInstances")).json()
    assert keys(row) == keys(real("05")["response"][0])
    assert keys((await raw.get("/webhook/find/vendas")).json()) == keys(real("08")["response"])
    qr = (await raw.get("/instance/connect/vendas")).json()
    assert keys(qr) == keys(load("connect.qr.response.json"))

    await control(raw, "/instances/vendas/scan", {"phone": PHONE})
    assert keys((await raw.get("/instance/connectionState/vendas")).json()) == keys(
        load("connectionState.open.response.json")
    )
    await control(
        raw,
        "/instances/vendas/messages",
        {"chat_jid": CUSTOMER, "body": "oi", "push_name": "Maria"},
    )
    sent = await raw.post("/message/sendText/vendas", json=load("sendText.request.json"))
    assert (sent.status_code, keys(sent.json())) == (201, keys(load("sendText.response.json")))

    chats = (await raw.post("/chat/findChats/vendas", json={})).json()
    assert keys(chats) == keys(real("41")["response"])
    found = (
        await raw.post(
            "/chat/findMessages/vendas", json={"where": {"key": {"remoteJid": CUSTOMER}}}
        )
    ).json()
    sample = load("findMessages.response.json")
    sample["messages"]["records"][0]["MessageUpdate"] = []  # ours is an incoming message
    assert keys(found) == keys(sample) and found["messages"]["total"] == 1
    contacts = (await raw.post("/chat/findContacts/vendas", json={"where": {}})).json()
    assert {"remoteJid", "pushName", "isGroup", "type"} <= set(contacts[0])

    [upsert] = await receiver.wait_for("messages.upsert")
    assert keys(upsert.doc) == keys(load("webhook.messages-upsert.text.json"))
    opened = (await receiver.wait_for("connection.update", 2))[-1]
    assert keys(opened.doc) == keys(load("webhook.connection-update.open.json"))

    denied = await raw.get("/instance/connectionState/vendas", headers={"apikey": "nope"})
    assert (denied.status_code, denied.json()) == (401, real("02")["response"])
    missing = await raw.get("/instance/connectionState/nope")
    assert (missing.status_code, missing.json()) == (404, real("17")["response"])
    dup = await raw.post("/instance/create", json={"instanceName": "vendas"})
    assert dup.status_code == 403
    assert dup.json()["response"]["message"] == ['This name "vendas" is already in use.']
    logout = await raw.delete("/instance/logout/vendas")
    assert logout.json() == load("logout.response.json")
    closed = await raw.delete("/instance/logout/vendas")
    assert closed.status_code == 400
    assert closed.json()["response"]["message"] == ['The "vendas" instance is not connected']


async def test_the_reconnect_loop_goes_on_after_a_refused_logout_and_ends_with_a_real_one(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await paired(gw, raw, receiver.url)
    await control(raw, "/instances/vendas/drop")  # silent: the socket is `close`
    refused = await raw.delete("/instance/logout/vendas")
    assert refused.status_code == 400
    assert refused.json() == {
        **real("20")["response"],
        "response": {"message": ['The "vendas" instance is not connected']},
    }
    # The next round of Evolution's loop reconnects the paired phone by itself.
    assert (await control(raw, "/evolution/reconnect-tick"))["reconnected"] == ["vendas"]
    assert (await gw.get_state()).status is SessionStatus.CONNECTED

    await gw.logout()  # accepted now: the loop ends with it
    assert (await control(raw, "/evolution/reconnect-tick"))["reconnected"] == []
    assert (await gw.get_state()).status is SessionStatus.DISCONNECTED


async def test_an_unscanned_qr_is_renewed_by_the_loop_with_a_connecting_webhook(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await gw.create_instance(WebhookTarget(receiver.url, SECRET))
    before = len(receiver.of("connection.update"))
    first = (await control(raw, "/instances/vendas/restore"))["qr_code"]
    await control(raw, "/evolution/reconnect-tick")
    await receiver.wait_for("connection.update", before + 1)
    assert (await gw.get_qr()).code not in (None, first)


async def test_the_loop_runs_by_itself_when_asked(
    gw: EvolutionGateway, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await gw.create_instance(WebhookTarget(receiver.url, SECRET))
    qrs = len(receiver.of("qrcode.updated"))
    await control(raw, "/evolution/reconnect", {"every_seconds": 0.05})
    try:
        await receiver.wait_for("qrcode.updated", qrs + 3)
    finally:
        await control(raw, "/evolution/reconnect", {"every_seconds": 0})

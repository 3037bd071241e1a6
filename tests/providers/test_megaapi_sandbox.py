"""MegaApiGateway against the sandbox's MegaAPI dialect over real HTTP: attaching, pairing,
losing and healing the connection, sending, and webhooks delivered to a real receiver."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.receiver import Receiver, receiving
from tests.support.servers import serve_in_thread
from zapsync.domain.gateway import MessageReceived, MessageType, QrUpdated, StatusChanged
from zapsync.domain.status import SessionStatus
from zapsync.providers.base import (
    GatewayRejected,
    GatewayUnavailable,
    MediaToSend,
    WebhookTarget,
)
from zapsync.providers.megaapi.client import MegaApiGateway
from zapsync.sandbox.dialects.megaapi.dialect import SANDBOX_TOKEN
from zapsync.sandbox.server import build_sandbox_app
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World

KEY = "megaapi-loja"
PHONE = "5511912340000"
SECRET = "s3cret-session"


@dataclass
class Sandbox:
    url: str
    http: httpx.AsyncClient  # carries the MegaAPI bearer token

    async def control(self, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = await self.http.post(f"/_sandbox{path}", **kwargs)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    async def describe(self) -> dict[str, Any]:
        resp = await self.http.get(f"/_sandbox/instances/{KEY}")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    async def scan(self) -> None:
        await self.control(f"/instances/{KEY}/scan", json={"phone": PHONE, "push_name": "Loja"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as rec:
        yield rec


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sender = WebhookSender(attempts=3, base_delay=0.05, timeout=2.0)
    app = build_sandbox_app("megaapi", World(), sender)
    with serve_in_thread(app) as url:
        headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=5.0) as http:
            # The hosted service provisions instances; in the sandbox its init route does.
            resp = await http.post("/rest/instance/init", params={"instance_key": KEY})
            resp.raise_for_status()
            yield Sandbox(url, http)


@pytest.fixture
async def gateway(sandbox: Sandbox) -> AsyncIterator[MegaApiGateway]:
    gw = MegaApiGateway(sandbox.url, SANDBOX_TOKEN, KEY, timeout=2.0)
    yield gw
    await gw.aclose()


def target(receiver: Receiver) -> WebhookTarget:
    return WebhookTarget(f"{receiver.url}/webhooks/megaapi?session=42", SECRET)


@pytest.fixture
async def paired(gateway: MegaApiGateway, sandbox: Sandbox, receiver: Receiver) -> MegaApiGateway:
    await gateway.create_instance(target(receiver))
    await sandbox.scan()
    return gateway


def is_status(status: SessionStatus) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, StatusChanged) and e.status is status


def is_message(body: str) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, MessageReceived) and e.message.body == body


# --- attaching and pairing ------------------------------------------------------------


async def test_attaching_registers_the_webhook_and_offers_a_qr(
    gateway: MegaApiGateway, sandbox: Sandbox, receiver: Receiver
) -> None:
    info = await gateway.create_instance(target(receiver))

    assert info.instance == KEY
    assert info.status is SessionStatus.QR_PENDING
    assert info.qr is not None and info.qr.code and info.qr.code.startswith("2@")
    config = (await sandbox.http.get(f"/rest/webhook/{KEY}")).json()["webhookData"]
    # The caller's query string survives and the secret rides beside it.
    assert config == {
        "webhookUrl": f"{receiver.url}/webhooks/megaapi?session=42&token={SECRET}",
        "webhookEnabled": True,
    }


async def test_qr_endpoint_renders_a_png(gateway: MegaApiGateway, sandbox: Sandbox) -> None:
    body = (await sandbox.http.get(f"/rest/instance/qrcode_base64/{KEY}")).json()

    assert body["qrcode"].startswith("data:image/png;base64,iVBOR")
    assert (await gateway.get_qr()).code == body["code"]


async def test_scanning_connects_and_posts_phone_connected(
    paired: MegaApiGateway, receiver: Receiver
) -> None:
    state = await paired.get_state()

    assert state.status is SessionStatus.CONNECTED
    assert state.phone == PHONE
    delivery, event = await receiver.wait_for_event(paired, is_status(SessionStatus.CONNECTED))
    assert event.phone == PHONE
    assert delivery.path == "/webhooks/megaapi"
    assert delivery.query == {"session": "42", "token": SECRET}


async def test_attaching_to_a_paired_instance_reports_connected(
    paired: MegaApiGateway, receiver: Receiver
) -> None:
    info = await paired.create_instance(target(receiver))

    assert info.status is SessionStatus.CONNECTED
    assert info.qr is None


async def test_pairing_code_is_offered_until_a_phone_is_paired(
    gateway: MegaApiGateway, sandbox: Sandbox
) -> None:
    code = await gateway.request_pairing_code("+55 11 91234-0000")

    assert code.pairing_code is not None
    assert re.fullmatch(r"[0-9A-F]{4}-[0-9A-F]{4}", code.pairing_code)
    await sandbox.scan()
    with pytest.raises(GatewayRejected, match="already logged in"):
        await gateway.get_qr()


# --- losing and healing the connection ------------------------------------------------


async def test_silent_drop_reads_disconnected_and_restart_heals_it(
    paired: MegaApiGateway, sandbox: Sandbox, receiver: Receiver
) -> None:
    await receiver.wait_for_event(paired, is_status(SessionStatus.CONNECTED))
    await sandbox.control(f"/instances/{KEY}/drop")

    dropped = await paired.get_state()
    await paired.connect()
    healed = await paired.get_state()

    assert dropped.status is SessionStatus.DISCONNECTED
    assert dropped.phone is None
    assert healed.status is SessionStatus.CONNECTED
    assert healed.phone == PHONE
    # The drop was silent: only the pairing and the restart announced themselves.
    for _ in range(100):
        with receiver.lock:
            events = [e for d in receiver.deliveries for e in paired.parse_webhook(d.body)]
        statuses = [e.raw_status for e in events if isinstance(e, StatusChanged)]
        if len(statuses) >= 2:
            break
        await asyncio.sleep(0.02)
    assert statuses == ["phone_connected", "phone_connected"]


async def test_restart_heals_a_zombie_that_cannot_send(
    paired: MegaApiGateway, sandbox: Sandbox
) -> None:
    await sandbox.control(f"/instances/{KEY}/zombie")

    assert (await paired.get_state()).status is SessionStatus.CONNECTED  # the zombie's lie
    with pytest.raises(GatewayUnavailable, match="Connection Closed"):
        await paired.send_text("5511987654321@s.whatsapp.net", "oi")
    await paired.connect()
    sent = await paired.send_text("5511987654321@s.whatsapp.net", "oi de novo")

    assert sent.provider_message_id
    assert (await sandbox.describe())["zombie"] is False


async def test_logout_unpairs_posts_disconnected_and_offers_a_new_qr(
    paired: MegaApiGateway, sandbox: Sandbox, receiver: Receiver
) -> None:
    await paired.logout()

    assert (await paired.get_state()).status is SessionStatus.DISCONNECTED
    await receiver.wait_for_event(paired, is_status(SessionStatus.DISCONNECTED))
    qr = await paired.get_qr()
    assert qr.code and qr.code.startswith("2@")
    assert (await sandbox.describe())["logged_out"] is True
    # Asking for the QR restarted the socket, which announces the new code as well.
    _, announced = await receiver.wait_for_event(paired, lambda e: isinstance(e, QrUpdated))
    assert announced.qr == qr


async def test_delete_unpairs_and_stops_webhooks(
    paired: MegaApiGateway, sandbox: Sandbox, receiver: Receiver
) -> None:
    await paired.delete()
    await sandbox.control(
        f"/instances/{KEY}/messages", json={"chat_jid": "5511987654321@s.whatsapp.net", "body": "?"}
    )
    await asyncio.sleep(0.3)

    config = (await sandbox.http.get(f"/rest/webhook/{KEY}")).json()["webhookData"]
    assert config["webhookEnabled"] is False
    assert (await sandbox.describe())["logged_out"] is True
    # The logout's own "phone_disconnected" may still be in flight; the message must not be.
    with receiver.lock:
        assert not [d for d in receiver.deliveries if b'"conversation":"?"' in d.body]


# --- refusals and faults --------------------------------------------------------------


async def test_wrong_token_is_rejected_with_megaapi_reason(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    wrong = MegaApiGateway(sandbox.url, "not-the-token", KEY, timeout=2.0)
    try:
        with pytest.raises(GatewayRejected) as err:
            await wrong.create_instance(target(receiver))
    finally:
        await wrong.aclose()

    assert err.value.status_code == 401
    assert "invalid or missing bearer token" in err.value.reason
    assert (await sandbox.describe())["webhook"] is None  # nothing was changed


async def test_unknown_instance_key_is_rejected(sandbox: Sandbox, receiver: Receiver) -> None:
    stranger = MegaApiGateway(sandbox.url, SANDBOX_TOKEN, "megaapi-nobody", timeout=2.0)
    try:
        with pytest.raises(GatewayRejected) as err:
            await stranger.create_instance(target(receiver))
    finally:
        await stranger.aclose()

    assert err.value.status_code == 404
    assert err.value.reason == "instance not found"


@pytest.mark.parametrize("fault", ["error", "malformed"])
async def test_gateway_faults_are_unavailable_not_a_status(
    paired: MegaApiGateway, sandbox: Sandbox, fault: str
) -> None:
    await sandbox.control("/fault", json={"fault": fault})

    with pytest.raises(GatewayUnavailable):
        await paired.get_state()
    with pytest.raises(GatewayUnavailable):
        await paired.send_text("5511987654321@s.whatsapp.net", "oi")
    await sandbox.control("/fault", json={"fault": "none"})
    assert (await paired.get_state()).status is SessionStatus.CONNECTED


async def test_a_gateway_slower_than_the_timeout_is_unavailable(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    impatient = MegaApiGateway(sandbox.url, SANDBOX_TOKEN, KEY, timeout=0.2)
    await sandbox.control("/fault", json={"fault": "none", "latency_ms": 800})
    try:
        with pytest.raises(GatewayUnavailable, match="timed out"):
            await impatient.get_state()
    finally:
        await impatient.aclose()
        await sandbox.control("/fault", json={"fault": "none", "latency_ms": 0})


# --- sending --------------------------------------------------------------------------


async def test_send_text_reaches_people_and_groups(
    paired: MegaApiGateway, sandbox: Sandbox
) -> None:
    to_person = await paired.send_text("5511987654321@s.whatsapp.net", "Seu pedido saiu")
    to_group = await paired.send_text("120363000000000001@g.us", "Bom dia, equipe")

    sent = {m["id"]: m for m in (await sandbox.describe())["sent"]}
    assert sent[to_person.provider_message_id] == {
        "id": to_person.provider_message_id,
        "to": "5511987654321@s.whatsapp.net",
        "body": "Seu pedido saiu",
    }
    assert sent[to_group.provider_message_id]["to"] == "120363000000000001@g.us"


async def test_sending_while_disconnected_is_refused(
    gateway: MegaApiGateway, receiver: Receiver
) -> None:
    await gateway.create_instance(target(receiver))

    with pytest.raises(GatewayRejected, match="not logged in"):
        await gateway.send_text("5511987654321@s.whatsapp.net", "oi")


async def test_send_media_by_url_echoes_as_an_own_image(
    paired: MegaApiGateway, receiver: Receiver
) -> None:
    media = MediaToSend("image", "https://cdn.example/menu.jpg", "image/jpeg", caption="Cardápio")

    sent = await paired.send_media("5511987654321@s.whatsapp.net", media)

    _, event = await receiver.wait_for_event(paired, is_message("Cardápio"))
    msg = event.message
    assert msg.provider_message_id == sent.provider_message_id
    assert msg.from_me is True
    assert msg.type is MessageType.IMAGE
    assert msg.media_url == "https://cdn.example/menu.jpg"
    assert msg.mime_type == "image/jpeg"


# --- incoming messages and history ----------------------------------------------------


async def test_incoming_messages_arrive_as_webhooks(
    paired: MegaApiGateway, sandbox: Sandbox, receiver: Receiver
) -> None:
    chat = "5511987654321@s.whatsapp.net"
    text = await sandbox.control(
        f"/instances/{KEY}/messages",
        json={"chat_jid": chat, "body": "Olá bom dia", "push_name": "Maria Souza"},
    )
    await sandbox.control(
        f"/instances/{KEY}/messages",
        json={"chat_jid": chat, "type": "ptt", "media_url": "https://mmg/v.ogg", "body": None},
    )

    delivery, event = await receiver.wait_for_event(paired, is_message("Olá bom dia"))
    _, voice = await receiver.wait_for_event(
        paired, lambda e: isinstance(e, MessageReceived) and e.message.type is MessageType.AUDIO
    )
    assert event.message.provider_message_id == text["id"]
    assert event.message.chat_jid == chat
    assert event.message.sender_name == "Maria Souza"
    assert event.message.from_me is False
    assert voice.message.is_voice_note is True
    assert delivery.query["token"] == SECRET


async def test_history_lists_are_empty_because_megaapi_has_no_history_routes(
    paired: MegaApiGateway, sandbox: Sandbox
) -> None:
    await sandbox.control(f"/instances/{KEY}/seed", json={"chats": 3, "messages": 6})

    chats = [page async for page in paired.list_chats()]
    messages = [page async for page in paired.list_messages("5511900000000@s.whatsapp.net")]

    assert chats == []
    assert messages == []

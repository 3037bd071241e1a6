"""MegaAPI's contract samples (tests/fixtures/megaapi, copied from contracts/megaapi): the
adapter parses and sends them, and the sandbox dialect produces the same shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.support.contracts import CONTRACTS
from tests.support.servers import serve_in_thread
from zapsync.domain.gateway import (
    Ack,
    MessageReceived,
    MessageType,
    QrUpdated,
    StatusChanged,
    UnknownEvent,
)
from zapsync.domain.status import SessionStatus
from zapsync.providers.base import UNSIGNED, GatewayUnavailable, WebhookRejected
from zapsync.providers.megaapi.client import MegaApiGateway
from zapsync.sandbox.dialects.megaapi.dialect import SANDBOX_TOKEN
from zapsync.sandbox.dialects.megaapi.shapes import message_payload
from zapsync.sandbox.server import build_sandbox_app
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World

SAMPLES = CONTRACTS / "megaapi"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def parse(payload: Any) -> list[Any]:
    gateway = MegaApiGateway("http://unused", "t", "megaapi-AbC123")
    return gateway.parse_webhook(json.dumps(payload).encode())


# --- webhook samples ------------------------------------------------------------------


def test_sample_message_webhook_parses_to_a_text_message() -> None:
    [event] = parse(sample("webhook.message.json"))

    assert isinstance(event, MessageReceived)
    msg = event.message
    assert msg.provider_message_id == "23DECC1FEB57D4A269C9C24D8C69E744"
    assert msg.chat_jid == "5511987654321@s.whatsapp.net"
    assert msg.from_me is False
    assert msg.type is MessageType.TEXT
    assert msg.body == "Olá bom dia"
    assert msg.sender_name == "Maria Souza"
    assert msg.sender_jid == "5511987654321@s.whatsapp.net"
    assert msg.timestamp == datetime.fromtimestamp(1763647391, tz=UTC)
    assert msg.raw_type == "conversation"


def _message(message_type: str, message: dict[str, Any], **key: Any) -> dict[str, Any]:
    payload = sample("webhook.message.json")
    payload["messageType"] = message_type
    payload["message"] = message
    payload["key"].update(key)
    return payload


@pytest.mark.parametrize(
    ("message_type", "message", "expected"),
    [
        ("extendedTextMessage", {"extendedTextMessage": {"text": "veja o link"}},
         {"type": MessageType.TEXT, "body": "veja o link"}),
        ("imageMessage",
         {"imageMessage": {"url": "https://mmg/x", "mimetype": "image/jpeg", "caption": "foto"}},
         {"type": MessageType.IMAGE, "caption": "foto", "media_url": "https://mmg/x",
          "mime_type": "image/jpeg"}),
        ("audioMessage",
         {"audioMessage": {"url": "https://mmg/a", "mimetype": "audio/ogg", "ptt": True}},
         {"type": MessageType.AUDIO, "is_voice_note": True}),
        ("audioMessage", {"audioMessage": {"url": "https://mmg/a", "ptt": False}},
         {"type": MessageType.AUDIO, "is_voice_note": False}),
        ("videoMessage", {"videoMessage": {"url": "https://mmg/v", "mimetype": "video/mp4"}},
         {"type": MessageType.VIDEO}),
        ("documentMessage",
         {"documentMessage": {"url": "https://mmg/d", "fileName": "boleto.pdf",
                              "mimetype": "application/pdf"}},
         {"type": MessageType.DOCUMENT, "file_name": "boleto.pdf"}),
        ("documentWithCaptionMessage",
         {"documentWithCaptionMessage": {"message": {"documentMessage": {
             "fileName": "nota.pdf", "caption": "segue"}}}},
         {"type": MessageType.DOCUMENT, "file_name": "nota.pdf", "caption": "segue"}),
        ("locationMessage",
         {"locationMessage": {"degreesLatitude": -23.5, "degreesLongitude": -46.6}},
         {"type": MessageType.LOCATION, "body": "-23.5,-46.6"}),
        ("contactMessage", {"contactMessage": {"displayName": "João", "vcard": "BEGIN:VCARD"}},
         {"type": MessageType.CONTACT, "body": "João"}),
        ("stickerMessage", {"stickerMessage": {"url": "https://mmg/s", "mimetype": "image/webp"}},
         {"type": MessageType.STICKER}),
        ("reactionMessage", {"reactionMessage": {"key": {"id": "ORIG1"}, "text": "👍"}},
         {"type": MessageType.REACTION, "body": "👍", "reaction_to": "ORIG1"}),
        ("pollCreationMessage", {"pollCreationMessage": {"name": "Pizza?"}},
         {"type": MessageType.OTHER, "raw_type": "pollCreationMessage"}),
    ],
)  # fmt: skip
def test_baileys_message_types_map_to_zapsync_types(
    message_type: str, message: dict[str, Any], expected: dict[str, Any]
) -> None:
    [event] = parse(_message(message_type, message))

    assert isinstance(event, MessageReceived)
    for field, value in expected.items():
        assert getattr(event.message, field) == value, field


def test_group_message_names_the_participant_and_own_messages_the_instance() -> None:
    group = _message(
        "conversation",
        {"conversation": "bom dia, grupo"},
        remoteJid="120363000000000001@g.us",
        participant="5511955554444@s.whatsapp.net",
    )
    own = _message("conversation", {"conversation": "já enviei"}, fromMe=True)
    own["status"] = "DELIVERY_ACK"

    [in_group], [mine] = parse(group), parse(own)

    assert in_group.message.sender_jid == "5511955554444@s.whatsapp.net"
    assert mine.message.from_me is True
    assert mine.message.sender_jid == "5511912340000@s.whatsapp.net"
    assert mine.message.sender_name is None
    assert mine.message.ack is Ack.DELIVERED


def test_connection_updates_become_status_changes() -> None:
    base = {"instance_key": "megaapi-AbC123", "jid": "5511912340000:7@s.whatsapp.net",
            "messageType": "connection_update", "pushName": "Loja Centro"}  # fmt: skip

    [up] = parse({**base, "message": "phone_connected"})
    [down] = parse({**base, "message": "phone_disconnected"})
    [other] = parse({**base, "message": "phone_reconnecting"})

    assert up == StatusChanged(SessionStatus.CONNECTED, "phone_connected", phone="5511912340000")
    assert down.status is SessionStatus.DISCONNECTED
    assert isinstance(other, UnknownEvent)


def test_qrcode_event_carries_the_code() -> None:
    data_uri = "data:image/png;base64,AA"
    [event] = parse(
        {"instance_key": "k", "messageType": "qrcode", "qrcode": data_uri, "code": "2@abc"}
    )

    assert event == QrUpdated(qr=event.qr)
    assert event.qr.code == "2@abc"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_malformed_bodies_are_rejected_with_400(body: bytes) -> None:
    gateway = MegaApiGateway("http://unused", "t", "k")

    with pytest.raises(WebhookRejected) as err:
        gateway.parse_webhook(body)

    assert err.value.status_code == 400


def test_a_message_without_an_id_is_rejected() -> None:
    payload = sample("webhook.message.json")
    del payload["key"]["id"]

    with pytest.raises(WebhookRejected):
        parse(payload)


def test_unrecognised_events_are_kept_as_unknown() -> None:
    [event] = parse(
        {"instance_key": "k", "messageType": "presence_update", "presence": "composing"}
    )

    assert event == UnknownEvent("presence_update")


def test_an_event_that_only_names_a_message_is_not_taken_for_one() -> None:
    key = {"remoteJid": "5511987654321@s.whatsapp.net", "id": "X1"}
    update = {"instance_key": "k", "messageType": "message_update", "key": key, "update": {}}

    assert parse(update) == [UnknownEvent("message_update")]


def test_megaapi_does_not_sign_webhooks() -> None:
    gateway = MegaApiGateway("http://unused", "t", "k")

    assert gateway.verify_webhook({}, b"{}", "secret") == UNSIGNED


# --- request and response samples over HTTP -------------------------------------------


class Replay:
    """Answers MegaAPI routes with the contract samples and records what it was sent."""

    def __init__(self) -> None:
        self.status_sample = "instance-status.connected.response.json"
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.app = FastAPI()

        @self.app.get("/rest/instance/{key}")
        async def status(key: str, request: Request) -> Any:
            self.requests.append((request.url.path, dict(request.headers), None))
            if self.status_sample == "broken":
                return ["not", "an", "object"]
            return sample(self.status_sample)

        @self.app.post("/rest/sendMessage/{key}/text")
        async def send_text(key: str, request: Request) -> Any:
            self.requests.append((request.url.path, dict(request.headers), await request.json()))
            sent = {"key": {"id": "3EB0SENT", "fromMe": True}, "status": "PENDING"}
            return {"error": False, "message": "Message sent", "messageData": sent}


@pytest.fixture
def replay() -> Iterator[tuple[Replay, str]]:
    server = Replay()
    with serve_in_thread(server.app) as url:
        yield server, url


async def test_status_samples_read_as_connected_and_disconnected(
    replay: tuple[Replay, str],
) -> None:
    server, url = replay
    gateway = MegaApiGateway(url, "account-token", "megaapi-AbC123")
    try:
        connected = await gateway.get_state()
        server.status_sample = "instance-status.disconnected.response.json"
        disconnected = await gateway.get_state()
    finally:
        await gateway.aclose()

    assert connected.status is SessionStatus.CONNECTED
    assert connected.phone == "5511912340000"
    assert disconnected.status is SessionStatus.DISCONNECTED
    assert disconnected.phone is None
    path, headers, _ = server.requests[0]
    assert path == "/rest/instance/megaapi-AbC123"
    assert headers["authorization"] == "Bearer account-token"


async def test_send_text_body_matches_the_request_sample(replay: tuple[Replay, str]) -> None:
    server, url = replay
    expected = sample("sendMessage-text.request.json")
    gateway = MegaApiGateway(url, "account-token", "megaapi-AbC123")
    try:
        sent = await gateway.send_text(
            "5511987654321@s.whatsapp.net", expected["messageData"]["text"]
        )
    finally:
        await gateway.aclose()

    assert sent.provider_message_id == "3EB0SENT"
    assert sent.ack is Ack.SENT
    [(path, _, body)] = server.requests
    assert path == "/rest/sendMessage/megaapi-AbC123/text"
    assert body == expected


async def test_a_status_body_of_the_wrong_shape_is_unavailable(replay: tuple[Replay, str]) -> None:
    server, url = replay
    server.status_sample = "broken"
    gateway = MegaApiGateway(url, "account-token", "megaapi-AbC123")
    try:
        with pytest.raises(GatewayUnavailable):
            await gateway.get_state()
    finally:
        await gateway.aclose()


# --- the sandbox produces the samples' shapes -----------------------------------------


def _shape(value: Any) -> Any:
    """Keys and value types, recursively: what a parser relies on."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_sandbox_status_and_message_webhook_mirror_the_samples() -> None:
    world = World()
    sender = WebhookSender()
    auth = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    with (
        serve_in_thread(build_sandbox_app("megaapi", world, sender)) as url,
        httpx.Client(base_url=url, headers=auth) as http,
    ):
        http.post(
            "/rest/instance/init", params={"instance_key": "megaapi-AbC123"}
        ).raise_for_status()
        disconnected = http.get("/rest/instance/megaapi-AbC123").json()
        scan = {"phone": "5511912340000", "push_name": "Loja Centro"}
        http.post("/_sandbox/instances/megaapi-AbC123/scan", json=scan).raise_for_status()
        connected = http.get("/rest/instance/megaapi-AbC123").json()

    for got, name in ((disconnected, "disconnected"), (connected, "connected")):
        want = sample(f"instance-status.{name}.response.json")
        assert _shape(got["instance"]) == _shape(want["instance"])
        assert set(want) <= set(got)
        assert got["error"] is False
    assert connected["instance"] == sample("instance-status.connected.response.json")["instance"]

    inst = world.instances["megaapi-AbC123"]
    msg = world.inbound(
        inst, "5511987654321@s.whatsapp.net", "Olá bom dia", push_name="Maria Souza"
    )
    assert _shape(message_payload(inst, msg)) == _shape(sample("webhook.message.json"))

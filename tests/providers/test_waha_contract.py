"""The WAHA adapter against the contract: every sample and real capture parses, signatures
follow the documented test vector, and the other payload shapes WAHA's DTOs define map to
the right domain values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.contracts import CONTRACTS as SHARED
from zapsync.domain.gateway import (
    Ack,
    MessageAcked,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    MessageType,
    StatusChanged,
    UnknownEvent,
)
from zapsync.domain.status import SessionStatus
from zapsync.providers.base import UNSIGNED, Signature, WebhookRejected
from zapsync.providers.http import gateway_reason
from zapsync.providers.waha import payloads
from zapsync.providers.waha.client import WahaGateway, signature

CONTRACTS = SHARED / "waha"
REAL = CONTRACTS / "real-2024.10.8"

# GATEWAYS.md §2, from WAHA's docs (checked).
VECTOR_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
VECTOR_KEY = "my-secret-key"
VECTOR_HMAC = (
    "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8"
    "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
)

pytestmark = pytest.mark.skipif(not CONTRACTS.is_dir(), reason="contract samples not present")


@pytest.fixture
def gw() -> WahaGateway:
    return WahaGateway("http://waha.invalid", "key", "default")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def body_of(envelope: Any) -> bytes:
    return json.dumps(envelope).encode()


# --- signatures -------------------------------------------------------------------------


def test_docs_test_vector_verifies(gw: WahaGateway) -> None:
    headers = {"X-Webhook-Hmac": VECTOR_HMAC, "X-Webhook-Hmac-Algorithm": "sha512"}
    assert gw.verify_webhook(headers, VECTOR_BODY, VECTOR_KEY).signature is Signature.VALID


def test_header_names_are_case_insensitive(gw: WahaGateway) -> None:
    headers = {"x-webhook-hmac": VECTOR_HMAC.upper(), "X-WEBHOOK-HMAC-ALGORITHM": "SHA512"}
    assert gw.verify_webhook(headers, VECTOR_BODY, VECTOR_KEY).signature is Signature.VALID


@pytest.mark.parametrize(
    ("headers", "body", "secret"),
    [
        ({"X-Webhook-Hmac": VECTOR_HMAC}, VECTOR_BODY, "another-key"),
        ({"X-Webhook-Hmac": VECTOR_HMAC}, VECTOR_BODY + b" ", VECTOR_KEY),
        ({"X-Webhook-Hmac": "0" * 128}, VECTOR_BODY, VECTOR_KEY),
        (
            {"X-Webhook-Hmac": VECTOR_HMAC, "X-Webhook-Hmac-Algorithm": "sha256"},
            VECTOR_BODY,
            VECTOR_KEY,
        ),
        ({"X-Webhook-Hmac": VECTOR_HMAC}, VECTOR_BODY, ""),
    ],
    ids=["wrong-key", "body-changed", "forged", "other-algorithm", "no-secret"],
)
def test_wrong_signature_is_invalid(
    gw: WahaGateway, headers: dict[str, str], body: bytes, secret: str
) -> None:
    assert gw.verify_webhook(headers, body, secret).signature is Signature.INVALID


def test_no_signature_is_absent_not_invalid(gw: WahaGateway) -> None:
    # 2024 core ignores `hmac` and signs nothing: the receiver falls back to the secret.
    assert gw.verify_webhook({}, VECTOR_BODY, VECTOR_KEY) == UNSIGNED


def test_a_valid_signature_dates_the_delivery_by_the_signed_body() -> None:
    body = b'{"event":"message","timestamp":1741249702485}'
    headers = {
        "X-Webhook-Hmac": signature(body, VECTOR_KEY),
        "X-Webhook-Timestamp": "1000",  # not covered by the HMAC: the body's time wins
    }
    check = WahaGateway("http://waha.test", "k", "default").verify_webhook(
        headers, body, VECTOR_KEY
    )
    assert check.signed_at == datetime(2025, 3, 6, 8, 28, 22, 485000, tzinfo=UTC)


# --- documented samples -------------------------------------------------------------------


def test_every_sample_parses(gw: WahaGateway) -> None:
    for path in sorted(CONTRACTS.glob("webhook.*.json")):
        events = gw.parse_webhook(path.read_bytes())
        assert events and not isinstance(events[0], UnknownEvent), path.name
    for item in load(CONTRACTS / "sessions.response.json"):
        assert payloads.live_state(item).status is SessionStatus.CONNECTED


def test_message_sample(gw: WahaGateway) -> None:
    [event] = gw.parse_webhook((CONTRACTS / "webhook.message.json").read_bytes())
    assert isinstance(event, MessageReceived)
    msg = event.message
    assert msg.provider_message_id == "false_5511987654321@c.us_3EB0C431D8F2A1B7"
    assert msg.chat_jid == "5511987654321@s.whatsapp.net"
    assert msg.sender_jid == "5511987654321@s.whatsapp.net"
    assert not msg.from_me
    assert msg.type is MessageType.TEXT
    assert msg.body == "Oi, vocês entregam amanhã?"
    assert msg.timestamp.timestamp() == 1763647391
    assert msg.ack is Ack.DELIVERED


def test_message_any_carries_the_same_id_as_message(gw: WahaGateway) -> None:
    envelope = load(CONTRACTS / "webhook.message.json")
    [first] = gw.parse_webhook(body_of(envelope))
    envelope["event"] = "message.any"
    [second] = gw.parse_webhook(body_of(envelope))
    assert isinstance(first, MessageReceived) and isinstance(second, MessageReceived)
    assert first.message.provider_message_id == second.message.provider_message_id


def test_ack_sample(gw: WahaGateway) -> None:
    [event] = gw.parse_webhook((CONTRACTS / "webhook.message-ack.json").read_bytes())
    assert event == MessageAcked(
        provider_message_id="true_5511987654321@c.us_3EB0A1B2C3D4E5F6",
        chat_jid="5511987654321@s.whatsapp.net",
        ack=Ack.READ,
    )


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        (-1, Ack.FAILED),
        (0, Ack.PENDING),
        (1, Ack.SENT),
        (2, Ack.DELIVERED),
        (3, Ack.READ),
        (4, Ack.PLAYED),
    ],
)
def test_every_ack_value(gw: WahaGateway, ack: int, expected: Ack) -> None:
    envelope = load(CONTRACTS / "webhook.message-ack.json")
    envelope["payload"]["ack"] = ack
    [event] = gw.parse_webhook(body_of(envelope))
    assert isinstance(event, MessageAcked) and event.ack is expected


def test_session_status_sample_new_shape(gw: WahaGateway) -> None:
    [event] = gw.parse_webhook((CONTRACTS / "webhook.session-status.json").read_bytes())
    assert event == StatusChanged(
        status=SessionStatus.QR_PENDING,
        raw_status="SCAN_QR_CODE",
        phone="5511912340000",
        # when the session entered SCAN_QR_CODE, from its `statuses`
        at=datetime(2025, 11, 20, 14, 1, 44, tzinfo=UTC),
    )


# --- real captures ------------------------------------------------------------------------


def test_every_captured_webhook_parses(gw: WahaGateway) -> None:
    files = sorted(REAL.glob("wh-*.json"))
    assert len(files) == 10
    for path in files:
        events = gw.parse_webhook(body_of(load(path)["body"]))
        assert len(events) == 1 and isinstance(events[0], StatusChanged), path.name


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("wh-sess-session_status-STARTING.json", SessionStatus.CONNECTING),
        ("wh-sess-session_status-STOPPED.json", SessionStatus.DISCONNECTED),
        ("wh-legacy-session_status-STARTING.json", SessionStatus.CONNECTING),
        ("wh-sess-state_change-connecting.json", SessionStatus.CONNECTING),
        ("wh-sess-state_change-close.json", SessionStatus.DISCONNECTED),
    ],
)
def test_captured_status_webhooks(gw: WahaGateway, name: str, status: SessionStatus) -> None:
    [event] = gw.parse_webhook(body_of(load(REAL / name)["body"]))
    assert isinstance(event, StatusChanged)
    assert event.status is status


def test_engine_close_keeps_its_reason(gw: WahaGateway) -> None:
    [event] = gw.parse_webhook(body_of(load(REAL / "wh-sess-state_change-close.json")["body"]))
    assert isinstance(event, StatusChanged)
    assert event.reason is not None and "WebSocket Error" in event.reason


def test_every_captured_session_answer_gives_a_state() -> None:
    states = {}
    for path in sorted(REAL.glob("[0-9]*.json")):
        capture = load(path)
        response = capture["response"]
        if capture["status"] < 300 and isinstance(response, dict) and "status" in response:
            states[path.name] = payloads.live_state(response)
        elif capture["status"] < 300 and isinstance(response, list):
            for item in response:
                payloads.live_state(item)
    assert states["08-get-default.json"].status is SessionStatus.DISCONNECTED
    assert states["15-get-default-after-start.json"].status is SessionStatus.CONNECTING
    assert states["24-get-after-stop.json"].raw_status == "STOPPED"
    assert all(s.phone is None for s in states.values())  # offline: never paired


def test_captured_refusals_give_readable_reasons() -> None:
    import httpx

    for name, expected in [
        ("17-qr-raw.json", "Session status is not as expected"),
        ("07-create-default.json", "already exists"),
        ("30-get-after-delete.json", "Session not found"),
    ]:
        capture = load(REAL / name)
        resp = httpx.Response(capture["status"], json=capture["response"])
        assert expected in gateway_reason(resp), name


# --- shapes from WAHA's DTOs the samples do not cover -------------------------------------


def envelope(event: str, payload: Any) -> bytes:
    return body_of({"event": event, "session": "default", "payload": payload, "engine": "NOWEB"})


def test_incoming_group_image_from_noweb(gw: WahaGateway) -> None:
    payload = {
        "id": "false_120363012345678901@g.us_3EB0AA_5511911112222@c.us",
        "timestamp": 1763647391,
        "from": "120363012345678901@g.us",
        "fromMe": False,
        "to": "5511912340000@c.us",
        "participant": "5511911112222@c.us",
        "body": "olha a foto",
        "hasMedia": True,
        "media": {
            "url": "http://waha/api/files/x.jpeg",
            "mimetype": "image/jpeg",
            "filename": None,
        },
        "ack": 2,
        "_data": {
            "key": {"remoteJid": "120363012345678901@g.us", "fromMe": False, "id": "3EB0AA"},
            "message": {"imageMessage": {"caption": "olha a foto"}, "messageContextInfo": {}},
            "pushName": "Ana",
        },
    }
    [event] = gw.parse_webhook(envelope("message", payload))
    assert isinstance(event, MessageReceived)
    msg = event.message
    assert msg.type is MessageType.IMAGE and msg.raw_type == "imageMessage"
    assert msg.chat_jid == "120363012345678901@g.us"
    assert msg.sender_jid == "5511911112222@s.whatsapp.net"
    assert msg.sender_name == "Ana"
    assert msg.media_url == "http://waha/api/files/x.jpeg"
    assert msg.mime_type == "image/jpeg"
    assert msg.caption == "olha a foto"


def test_own_voice_note_from_webjs(gw: WahaGateway) -> None:
    payload = {
        "id": "true_5511987654321@c.us_ABC",
        "timestamp": 1763647391,
        "from": "5511912340000@c.us",
        "fromMe": True,
        "to": "5511987654321@c.us",
        "body": "",
        "hasMedia": True,
        "media": {"url": "http://waha/f.oga", "mimetype": "audio/ogg; codecs=opus"},
        "_data": {"type": "ptt", "notifyName": "Me"},
    }
    [event] = gw.parse_webhook(envelope("message.any", payload))
    assert isinstance(event, MessageReceived)
    msg = event.message
    assert msg.from_me and msg.chat_jid == "5511987654321@s.whatsapp.net"
    assert msg.type is MessageType.AUDIO and msg.is_voice_note
    assert msg.sender_jid is None and msg.body is None


def test_type_falls_back_to_media_mimetype(gw: WahaGateway) -> None:
    payload = {
        "id": "false_5511987654321@c.us_D1",
        "timestamp": 1763647391,
        "from": "5511987654321@c.us",
        "fromMe": False,
        "to": "5511912340000@c.us",
        "body": None,
        "hasMedia": True,
        "media": {
            "url": "http://waha/f.pdf",
            "mimetype": "application/pdf",
            "filename": "nota.pdf",
        },
    }
    [event] = gw.parse_webhook(envelope("message", payload))
    assert isinstance(event, MessageReceived)
    assert event.message.type is MessageType.DOCUMENT
    assert event.message.file_name == "nota.pdf"


def test_reaction(gw: WahaGateway) -> None:
    payload = {
        "id": "false_5511987654321@c.us_R1",
        "timestamp": 1763647391,
        "from": "5511987654321@c.us",
        "fromMe": False,
        "to": "5511912340000@c.us",
        "participant": None,
        "reaction": {"text": "👍", "messageId": "true_5511987654321@c.us_3EB0A1"},
    }
    [event] = gw.parse_webhook(envelope("message.reaction", payload))
    assert isinstance(event, MessageReceived)
    assert event.message.type is MessageType.REACTION
    assert event.message.body == "👍"
    assert event.message.reaction_to == "true_5511987654321@c.us_3EB0A1"


def test_revoked_with_before(gw: WahaGateway) -> None:
    before = {
        "id": "false_5511987654321@c.us_3EB0C4",
        "from": "5511987654321@c.us",
        "fromMe": False,
    }
    [event] = gw.parse_webhook(envelope("message.revoked", {"before": before, "after": None}))
    assert event == MessageDeleted(
        "false_5511987654321@c.us_3EB0C4", "5511987654321@s.whatsapp.net"
    )


def test_revoked_with_only_the_bare_id_rebuilds_waha_id(gw: WahaGateway) -> None:
    after = {
        "id": "false_5511987654321@c.us_PROTO1",
        "timestamp": 1763647391,
        "from": "5511987654321@c.us",
        "fromMe": False,
        "to": "5511912340000@c.us",
    }
    payload = {"after": after, "before": None, "revokedMessageId": "3EB0C4"}
    [event] = gw.parse_webhook(envelope("message.revoked", payload))
    assert event == MessageDeleted(
        "false_5511987654321@c.us_3EB0C4", "5511987654321@s.whatsapp.net"
    )


def test_edited_points_at_the_original(gw: WahaGateway) -> None:
    payload = {
        "id": "true_5511987654321@c.us_EDIT9",
        "timestamp": 1763647391,
        "from": "5511912340000@c.us",
        "fromMe": True,
        "to": "5511987654321@c.us",
        "body": "texto corrigido",
        "editedMessageId": "3EB0A1",
    }
    [event] = gw.parse_webhook(envelope("message.edited", payload))
    assert event == MessageEdited(
        "true_5511987654321@c.us_3EB0A1", "5511987654321@s.whatsapp.net", "texto corrigido"
    )


def test_unknown_event_is_reported_not_rejected(gw: WahaGateway) -> None:
    assert gw.parse_webhook(envelope("presence.update", {"id": "x"})) == [
        UnknownEvent("presence.update")
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"session": "default"}',
        envelope("message", "not an object"),
        envelope("message", {"id": "false_1@c.us_X", "fromMe": False}),  # no chat, no time
        envelope("message.ack", {"id": "x"}),
        envelope("session.status", {}),
    ],
    ids=[
        "not-json",
        "array",
        "no-event",
        "payload-string",
        "message-incomplete",
        "ack-no-value",
        "status-empty",
    ],
)
def test_malformed_body_is_rejected_with_400(gw: WahaGateway, body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        gw.parse_webhook(body)
    assert info.value.status_code == 400


def test_chat_list_items_of_both_engines() -> None:
    noweb = payloads.chat(
        {"id": "5511987654321@c.us", "name": "Ana", "conversationTimestamp": 1700000000}
    )
    webjs = payloads.chat(
        {
            "id": {"server": "g.us", "user": "1203", "_serialized": "1203@g.us"},
            "name": "Equipe",
            "isGroup": True,
            "timestamp": 1700000001,
            "unreadCount": 3,
        }
    )
    assert noweb.jid == "5511987654321@s.whatsapp.net" and noweb.name == "Ana"
    assert noweb.last_message_at is not None and noweb.last_message_at.timestamp() == 1700000000
    assert webjs.jid == "1203@g.us" and webjs.is_group and webjs.unread_count == 3


def test_send_answer_of_each_engine_gives_the_webhook_id() -> None:
    noweb = {"key": {"remoteJid": "5511987654321@s.whatsapp.net", "fromMe": True, "id": "3EB0"}}
    webjs = {"id": {"fromMe": True, "_serialized": "true_5511987654321@c.us_3EB0"}}
    plain = {"id": "true_5511987654321@c.us_3EB0"}
    for answer in (noweb, webjs, plain):
        assert (
            payloads.sent_message_id(answer, "5511987654321@c.us") == "true_5511987654321@c.us_3EB0"
        )

"""The Evolution adapter against the contract: every sample and real 2.3.6 capture under
`contracts/evolution/` is either parsed as a webhook or replayed over real HTTP to the adapter
call that reads it, and the webhook parser's edge cases (name spellings, object-or-array,
statuses, message types, LID keys, malformed bodies)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.support.contracts import CONTRACTS
from tests.support.servers import serve_in_thread
from zapsync.domain.gateway import (
    Ack,
    Chat,
    ChatSeen,
    ContactSeen,
    HistoryArrived,
    Message,
    MessageAcked,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    MessageType,
    QrCode,
    QrUpdated,
    StatusChanged,
    UnknownEvent,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus
from zapsync.providers.base import (
    UNSIGNED,
    GatewayRejected,
    GatewayUnavailable,
    WebhookRejected,
    WebhookTarget,
)
from zapsync.providers.evolution.client import WEBHOOK_EVENTS, EvolutionGateway, event_name
from zapsync.providers.evolution.payloads import envelope_time

EVOLUTION = CONTRACTS / "evolution"
REAL = EVOLUTION / "real-2.3.6"
TARGET = WebhookTarget("http://127.0.0.1:8000/api/v1/webhooks/evolution/SESSION_ID", "secret")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def parse(doc: dict[str, Any]) -> list[WebhookEvent]:
    gw = EvolutionGateway("http://unused.invalid", "k", "vendas")
    return gw.parse_webhook(json.dumps(doc).encode())


def only(events: list[WebhookEvent]) -> WebhookEvent:
    assert len(events) == 1, events
    return events[0]


def received(doc: dict[str, Any]) -> Message:
    event = only(parse(doc))
    assert isinstance(event, MessageReceived), event
    return event.message


# --- replay server: answers each request with the next queued capture ---------------------


@dataclass
class Replay:
    url: str
    queue: deque[tuple[str, str, int, Any]] = field(default_factory=deque)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def play(self, *captures: dict[str, Any]) -> None:
        for cap in captures:
            parts = urlsplit(cap["request"]["url"])
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            self.queue.append((cap["request"]["method"], target, cap["status"], cap["response"]))

    def answer(self, path: str, status: int, body: Any, method: str = "GET") -> None:
        self.queue.append((method, path, status, body))


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    app = FastAPI()
    state = Replay("")

    @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE", "PUT"])
    async def any_route(request: Request, path: str) -> Response:
        raw = await request.body()
        state.requests.append((request.method, request.url.path, json.loads(raw) if raw else None))
        if not state.queue:
            return JSONResponse({"replay": "nothing queued"}, status_code=599)
        method, target, status, body = state.queue.popleft()
        got = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if (method, target) != (request.method, got):
            return JSONResponse({"replay": f"expected {method} {target}"}, status_code=599)
        return JSONResponse(body, status_code=status)

    with serve_in_thread(app) as url:
        state.url = url
        yield state


@pytest.fixture
def fresh(replay: Replay) -> Replay:
    replay.queue.clear()
    replay.requests.clear()
    return replay


def gateway(replay: Replay, instance: str) -> EvolutionGateway:
    return EvolutionGateway(replay.url, "test-global-key", instance, timeout=2.0)


async def collect(pages: Any) -> list[list[Any]]:
    return [page async for page in pages]


# --- webhook samples ---------------------------------------------------------------------

# The samples' envelope `date_time` (Evolution's local wall clock): it orders status events.
SAMPLE_AT = datetime(2026, 11, 20, 11, 3, 11, 512000, tzinfo=UTC)

WEBHOOK_SAMPLES: dict[str, list[WebhookEvent]] = {
    "webhook.chats-upsert.json": [
        ChatSeen(Chat("5511987654321@s.whatsapp.net", "Maria Souza", unread_count=1))
    ],
    "webhook.connection-update.close.json": [
        StatusChanged(SessionStatus.LOGGED_OUT, "close", reason="401", at=SAMPLE_AT)
    ],
    "webhook.connection-update.open.json": [
        StatusChanged(SessionStatus.CONNECTED, "open", phone="5511912340000", at=SAMPLE_AT)
    ],
    "webhook.contacts-upsert.array.json": [
        ContactSeen("5511987654321@s.whatsapp.net", "Maria Souza")
    ],
    "webhook.messages-update.ack.json": [
        MessageAcked("3EB0A1B2C3D4E5F6", "5511987654321@s.whatsapp.net", Ack.READ)
    ],
    "webhook.qrcode-updated.json": [QrUpdated(QrCode("2@y8eK3nR0cVQ1..."))],
}


def test_every_top_level_sample_is_covered() -> None:
    covered = set(WEBHOOK_SAMPLES) | set(MESSAGE_SAMPLES) | set(RESPONSE_SAMPLES)
    assert {p.name for p in EVOLUTION.glob("*.json")} == covered


@pytest.mark.parametrize("name", sorted(WEBHOOK_SAMPLES))
def test_webhook_sample_parses(name: str) -> None:
    assert parse(load(EVOLUTION / name)) == WEBHOOK_SAMPLES[name]


MESSAGE_SAMPLES = ("webhook.messages-upsert.text.json", "webhook.messages-upsert.image.json")


def test_text_message_sample() -> None:
    msg = received(load(EVOLUTION / "webhook.messages-upsert.text.json"))
    assert (msg.provider_message_id, msg.chat_jid, msg.from_me) == (
        "3EB0C431D8F2A1B7",
        "5511987654321@s.whatsapp.net",
        False,
    )
    assert (msg.type, msg.body, msg.sender_name) == (
        MessageType.TEXT,
        "Oi, vocês entregam amanhã?",
        "Maria Souza",
    )
    assert msg.timestamp == datetime(2025, 11, 20, 14, 3, 11, tzinfo=UTC)
    assert msg.ack is Ack.DELIVERED and msg.raw_type == "conversation"


def test_image_message_sample() -> None:
    msg = received(load(EVOLUTION / "webhook.messages-upsert.image.json"))
    assert msg.type is MessageType.IMAGE
    assert (msg.body, msg.caption, msg.mime_type) == ("Esse modelo", "Esse modelo", "image/jpeg")
    assert msg.media_url == "https://mmg.whatsapp.net/o1/v/t62.7118-24/abc.enc"


@pytest.mark.parametrize("path", sorted(REAL.glob("wh-*.json")), ids=lambda p: p.name)
def test_real_webhook_captures_parse(path: Path) -> None:
    capture = load(path)
    # The gateway posts plain JSON with no signature header.
    assert not any("signature" in h.lower() or "hmac" in h.lower() for h in capture["headers"])
    events = parse(capture["body"])
    if capture["body"]["event"] == "connection.update":
        at = envelope_time(capture["body"].get("date_time"))
        assert at is not None
        assert events == [StatusChanged(SessionStatus.CONNECTING, "connecting", at=at)]
    else:  # instance.create / instance.delete / error: nothing zapsync acts on
        assert events == [UnknownEvent(capture["body"]["event"])]


# --- response samples, replayed over HTTP ------------------------------------------------


CONNECTING = {"instance": {"instanceName": "vendas", "state": "connecting"}}


async def _connect_error(replay: Replay) -> None:
    body = load(EVOLUTION / "connect.error-with-200.response.json")
    gw = gateway(replay, "vendas")
    replay.answer("/instance/connect/vendas", 200, body)
    with pytest.raises(GatewayRejected, match="Error: Connection Closed"):
        await gw.connect()
    replay.answer("/instance/connectionState/vendas", 200, CONNECTING)
    replay.answer("/instance/connect/vendas", 200, body)
    with pytest.raises(GatewayRejected, match="Error: Connection Closed"):
        await gw.get_qr()


async def _connect_qr(replay: Replay) -> None:
    # The QR is read only while `connecting`: there `connect` just answers the current one.
    replay.answer("/instance/connectionState/vendas", 200, CONNECTING)
    replay.answer("/instance/connect/vendas", 200, load(EVOLUTION / "connect.qr.response.json"))
    qr = await gateway(replay, "vendas").get_qr()
    assert qr == QrCode("2@y8eK3nR0cVQ1...,xg5y...,Yt2...,8f3...", None)


async def _state_close(replay: Replay) -> None:
    body = load(EVOLUTION / "connectionState.close.response.json")
    replay.answer("/instance/connectionState/vendas", 200, body)
    state = await gateway(replay, "vendas").get_state()
    assert (state.status, state.raw_status) == (SessionStatus.DISCONNECTED, "close")


async def _state_open(replay: Replay) -> None:
    body = load(EVOLUTION / "connectionState.open.response.json")
    replay.answer("/instance/connectionState/vendas", 200, body)
    state = await gateway(replay, "vendas").get_state()
    assert (state.status, state.raw_status) == (SessionStatus.CONNECTED, "open")


async def _find_chats(replay: Replay) -> None:
    replay.answer(
        "/chat/findChats/vendas", 200, load(EVOLUTION / "findChats.response.json"), "POST"
    )
    pages = await collect(gateway(replay, "vendas").list_chats(page_size=10))
    assert pages == [
        [
            Chat(
                "5511987654321@s.whatsapp.net",
                "Maria Souza",
                last_message_at=datetime.fromtimestamp(1763647391, UTC),
                unread_count=2,
            )
        ]
    ]
    assert replay.requests[-1][2] == {"where": {}, "take": 10, "skip": 0}


async def _find_messages(replay: Replay) -> None:
    body = load(EVOLUTION / "findMessages.response.json")
    replay.answer("/chat/findMessages/vendas", 200, body, "POST")
    [page] = await collect(gateway(replay, "vendas").list_messages("5511987654321@s.whatsapp.net"))
    assert [(m.provider_message_id, m.from_me, m.body, m.ack) for m in page] == [
        ("3EB0A1B2C3D4E5F6", True, "Entregamos sim!", Ack.READ),  # from MessageUpdate
        ("3EB0C431D8F2A1B7", False, "Oi, vocês entregam amanhã?", None),
    ]
    assert replay.requests[-1][2] == {
        "where": {"key": {"remoteJid": "5511987654321@s.whatsapp.net"}},
        "page": 1,
        "offset": 100,
    }


async def _create(replay: Replay) -> None:
    body = load(EVOLUTION / "instance-create.response.json")
    replay.answer("/instance/create", 201, body, "POST")
    info = await gateway(replay, "vendas").create_instance(TARGET)
    assert (info.instance, info.status, info.qr) == ("vendas", SessionStatus.CONNECTING, None)
    sent = replay.requests[-1][2]
    assert sent["webhook"]["url"] == body["webhook"]["webhookUrl"]
    assert sent["webhook"]["headers"] == body["webhook"]["webhookHeaders"]
    assert sent["webhook"]["byEvents"] is False
    assert sent["webhook"]["events"] == list(WEBHOOK_EVENTS)


async def _logout(replay: Replay) -> None:
    replay.answer(
        "/instance/logout/vendas", 200, load(EVOLUTION / "logout.response.json"), "DELETE"
    )
    await gateway(replay, "vendas").logout()


async def _send_text(replay: Replay) -> None:
    request = load(EVOLUTION / "sendText.request.json")
    replay.answer(
        "/message/sendText/vendas", 201, load(EVOLUTION / "sendText.response.json"), "POST"
    )
    sent = await gateway(replay, "vendas").send_text(
        f"{request['number']}@s.whatsapp.net", request["text"]
    )
    assert (sent.provider_message_id, sent.ack) == ("3EB0A1B2C3D4E5F6", Ack.PENDING)
    assert replay.requests[-1][2] == request  # the number goes as digits, as in the sample


RESPONSE_SAMPLES: dict[str, Callable[[Replay], Awaitable[None]]] = {
    "connect.error-with-200.response.json": _connect_error,
    "connect.qr.response.json": _connect_qr,
    "connectionState.close.response.json": _state_close,
    "connectionState.open.response.json": _state_open,
    "findChats.response.json": _find_chats,
    "findMessages.response.json": _find_messages,
    "instance-create.response.json": _create,
    "logout.response.json": _logout,
    "sendText.request.json": _send_text,
    "sendText.response.json": _send_text,
}


@pytest.mark.parametrize("name", sorted(RESPONSE_SAMPLES))
async def test_response_sample_is_read(fresh: Replay, name: str) -> None:
    await RESPONSE_SAMPLES[name](fresh)
    assert not fresh.queue, "the adapter made fewer calls than the sample expects"


# --- real 2.3.6 captures, replayed over HTTP ---------------------------------------------


def cap(name: str) -> dict[str, Any]:
    [path] = REAL.glob(f"{name}-*.json")
    return dict(load(path))


async def _real_state(replay: Replay, name: str, status: SessionStatus) -> None:
    capture = cap(name)
    instance = capture["request"]["url"].rsplit("/", 1)[-1]
    replay.play(capture)
    assert (await gateway(replay, instance).get_state()).status is status


async def _real_create(replay: Replay, name: str) -> None:
    capture = cap(name)
    replay.play(capture)
    instance = capture["request"]["body"]["instanceName"]
    info = await gateway(replay, instance).create_instance(TARGET)
    # 2.3.6 answers `close` and `{"count":0}` when it could not make a QR (offline).
    assert (info.instance, info.status, info.qr) == (instance, SessionStatus.DISCONNECTED, None)
    sent = replay.requests[-1][2]
    assert set(capture["request"]["body"]) - {"token"} <= set(sent)
    assert sent["integration"] == "WHATSAPP-BAILEYS" and sent["qrcode"] is True


async def _real_qr(replay: Replay, name: str, state: str) -> None:
    # Reading the QR of a `close` instance asks only its state: `connect` would start it.
    capture = cap(name)
    replay.play(cap(state), capture)
    gw = gateway(replay, capture["request"]["url"].rsplit("/", 1)[-1])
    assert await gw.get_qr() == QrCode(None, None)
    assert [r[1] for r in replay.requests] == [urlsplit(cap(state)["request"]["url"]).path]
    assert await gw.connect() == QrCode(None, None)  # `{"count":0}` is an answer, not an error


async def _real_identity(replay: Replay) -> None:
    capture = cap("06")
    replay.play(capture)
    assert await gateway(replay, "test1").identity() == capture["response"][0]["id"]


async def _real_foreign_webhook(replay: Replay, name: str) -> None:
    capture = cap(name)
    replay.play(capture)
    foreign = await gateway(replay, "test1").foreign_webhook(TARGET)
    row = capture["response"]
    assert foreign is not None and foreign.url == row["url"]
    assert foreign.config["events"] == row["events"]
    assert foreign.config.get("headers") == row["headers"]


async def _real_ok(replay: Replay, name: str, call: str) -> None:
    capture = cap(name)
    replay.play(capture)
    gw = gateway(replay, urlsplit(capture["request"]["url"]).path.rsplit("/", 1)[-1])
    if call == "webhook":
        await gw.register_webhook(TARGET)
        sent = replay.requests[-1][2]["webhook"]
        assert set(capture["request"]["body"]["webhook"]) - {"enabled"} <= set(sent)
    else:
        await getattr(gw, call)()


async def _real_create_noauth(replay: Replay) -> None:
    replay.play(cap("02"))
    with pytest.raises(GatewayRejected) as err:
        await gateway(replay, "test1").create_instance(TARGET)
    assert (err.value.reason, err.value.status_code) == ("Unauthorized", 401)


async def _real_create_bad(replay: Replay) -> None:
    replay.play(cap("25"))
    with pytest.raises(GatewayRejected, match="Foreign key constraint violated") as err:
        await gateway(replay, "test1").create_instance(TARGET)
    assert err.value.status_code == 400


async def _real_create_dup(replay: Replay) -> None:
    # "name already in use" means attach: move the webhook, then read the live state.
    replay.play(cap("22"), cap("09"), cap("04"))
    info = await gateway(replay, "test1").create_instance(TARGET)
    assert (info.instance, info.status) == ("test1", SessionStatus.DISCONNECTED)
    assert [r[:2] for r in replay.requests] == [
        ("POST", "/instance/create"),
        ("POST", "/webhook/set/test1"),
        ("GET", "/instance/connectionState/test1"),
    ]


async def _real_unknown(replay: Replay) -> None:
    replay.play(cap("17"))
    with pytest.raises(GatewayRejected) as err:
        await gateway(replay, "nope").get_state()
    assert (err.value.reason, err.value.status_code) == ('The "nope" instance does not exist', 404)


async def _real_send_closed(replay: Replay) -> None:
    replay.play(cap("15"))
    with pytest.raises(GatewayUnavailable, match="Connection Closed"):
        await gateway(replay, "test1").send_text("5511999999999@s.whatsapp.net", "hello")
    assert replay.requests[-1][2] == {"number": "5511999999999", "text": "hello"}


async def _real_logout_closed(replay: Replay) -> None:
    # 400 "is not connected", yet Evolution goes on reconnecting: open the socket and log
    # out of that, so the instance stays down.
    replay.play(cap("20"), cap("07"))
    replay.answer("/instance/logout/test1", 200, load(EVOLUTION / "logout.response.json"), "DELETE")
    await gateway(replay, "test1").logout()
    assert [r[:2] for r in replay.requests] == [
        ("DELETE", "/instance/logout/test1"),
        ("GET", "/instance/connect/test1"),
        ("DELETE", "/instance/logout/test1"),
    ]


async def _real_chats(replay: Replay, name: str) -> None:
    replay.play(cap(name))
    pages = await collect(gateway(replay, "test1" if name == "11" else "seed1").list_chats())
    if name == "11":
        assert pages == []
        return
    assert pages == [
        [
            Chat(
                "5511999999999@s.whatsapp.net",
                "Alice",
                last_message_at=datetime(2026, 11, 22, 12, 20, tzinfo=UTC),
                unread_count=1,
            )
        ]
    ]


async def _real_messages(replay: Replay, name: str) -> None:
    replay.play(cap(name))
    instance = "test1" if name == "12" else "seed1"
    pages = await collect(gateway(replay, instance).list_messages("5511999999999@s.whatsapp.net"))
    if name == "12":
        assert pages == []
        return
    [[msg]] = pages
    assert (msg.provider_message_id, msg.body, msg.sender_name, msg.ack) == (
        "ABC123",
        "hi there",
        "Alice",
        None,
    )


REAL_CASES: dict[str, Callable[[Replay], Awaitable[None]]] = {
    "02": _real_create_noauth,
    "03": lambda r: _real_create(r, "03"),
    "04": lambda r: _real_state(r, "04", SessionStatus.DISCONNECTED),
    "06": _real_identity,
    "07": lambda r: _real_qr(r, "07", "04"),
    "08": lambda r: _real_foreign_webhook(r, "08"),
    "09": lambda r: _real_ok(r, "09", "webhook"),
    "10": lambda r: _real_foreign_webhook(r, "10"),
    "11": lambda r: _real_chats(r, "11"),
    "12": lambda r: _real_messages(r, "12"),
    "15": _real_send_closed,
    "16": lambda r: _real_state(r, "16", SessionStatus.DISCONNECTED),
    "17": _real_unknown,
    "20": _real_logout_closed,
    "21": lambda r: _real_state(r, "21", SessionStatus.DISCONNECTED),
    "22": _real_create_dup,
    "23": lambda r: _real_ok(r, "23", "delete"),
    "25": _real_create_bad,
    "26": lambda r: _real_create(r, "26"),
    "29": lambda r: _real_ok(r, "29", "webhook"),
    "30": lambda r: _real_state(r, "30", SessionStatus.DISCONNECTED),
    "31": lambda r: _real_qr(r, "31", "30"),
    "32": lambda r: _real_state(r, "32", SessionStatus.CONNECTING),
    "34": lambda r: _real_ok(r, "34", "delete"),
    "35": lambda r: _real_create(r, "35"),
    "37": lambda r: _real_state(r, "37", SessionStatus.DISCONNECTED),
    "39": lambda r: _real_ok(r, "39", "delete"),
    "40": lambda r: _real_create(r, "40"),
    "41": lambda r: _real_chats(r, "41"),
    "42": lambda r: _real_messages(r, "42"),
    "43": lambda r: _real_ok(r, "43", "delete"),
}
# Captures of calls the adapter never makes, and why.
NOT_READ = {
    "00": "server banner",
    "01": "fetchInstances: status comes from connectionState only (the DB column lies); "
    "the instance's id is read by name (06)",
    "05": "fetchInstances",
    "13": "findContacts: contacts come from chats and webhooks",
    "14": "settings",
    "18": "settings",
    "19": "restart: connect heals a drop; the sandbox reproduces this error-with-200",
    "24": "fetchInstances",
    "27": "fetchInstances",
    "28": "whatsappNumbers",
    "33": "fetchInstances",
    "36": "fetchInstances",
    "38": "fetchInstances",
}


def test_every_real_capture_is_replayed_or_explained() -> None:
    numbered = {p.name.split("-", 1)[0] for p in REAL.glob("[0-9]*.json")}
    assert numbered == set(REAL_CASES) | set(NOT_READ)
    assert not set(REAL_CASES) & set(NOT_READ)
    for number in NOT_READ:  # still a well-formed capture
        capture = cap(number)
        assert {"request", "status", "response"} <= set(capture)


@pytest.mark.parametrize("number", sorted(REAL_CASES))
async def test_real_capture_is_read(fresh: Replay, number: str) -> None:
    await REAL_CASES[number](fresh)
    assert not fresh.queue, "the adapter made fewer calls than the capture expects"


async def test_a_status_that_cannot_be_read_is_unavailable_not_closed(fresh: Replay) -> None:
    gw = gateway(fresh, "vendas")
    bodies: list[Any] = [
        {"instance": {"instanceName": "vendas"}},
        {"instance": {"state": "weird"}},
        [],
    ]
    for body in bodies:
        fresh.answer("/instance/connectionState/vendas", 200, body)
        with pytest.raises(GatewayUnavailable):
            await gw.get_state()


# --- event names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("MESSAGES_UPSERT", "messages.upsert"),
        ("messages.upsert", "messages.upsert"),
        ("messages-upsert", "messages.upsert"),
        ("https://hook.example/evo/messages-upsert", "messages.upsert"),
        ("/webhooks/evolution/42/connection-update/", "connection.update"),
        ("GROUP_PARTICIPANTS_UPDATE", "group-participants.update"),
        ("group-participants-update", "group-participants.update"),
        ("SEND_MESSAGE_UPDATE", "send.message.update"),
        ("SOMETHING_NEW", "something.new"),
    ],
)
def test_event_name_normalises_the_three_spellings(raw: str, name: str) -> None:
    assert event_name(raw) == name


@pytest.mark.parametrize("spelling", ["MESSAGES_UPSERT", "messages-upsert", "messages.upsert"])
def test_webhook_body_accepts_every_event_spelling(spelling: str) -> None:
    doc = load(EVOLUTION / "webhook.messages-upsert.text.json")
    doc["event"] = spelling
    assert received(doc).body == "Oi, vocês entregam amanhã?"


# --- webhook edge cases ------------------------------------------------------------------


def envelope(event: str, data: Any) -> dict[str, Any]:
    return {"event": event, "instance": "vendas", "data": data, "apikey": None}


def raw_message(message: dict[str, Any], message_type: str, **key: Any) -> dict[str, Any]:
    return {
        "key": {"remoteJid": "5511987654321@s.whatsapp.net", "fromMe": False, "id": "ID1", **key},
        "pushName": "Maria",
        "status": "DELIVERY_ACK",
        "message": message,
        "messageType": message_type,
        "messageTimestamp": 1763647391,
        "source": "android",
    }


def test_contacts_upsert_as_a_single_object() -> None:
    doc = envelope(
        "contacts.upsert",
        {"remoteJid": "5511987654321@s.whatsapp.net", "pushName": "Maria", "profilePicUrl": None},
    )
    assert parse(doc) == [ContactSeen("5511987654321@s.whatsapp.net", "Maria")]


def test_contacts_upsert_as_an_array_of_several() -> None:
    doc = envelope(
        "contacts.upsert",
        [
            {"remoteJid": "1@s.whatsapp.net", "pushName": "A"},
            {"remoteJid": "2@lid", "pushName": None},
        ],
    )
    assert parse(doc) == [ContactSeen("1@s.whatsapp.net", "A"), ContactSeen("2@lid", None)]


@pytest.mark.parametrize(
    ("status", "ack"),
    [
        ("PENDING", Ack.PENDING),
        ("SERVER_ACK", Ack.SENT),
        ("DELIVERY_ACK", Ack.DELIVERED),
        ("READ", Ack.READ),
        ("PLAYED", Ack.PLAYED),
        ("ERROR", Ack.FAILED),
        (4, Ack.READ),  # Baileys' numeric proto status, as some builds send it
    ],
)
def test_message_update_statuses_map_to_acks(status: Any, ack: Ack) -> None:
    doc = envelope(
        "messages.update",
        {"keyId": "K1", "remoteJid": "1@s.whatsapp.net", "fromMe": True, "status": status},
    )
    assert parse(doc) == [MessageAcked("K1", "1@s.whatsapp.net", ack)]


def test_deleted_status_is_a_deletion_not_an_ack() -> None:
    doc = envelope(
        "messages.update", {"keyId": "K1", "remoteJid": "1@s.whatsapp.net", "status": "DELETED"}
    )
    assert parse(doc) == [MessageDeleted("K1", "1@s.whatsapp.net")]


def test_message_update_without_status_is_rejected() -> None:
    with pytest.raises(WebhookRejected) as err:
        parse(envelope("messages.update", {"keyId": "K1"}))
    assert err.value.status_code == 400


@pytest.mark.parametrize(
    ("message", "message_type", "expected"),
    [
        ({"conversation": "oi"}, "conversation", (MessageType.TEXT, "oi")),
        (
            {"extendedTextMessage": {"text": "link https://x.y"}},
            "extendedTextMessage",
            (MessageType.TEXT, "link https://x.y"),
        ),
        (
            {"imageMessage": {"url": "u", "mimetype": "image/png", "caption": "c"}},
            "imageMessage",
            (MessageType.IMAGE, "c"),
        ),
        (
            {"videoMessage": {"url": "u", "mimetype": "video/mp4"}},
            "videoMessage",
            (MessageType.VIDEO, None),
        ),
        (
            {"audioMessage": {"url": "u", "mimetype": "audio/ogg", "ptt": False}},
            "audioMessage",
            (MessageType.AUDIO, None),
        ),
        (
            {"documentMessage": {"url": "u", "fileName": "a.pdf", "caption": "nota"}},
            "documentMessage",
            (MessageType.DOCUMENT, "nota"),
        ),
        (
            {"stickerMessage": {"url": "u", "mimetype": "image/webp"}},
            "stickerMessage",
            (MessageType.STICKER, None),
        ),
        (
            {
                "locationMessage": {
                    "degreesLatitude": -23.5,
                    "degreesLongitude": -46.6,
                    "name": "Loja",
                }
            },
            "locationMessage",
            (MessageType.LOCATION, "-23.5,-46.6"),
        ),
        (
            {"contactMessage": {"displayName": "João", "vcard": "BEGIN:VCARD"}},
            "contactMessage",
            (MessageType.CONTACT, "João"),
        ),
        (
            {"pollCreationMessageV3": {"name": "Lunch?"}},
            "pollCreationMessageV3",
            (MessageType.OTHER, None),
        ),
    ],
)
def test_message_types(
    message: dict[str, Any], message_type: str, expected: tuple[MessageType, str | None]
) -> None:
    msg = received(envelope("messages.upsert", raw_message(message, message_type)))
    assert (msg.type, msg.body) == expected
    assert msg.raw_type == message_type


def test_voice_note_and_document_with_caption() -> None:
    ptt = received(
        envelope(
            "messages.upsert",
            raw_message({"audioMessage": {"url": "u", "ptt": True}}, "audioMessage"),
        )
    )
    assert (ptt.type, ptt.is_voice_note) == (MessageType.AUDIO, True)
    wrapped = {
        "documentWithCaptionMessage": {
            "message": {
                "documentMessage": {
                    "url": "u",
                    "fileName": "nf.pdf",
                    "mimetype": "application/pdf",
                    "caption": "segue",
                }
            }
        }
    }
    doc = received(envelope("messages.upsert", raw_message(wrapped, "documentWithCaptionMessage")))
    assert (doc.type, doc.file_name, doc.caption, doc.mime_type) == (
        MessageType.DOCUMENT,
        "nf.pdf",
        "segue",
        "application/pdf",
    )
    assert doc.raw_type == "documentMessage"


def test_media_url_prefers_evolutions_own_copy() -> None:
    message = {
        "imageMessage": {"url": "https://mmg.whatsapp.net/x.enc"},
        "mediaUrl": "https://s3.example/x.jpg",
    }
    msg = received(envelope("messages.upsert", raw_message(message, "imageMessage")))
    assert msg.media_url == "https://s3.example/x.jpg"


def test_reaction_points_at_its_message() -> None:
    reaction = {
        "reactionMessage": {
            "key": {"remoteJid": "5511987654321@s.whatsapp.net", "fromMe": True, "id": "TARGET"},
            "text": "👍",
        }
    }
    msg = received(envelope("messages.upsert", raw_message(reaction, "reactionMessage")))
    assert (msg.type, msg.body, msg.reaction_to) == (MessageType.REACTION, "👍", "TARGET")


def test_protocol_messages_become_deletions_and_edits() -> None:
    target = {"remoteJid": "5511987654321@s.whatsapp.net", "fromMe": True, "id": "OLD"}
    revoke = raw_message({"protocolMessage": {"key": target, "type": "REVOKE"}}, "protocolMessage")
    assert parse(envelope("messages.upsert", revoke)) == [
        MessageDeleted("OLD", "5511987654321@s.whatsapp.net")
    ]
    edit = raw_message(
        {"protocolMessage": {"key": target, "type": 14, "editedMessage": {"conversation": "novo"}}},
        "protocolMessage",
    )
    assert parse(envelope("messages.upsert", edit)) == [
        MessageEdited("OLD", "5511987654321@s.whatsapp.net", "novo")
    ]
    edited_event = {
        "key": target,
        "type": "MESSAGE_EDIT",
        "editedMessage": {"extendedTextMessage": {"text": "de novo"}},
    }
    assert parse(envelope("messages.edited", edited_event)) == [
        MessageEdited("OLD", "5511987654321@s.whatsapp.net", "de novo")
    ]
    notice = raw_message(
        {"protocolMessage": {"type": "HISTORY_SYNC_NOTIFICATION"}}, "protocolMessage"
    )
    assert parse(envelope("messages.upsert", notice)) == []


@pytest.mark.parametrize(
    "key",
    [
        {
            "remoteJid": "98765@lid",
            "addressingMode": "lid",
            "remoteJidAlt": "5511987654321@s.whatsapp.net",
        },
        {"remoteJid": "98765@lid", "senderPn": "5511987654321@s.whatsapp.net"},
        {"remoteJid": "98765@lid", "senderPn": "5511987654321"},
        {
            "remoteJid": "98765@lid",
            "addressingMode": "lid",
            "participantAlt": "5511987654321@s.whatsapp.net",
        },
    ],
)
def test_lid_chats_carry_the_phone_jid(key: dict[str, Any]) -> None:
    msg = received(
        envelope("messages.upsert", raw_message({"conversation": "oi"}, "conversation", **key))
    )
    assert (msg.chat_jid, msg.chat_alt_jid) == ("98765@lid", "5511987654321@s.whatsapp.net")


def test_lid_chat_without_a_phone_has_no_alt() -> None:
    msg = received(
        envelope(
            "messages.upsert",
            raw_message({"conversation": "oi"}, "conversation", remoteJid="98765@lid"),
        )
    )
    assert (msg.chat_jid, msg.chat_alt_jid) == ("98765@lid", None)


def test_group_sender_prefers_the_phone_over_the_lid() -> None:
    key = {
        "remoteJid": "120363000000000001@g.us",
        "participant": "111@lid",
        "participantAlt": "5511900000002@s.whatsapp.net",
    }
    msg = received(
        envelope("messages.upsert", raw_message({"conversation": "oi"}, "conversation", **key))
    )
    assert (msg.chat_jid, msg.chat_alt_jid, msg.sender_jid) == (
        "120363000000000001@g.us",
        None,
        "5511900000002@s.whatsapp.net",
    )


@pytest.mark.parametrize(
    "stamp",
    [1763647391, "1763647391", {"low": 1763647391, "high": 0, "unsigned": True}, 1763647391000],
)
def test_message_timestamp_forms(stamp: Any) -> None:
    raw = raw_message({"conversation": "oi"}, "conversation")
    raw["messageTimestamp"] = stamp
    assert received(envelope("messages.upsert", raw)).timestamp == datetime.fromtimestamp(
        1763647391, UTC
    )


def test_history_batch_skips_what_it_cannot_read() -> None:
    good = raw_message({"conversation": "old"}, "conversation")
    bad = {"key": {"id": "X"}, "message": {}}
    [event] = parse(envelope("messages.set", [good, bad]))
    assert isinstance(event, HistoryArrived)
    assert [m.body for m in event.messages] == ["old"]


def test_qr_limit_reached_is_a_failure() -> None:
    doc = envelope(
        "qrcode.updated",
        {"message": "QR code limit reached, please login again", "statusCode": 500},
    )
    [event] = parse(doc)
    assert isinstance(event, StatusChanged) and event.status is SessionStatus.FAILED


def test_close_with_a_reconnectable_code_is_disconnected_not_logged_out() -> None:
    doc = envelope(
        "connection.update", {"instance": "vendas", "state": "close", "statusReason": 428}
    )
    assert parse(doc) == [StatusChanged(SessionStatus.DISCONNECTED, "close", reason="428")]


def test_unknown_events_are_reported_not_rejected() -> None:
    assert parse(envelope("presence.update", {"id": "x"})) == [UnknownEvent("presence.update")]
    assert parse(envelope("CALL", {})) == [UnknownEvent("call")]


_KEY = {"id": "A", "remoteJid": "1@s.whatsapp.net"}
_TEXT = {"conversation": "x"}
MALFORMED: list[Any] = [
    {"data": {}},
    {"event": "messages.upsert"},
    {"event": "messages.upsert", "data": {"message": _TEXT}},
    {"event": "messages.upsert", "data": {"key": _KEY, "message": _TEXT}},
    {
        "event": "messages.upsert",
        "data": {"key": _KEY, "message": _TEXT, "messageTimestamp": "soon"},
    },
    {"event": "connection.update", "data": {"instance": "vendas"}},
    {"event": "contacts.upsert", "data": [{"pushName": "no jid"}]},
    {"event": "chats.upsert", "data": "nope"},
]


@pytest.mark.parametrize(
    "body", [b"not json", b"\xff\xfe", b"[]", *(json.dumps(doc).encode() for doc in MALFORMED)]
)
def test_malformed_bodies_are_rejected_with_400(body: bytes) -> None:
    gw = EvolutionGateway("http://unused.invalid", "k", "vendas")
    with pytest.raises(WebhookRejected) as err:
        gw.parse_webhook(body)
    assert err.value.status_code == 400


def test_evolution_does_not_sign_webhooks() -> None:
    gw = EvolutionGateway("http://unused.invalid", "k", "vendas")
    body = (EVOLUTION / "webhook.messages-upsert.text.json").read_bytes()
    assert gw.verify_webhook({"X-Zapsync-Token": "secret"}, body, "secret") == UNSIGNED

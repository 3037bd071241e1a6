"""What a real Evolution 2.3.6 does that its documentation does not say, reproduced by the
sandbox's Evolution dialect over real HTTP and handled by the adapter: `logout.instance` with
`data: null`, a one-sided `messageTimestamp` filter that is ignored, permanent errors answered
as 500, saved names only in `findContacts`, read receipts for `@lid` chats."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.gateways import control, serving_dialect
from tests.support.media_host import media_host
from tests.support.receiver import Receiver
from tests.support.sessions import insert_session
from zapsync.domain.gateway import Ack
from zapsync.providers.base import (
    GatewayRejected,
    GatewayUnavailable,
    MediaToSend,
    WebhookTarget,
)
from zapsync.providers.evolution.client import EvolutionGateway
from zapsync.runtime.context import AppContext
from zapsync.sandbox.dialects.evolution.dialect import GLOBAL_API_KEY
from zapsync.store.models import Session

SECRET = "s3cr3t-for-tests"
PHONE = "5511900000001"
CUSTOMER = "5511988887777@s.whatsapp.net"
HOOK_SECRET = {"X-Zapsync-Token": "hook-secret"}  # the one `insert_session` stores


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
    async with httpx.AsyncClient(base_url=sandbox, headers={"apikey": GLOBAL_API_KEY}) as client:
        yield client


async def paired(
    gw: EvolutionGateway, raw: httpx.AsyncClient, hook: str = "http://127.0.0.1:9/none"
) -> None:
    await gw.create_instance(WebhookTarget(hook, SECRET))
    await control(raw, "/instances/vendas/scan", {"phone": PHONE, "push_name": "Loja Centro"})


# --- logout.instance ---------------------------------------------------------------------


async def test_a_logout_is_announced_with_null_data_and_stored_as_logged_out(
    gw: EvolutionGateway,
    raw: httpx.AsyncClient,
    receiver: Receiver,
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    await paired(gw, raw, receiver.url)
    await gw.logout()
    [logout] = await receiver.wait_for("logout.instance")
    assert logout.doc["data"] is None and logout.doc["instance"] == "vendas"

    # Refused with a 400, Evolution would never send it again: it must be taken.
    resp = await client.post(
        f"/api/v1/webhooks/evolution/{sid}", content=logout.body, headers=HOOK_SECRET
    )
    assert resp.status_code == 200, resp.text
    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        assert (session.status, session.status_reason) == ("logged_out", "gateway reports logout")


# --- findMessages ------------------------------------------------------------------------


async def test_history_since_a_moment_is_one_page_when_the_window_fits_in_one(
    sandbox: str, raw: httpx.AsyncClient
) -> None:
    asked: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        if "/chat/findMessages/" in request.url.path:
            asked.append(request)

    http = httpx.AsyncClient(event_hooks={"request": [note]})
    gw = EvolutionGateway(sandbox, GLOBAL_API_KEY, "vendas", client=http, timeout=2.0)
    try:
        await paired(gw, raw)
        for n in range(9):
            await control(
                raw,
                "/instances/vendas/messages",
                {"chat_jid": CUSTOMER, "body": f"m{n}", "timestamp": 1_800_000_000 + n * 60},
            )
        since = datetime.fromtimestamp(1_800_000_000 + 5 * 60, UTC)  # m5
        pages = [page async for page in gw.list_messages(CUSTOMER, since=since, page_size=4)]
    finally:
        await http.aclose()
    assert [[m.body for m in page] for page in pages] == [["m8", "m7", "m6", "m5"]]
    # Evolution drops a filter with one bound; with both it answers the window alone.
    assert len(asked) == 1


async def test_a_one_sided_timestamp_filter_is_ignored_like_the_real_gateway(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    for n in range(3):
        await control(
            raw,
            "/instances/vendas/messages",
            {"chat_jid": CUSTOMER, "body": f"m{n}", "timestamp": 1_800_000_000 + n * 60},
        )

    async def total(bounds: dict[str, str]) -> int:
        where = {"key": {"remoteJid": CUSTOMER}, "messageTimestamp": bounds}
        resp = await raw.post("/chat/findMessages/vendas", json={"where": where})
        count: int = resp.json()["messages"]["total"]
        return count

    start = datetime.fromtimestamp(1_800_000_060, UTC).isoformat()
    end = datetime.fromtimestamp(1_800_000_060, UTC).isoformat()
    assert await total({"gte": start}) == 3
    assert await total({"lte": end}) == 3
    assert await total({"gte": start, "lte": end}) == 1

    async def chats(bounds: dict[str, str]) -> int:
        where = {"messageTimestamp": bounds}
        return len((await raw.post("/chat/findChats/vendas", json={"where": where})).json())

    later = datetime.fromtimestamp(1_900_000_000, UTC).isoformat()
    assert await chats({"gte": later}) == 1  # ignored
    assert await chats({"gte": later, "lte": later}) == 0


# --- activity ----------------------------------------------------------------------------


async def test_status_noise_from_a_dead_instance_does_not_keep_it_from_cleanup(
    sandbox: str,
    gw: EvolutionGateway,
    raw: httpx.AsyncClient,
    receiver: Receiver,
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
) -> None:
    config = {"base_url": sandbox, "api_key": GLOBAL_API_KEY, "instance": "vendas"}
    dead = await insert_session(ctx, tenant, "evolution", status="disconnected", config=config)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    async with ctx.db.session() as db:
        session = await db.get_one(Session, dead)
        session.created_at = session.last_activity_at = long_ago
        await db.commit()
    # Never paired: every restart shows a QR and says `connecting` again, without end.
    await gw.create_instance(WebhookTarget(receiver.url, SECRET))
    for _ in range(3):
        await control(raw, "/instances/vendas/drop", silent="false")
        await gw.connect()
    noise = await receiver.wait_for("connection.update", 7)
    assert {d.doc["data"]["state"] for d in noise} == {"connecting", "close"}
    for delivery in receiver.received():
        resp = await client.post(
            f"/api/v1/webhooks/evolution/{dead}", content=delivery.body, headers=HOOK_SECRET
        )
        assert resp.status_code == 200, resp.text
    async with ctx.db.session() as db:
        assert (await db.get_one(Session, dead)).last_activity_at == long_ago

    report = (await client.post("/api/v1/jobs/cleanup-sessions/run", headers=tenant.headers)).json()
    assert report["archived"] == [dead]


async def test_a_message_is_activity(
    gw: EvolutionGateway,
    raw: httpx.AsyncClient,
    receiver: Receiver,
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        session.created_at = session.last_activity_at = long_ago
        await db.commit()
    await paired(gw, raw, receiver.url)
    await control(raw, "/instances/vendas/messages", {"chat_jid": CUSTOMER, "body": "oi"})
    [upsert] = await receiver.wait_for("messages.upsert")
    resp = await client.post(
        f"/api/v1/webhooks/evolution/{sid}", content=upsert.body, headers=HOOK_SECRET
    )
    assert resp.status_code == 200, resp.text
    async with ctx.db.session() as db:
        active = (await db.get_one(Session, sid)).last_activity_at
    assert active is not None and active > long_ago + timedelta(days=39)


# --- permanent errors --------------------------------------------------------------------


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    with media_host() as url:
        yield url


async def test_an_image_the_gateway_cannot_decode_is_refused_not_unavailable(
    gw: EvolutionGateway, raw: httpx.AsyncClient, files: str
) -> None:
    await paired(gw, raw)
    with pytest.raises(GatewayRejected) as err:
        await gw.send_media(CUSTOMER, MediaToSend("image", f"{files}/broken.jpg", "image/jpeg"))
    assert (err.value.status_code, err.value.reason) == (
        500,
        "Input buffer contains unsupported image format",
    )
    sent = await gw.send_media(CUSTOMER, MediaToSend("image", f"{files}/photo.png", "image/png"))
    assert sent.provider_message_id
    # Other 500s stay outages: they are retried.
    await control(raw, "/instances/vendas/drop")
    with pytest.raises(GatewayUnavailable, match="Connection Closed"):
        await gw.send_media(CUSTOMER, MediaToSend("image", f"{files}/photo.png", "image/png"))


async def test_the_dialect_answers_an_undecodable_base64_image_like_evolution(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    body = {"number": CUSTOMER, "mediatype": "image", "media": "bm90IGFuIGltYWdl"}
    resp = await raw.post("/message/sendMedia/vendas", json=body)
    assert (resp.status_code, resp.json()) == (
        500,
        {
            "status": 500,
            "error": "Internal Server Error",
            "response": {"message": "Input buffer contains unsupported image format"},
        },
    )


# --- history acks ------------------------------------------------------------------------


async def test_history_acks_come_from_the_status_update_rows(
    gw: EvolutionGateway, raw: httpx.AsyncClient
) -> None:
    await paired(gw, raw)
    sent = await gw.send_text(CUSTOMER, "chegou?")
    await control(
        raw,
        "/instances/vendas/acks",
        {"chat_jid": CUSTOMER, "message_id": sent.provider_message_id, "ack": 3},
    )
    where = {"key": {"remoteJid": CUSTOMER}}
    [record] = (await raw.post("/chat/findMessages/vendas", json={"where": where})).json()[
        "messages"
    ]["records"]
    assert "status" not in record  # as 2.3.6 answers: the record has no status of its own
    assert record["MessageUpdate"] == [{"status": "READ"}]
    [[message]] = [page async for page in gw.list_messages(CUSTOMER)]
    assert (message.provider_message_id, message.ack) == (sent.provider_message_id, Ack.READ)

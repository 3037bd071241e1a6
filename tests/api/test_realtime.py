"""Socket.IO on a real server: live events reach their organization only, tokens are checked
on connect, client events answer with acknowledgements, and Redis carries events across
replicas."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import socketio

from tests.conftest import Tenant
from tests.support.servers import serving_app
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.services import accounts
from zapsync.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
Received = list[tuple[str, Any]]


@asynccontextmanager
async def server(settings: Settings) -> AsyncIterator[str]:
    # started without blocking this loop: the test's own app may hold the database meanwhile
    async with serving_app(create_app(settings)) as url:
        yield url


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    async with server(settings) as url:
        yield url


class Refused(Exception):
    """The server refused the connection; the message holds its reason."""


@asynccontextmanager
async def socket(
    url: str, auth: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[socketio.AsyncClient, Received]]:
    client = socketio.AsyncClient(reconnection=False)
    received: Received = []

    refusals: list[Any] = []

    @client.on("*")
    async def anything(event: str, data: Any) -> None:
        received.append((event, data))

    @client.event
    async def connect_error(data: Any) -> None:
        refusals.append(data)

    try:
        await client.connect(
            url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=5
        )
    except socketio.exceptions.ConnectionError:
        raise Refused(str(refusals)) from None
    try:
        yield client, received
    finally:
        await client.disconnect()


async def first(
    received: Received, match: Callable[[str, Any], bool], timeout: float = 5.0
) -> tuple[Any, float]:
    """The first event matching, and how long it took to come."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for event, data in received:
            if match(event, data):
                return data, time.monotonic() - started
        await asyncio.sleep(0.005)
    raise AssertionError(f"no matching event in {timeout} s; got {[e for e, _ in received]}")


def import_done(sid: int) -> Callable[[str, Any], bool]:
    return lambda event, data: (
        event == "sync_run" and data.get("session_id") == sid and data.get("finished_at")
    )


async def paired_session(http: httpx.AsyncClient, tenant: Tenant) -> int:
    """A sandbox session paired through `http`, once the import its connection started is done
    (a message arriving during that import is history, not news)."""
    async with socket(str(http.base_url).rstrip("/"), auth={"token": tenant.token}) as (_, seen):
        created = await http.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "Loja", "provider": "sandbox", "config": {}},
        )
        assert created.status_code == 201, created.text
        sid: int = created.json()["id"]
        scan = await http.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
        assert scan.status_code == 200, scan.text
        await first(seen, import_done(sid))
    return sid


async def customer_writes(
    http: httpx.AsyncClient, tenant: Tenant, sid: int, body: str, phone: str = "5511987654321"
) -> None:
    resp = await http.post(
        f"/api/v1/sandbox/sessions/{sid}/inbound",
        headers=tenant.headers,
        json={"from_phone": phone, "body": body, "push_name": "Rita"},
    )
    assert resp.status_code == 200, resp.text


async def conversation_with(http: httpx.AsyncClient, tenant: Tenant, phone: str) -> int:
    async def find() -> int | None:
        items = (await http.get("/api/v1/conversations", headers=tenant.headers)).json()["items"]
        return next((c["id"] for c in items if c["contact"]["phone_e164"] == f"+{phone}"), None)

    for _ in range(200):
        found = await find()
        if found is not None:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no conversation with {phone}")


def is_new(body: str) -> Callable[[str, Any], bool]:
    return lambda event, data: event == "new_message" and data.get("body") == body


async def test_a_customer_message_reaches_the_organizations_sockets_within_a_second(
    served: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with (
        httpx.AsyncClient(base_url=served) as http,
        socket(served, auth={"token": tenant.token}) as (_, ours),
        socket(served, headers={"Authorization": f"Bearer {other_tenant.token}"}) as (_, theirs),
    ):
        sid = await paired_session(http, tenant)
        await first(ours, import_done(sid))
        await customer_writes(http, tenant, sid, "chegou?")
        message, took = await first(ours, is_new("chegou?"), timeout=1.0)
        assert took < 1.0
        assert message["direction"] == "in" and message["session_id"] == sid
        update, _ = await first(ours, lambda event, data: event == "conversation_updated")
        assert update["contact"]["name"] == "Rita" and update["unread_count"] == 1
        await asyncio.sleep(0.3)
        assert theirs == [], "nothing crosses organizations"


async def test_a_wrong_or_missing_token_is_refused_on_connect(
    served: str, tenant: Tenant, ctx: AppContext
) -> None:
    for auth, headers, reason in (
        ({"token": "zs_wrong"}, None, "not valid"),
        (None, {"Authorization": "Bearer zs_wrong"}, "not valid"),
        (None, {"Authorization": f"Basic {tenant.token}"}, "token is required"),
        (None, None, "token is required"),
    ):
        with pytest.raises(Refused, match=reason):
            async with socket(served, auth=auth, headers=headers):
                pass
    async with ctx.db.session() as db:
        await accounts.revoke_token(db, tenant.token_id)
        await db.commit()
    with pytest.raises(Refused, match="revoked"):
        async with socket(served, auth={"token": tenant.token}):
            pass


async def test_client_events_answer_and_act_within_the_organization(
    served: str, tenant: Tenant, other_tenant: Tenant, ctx: AppContext
) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        their_sid = await paired_session(http, other_tenant)
        await customer_writes(http, other_tenant, their_sid, "oi", phone="5511911110000")
        theirs = await conversation_with(http, other_tenant, "5511911110000")
        sid = await paired_session(http, tenant)
        await customer_writes(http, tenant, sid, "oi")
        mine = await conversation_with(http, tenant, "5511987654321")

        async with socket(served, auth={"token": tenant.token}) as (sio, received):
            joined = await sio.call("join", {}, timeout=5)
            assert joined == {
                "ok": True,
                "organization_id": tenant.organization_id,
                "rooms": [f"org:{tenant.organization_id}"],
            }
            wrong_org = await sio.call("join", {"organization_id": other_tenant.organization_id})
            assert wrong_org["ok"] is False
            refused = await sio.call("join_conversation", {"conversation_id": theirs})
            assert refused == {
                "ok": False,
                "error": f"no conversation with id {theirs}",
                "status": 404,
            }
            assert (await sio.call("join_conversation", {"conversation_id": mine}))["ok"] is True

            sent = await sio.call(
                "send_message", {"conversation_id": mine, "type": "text", "content": "pelo socket"}
            )
            assert sent["ok"] is True and sent["message"]["ack"] == "pending"
            message_id = sent["message"]["id"]
            await first(
                received,
                lambda e, d: (
                    e == "message_updated" and d["id"] == message_id and d["ack"] == "sent"
                ),
            )
            news = [d for e, d in received if e == "new_message" and d["id"] == message_id]
            assert len(news) == 1, "one copy per socket even in both rooms"
            bad = await sio.call("send_message", {"conversation_id": mine, "type": "text"})
            assert bad["ok"] is False and bad["status"] == 422

            await customer_writes(http, tenant, sid, "e o prazo?")  # after our reply: unread
            await first(received, is_new("e o prazo?"))  # stored before it is read
            phone = await http.get(f"/api/v1/sandbox/sessions/{sid}", headers=tenant.headers)
            assert phone.json()["unread"] == {"5511987654321@s.whatsapp.net": 1}
            read = await sio.call("mark_as_read", {"conversation_id": mine})
            assert read["ok"] is True and read["conversation"]["unread_count"] == 0
            await first(
                received, lambda e, d: e == "messages_read" and d["conversation_id"] == mine
            )
            # ...and the phone's chat is read too (read receipts).
            for _ in range(250):
                phone = await http.get(f"/api/v1/sandbox/sessions/{sid}", headers=tenant.headers)
                if phone.json()["unread"] == {}:
                    break
                await asyncio.sleep(0.02)
            assert phone.json()["unread"] == {}, phone.json()
            assert (await sio.call("mark_as_read", theirs))["status"] == 404
            assert (await sio.call("leave_conversation", {"conversation_id": mine}))["ok"] is True

            async with ctx.db.session() as db:
                await accounts.revoke_token(db, tenant.token_id)
                await db.commit()
            revoked = await sio.call("join", {})
            assert revoked["ok"] is False and "revoked" in revoked["error"]
        assert not any(e == "new_message" and d["id"] == theirs for e, d in received)


async def test_socket_ids_beyond_the_columns_answer_an_error_not_a_crash(
    served: str, tenant: Tenant
) -> None:
    async with socket(served, auth={"token": tenant.token}) as (sio, _):
        for value in (2**31, 2**63, 2**64, str(2**63), 0, -1):
            for event, data in [
                ("join_conversation", {"conversation_id": value}),
                ("leave_conversation", {"conversation_id": value}),
                ("mark_as_read", {"conversation_id": value}),
                ("send_message", {"conversation_id": value, "type": "text", "content": "oi"}),
            ]:
                answer = await sio.call(event, data, timeout=5)
                assert answer["ok"] is False, (event, value, answer)
                assert answer["status"] == 422 and "between 1 and" in answer["error"], answer
        # The socket still works.
        assert (await sio.call("join", {}, timeout=5))["ok"] is True


async def test_a_socket_without_the_org_feed_hears_only_the_conversations_it_joined(
    served: str, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        sid = await paired_session(http, tenant)
        await customer_writes(http, tenant, sid, "primeira", phone="5511922220000")
        watched = await conversation_with(http, tenant, "5511922220000")
        async with socket(served, auth={"token": tenant.token, "org_feed": False}) as (
            sio,
            received,
        ):
            assert (await sio.call("join_conversation", watched))["ok"] is True
            await customer_writes(http, tenant, sid, "outra conversa", phone="5511933330000")
            await customer_writes(http, tenant, sid, "segunda", phone="5511922220000")
            await first(received, is_new("segunda"))
            assert not any(is_new("outra conversa")(e, d) for e, d in received)
            assert all(d.get("conversation_id", d.get("id")) == watched for _, d in received)


async def redis_available() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def test_with_redis_an_event_on_one_replica_reaches_sockets_on_another(
    settings: Settings, tenant: Tenant, other_tenant: Tenant
) -> None:
    if not await redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    channel = f"zapsync-test-{secrets.token_hex(4)}"
    scaled = settings.model_copy(update={"redis_url": REDIS_URL, "socketio_channel": channel})
    probe = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with server(scaled) as first_replica, server(scaled) as second_replica:  # noqa: SIM117
            async with (
                httpx.AsyncClient(base_url=first_replica) as http,
                socket(second_replica, auth={"token": tenant.token}) as (_, ours),
                socket(second_replica, auth={"token": other_tenant.token}) as (_, theirs),
            ):
                for _ in range(250):  # the replica subscribes once its first socket connects
                    if dict(await probe.pubsub_numsub(channel)).get(channel.encode()):
                        break
                    await asyncio.sleep(0.02)
                sid = await paired_session(http, tenant)
                await customer_writes(http, tenant, sid, "via redis")
                await first(ours, is_new("via redis"), timeout=2.0)
                await asyncio.sleep(0.2)
                assert theirs == []
    finally:
        await probe.aclose()

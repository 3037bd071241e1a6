"""Which chats are stored is one rule for the import, webhooks and the sandbox:
`ZAPSYNC_SKIP_GROUPS` (on by default; the old `ZAPSYNC_IMPORT_SKIP_GROUPS` still read) leaves
groups out everywhere, and the Status pseudo-chat (`status@broadcast`) is never stored."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.support.dialect_payloads import (
    DIALECTS,
    message_body,
    paired_instance,
    read_receipt_body,
)
from tests.support.inbox import connected_session, conversations_of, instance, settle
from tests.support.servers import serve_in_thread
from tests.support.sessions import insert_session
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import SimMessage
from zapsync.settings import Settings
from zapsync.store.models import Contact, Conversation, Message, PendingAck

SECRET = {"X-Zapsync-Token": "hook-secret", "Content-Type": "application/json"}
GROUP = "120363012345678901@g.us"
MEMBER = "5511987654321@s.whatsapp.net"
STATUS = "status@broadcast"


def in_group(n: int = 1) -> SimMessage:
    return SimMessage(
        id=f"3EB0GROUP{n:04d}",
        chat_jid=GROUP,
        from_me=False,
        timestamp=int(time.time()),
        body="Bom dia, grupo",
        sender_jid=MEMBER,
        push_name="Maria",
    )


def on_status(from_me: bool) -> SimMessage:
    return SimMessage(
        id="3EB0STATUS01" if from_me else "3EB0STATUS02",
        chat_jid=STATUS,
        from_me=from_me,
        timestamp=int(time.time()),
        body="minha história",
        sender_jid=None if from_me else MEMBER,
        push_name=None if from_me else "Maria",
    )


async def counts(ctx: AppContext) -> tuple[int, int]:
    async with ctx.db.session() as db:
        conversations = await db.scalar(select(func.count()).select_from(Conversation))
        messages = await db.scalar(select(func.count()).select_from(Message))
    return conversations or 0, messages or 0


def served_app(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    yield from served_app(settings)


async def post(served: str, dialect: str, sid: int, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{served}/api/v1/webhooks/{dialect}/{sid}"
        return await client.post(url, content=body, headers=SECRET)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_live_group_message_creates_no_conversation_by_default(
    served: str, ctx: AppContext, tenant: Tenant, dialect: str
) -> None:
    sid = await insert_session(ctx, tenant, dialect, status="connected")

    resp = await post(served, dialect, sid, message_body(dialect, paired_instance(), in_group()))

    assert resp.status_code == 200, resp.text
    assert await counts(ctx) == (0, 0)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("from_me", [False, True], ids=["theirs", "ours"])
async def test_a_status_broadcast_is_never_stored_from_a_webhook(
    served: str, ctx: AppContext, tenant: Tenant, dialect: str, from_me: bool
) -> None:
    sid = await insert_session(ctx, tenant, dialect, status="connected")
    body = message_body(dialect, paired_instance(), on_status(from_me))

    resp = await post(served, dialect, sid, body)

    assert resp.status_code == 200, resp.text
    assert await counts(ctx) == (0, 0)
    async with ctx.db.session() as db:
        jids = (await db.scalars(select(Contact.wa_jid))).all()
    assert STATUS not in jids


class TestGroupsKept:
    """With the setting off, groups are stored on every path."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"skip_groups": False})

    @pytest.mark.parametrize("dialect", DIALECTS)
    async def test_a_live_group_message_is_stored(
        self, served: str, ctx: AppContext, tenant: Tenant, dialect: str
    ) -> None:
        sid = await insert_session(ctx, tenant, dialect, status="connected")
        body = message_body(dialect, paired_instance(), in_group())

        resp = await post(served, dialect, sid, body)

        assert resp.status_code == 200, resp.text
        assert await counts(ctx) == (1, 1)

    async def test_the_sandbox_stores_a_group_message(
        self, app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
    ) -> None:
        sid = await connected_session(app, client, tenant)
        ctx.world.inbound(instance(app, sid), GROUP, "Bom dia, grupo", sender_jid=MEMBER)
        await settle(app)
        assert [c["chat_jid"] for c in await conversations_of(client, tenant)] == [GROUP]


async def test_the_sandbox_skips_groups_and_the_status_chat(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await connected_session(app, client, tenant)
    inst = instance(app, sid)
    ctx.world.inbound(inst, GROUP, "Bom dia, grupo", sender_jid=MEMBER)
    ctx.world.inbound(inst, STATUS, "minha história", sender_jid=MEMBER)
    ctx.world.send(inst, STATUS, "a minha")
    ctx.world.inbound(inst, MEMBER, "oi, só eu")
    await settle(app)
    assert [c["chat_jid"] for c in await conversations_of(client, tenant)] == [MEMBER]
    assert await counts(ctx) == (1, 1)


async def test_the_import_skips_groups_and_the_status_chat(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    created = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "Loja", "provider": "sandbox", "config": {}},
    )
    sid = created.json()["id"]
    inst = ctx.world.get(f"zapsync-{sid}")
    assert inst is not None
    ctx.world.seed(inst, chats=4, groups=2, messages=40, status_broadcast=True)
    await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    await settle(app)
    jids = sorted(c["chat_jid"] for c in await conversations_of(client, tenant))
    assert jids == ["5511900000002@s.whatsapp.net", "5511900000003@s.whatsapp.net"]


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("ZAPSYNC_SKIP_GROUPS", "false", False),
        ("ZAPSYNC_IMPORT_SKIP_GROUPS", "false", False),
        ("ZAPSYNC_SKIP_GROUPS", "true", True),
    ],
)
def test_the_setting_is_read_under_its_new_and_its_old_name(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: bool
) -> None:
    monkeypatch.setenv(env, value)
    assert Settings(_env_file=None).skip_groups is expected


@pytest.mark.parametrize("dialect", ["evolution", "waha"])  # MegaAPI posts no receipts
@pytest.mark.parametrize("chat", [STATUS, GROUP])
async def test_receipts_for_a_chat_not_stored_are_not_kept_waiting(
    served: str, ctx: AppContext, tenant: Tenant, dialect: str, chat: str
) -> None:
    # Every viewer of a status we posted sends a read receipt; none of them has a message to
    # wait for, so none may be parked in pending_acks for ever.
    sid = await insert_session(ctx, tenant, dialect, status="connected")
    ours = SimMessage(id="3EB0OURS0001", chat_jid=chat, from_me=True, timestamp=int(time.time()))
    for n in range(3):
        viewer = f"55119876543{n:02d}@s.whatsapp.net"
        body = read_receipt_body(dialect, paired_instance(), ours, viewer)
        resp = await post(served, dialect, sid, body)
        assert resp.status_code == 200, resp.text
    async with ctx.db.session() as db:
        assert await db.scalar(select(func.count()).select_from(PendingAck)) == 0

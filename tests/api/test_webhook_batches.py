"""Webhook deliveries arriving together are applied together, yet each is answered alone."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.support.inbox import eventually
from tests.support.sessions import insert_session
from zapsync.runtime.context import AppContext
from zapsync.runtime.webhook_batches import WebhookBatcher
from zapsync.services.ingest import webhooks
from zapsync.store.models import Contact, Conversation, Message

SECRET = {"X-Zapsync-Token": "hook-secret"}


def upsert(n: int, chat: int | None = None) -> bytes:
    chat = n if chat is None else chat
    body: dict[str, Any] = {
        "event": "messages.upsert",
        "instance": "vendas",
        "data": {
            "key": {
                "remoteJid": f"5511987{chat:06d}@s.whatsapp.net",
                "fromMe": False,
                "id": f"BATCH{n:06d}",
            },
            "pushName": f"Cliente {chat}",
            "message": {"conversation": f"mensagem {n}"},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()) + n,
        },
    }
    return json.dumps(body).encode()


async def message_count(ctx: AppContext, sid: int) -> int:
    async with ctx.db.session() as db:
        return int(
            await db.scalar(
                select(func.count()).select_from(Message).where(Message.session_id == sid)
            )
            or 0
        )


async def test_concurrent_deliveries_each_get_their_own_answer(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    url = f"/api/v1/webhooks/evolution/{sid}"
    good = [client.post(url, content=upsert(n, chat=n % 7), headers=SECRET) for n in range(40)]
    wrong = client.post(url, content=upsert(900), headers={"X-Zapsync-Token": "nope"})
    malformed = client.post(url, content=b'{"event": "messages.upsert", "data": ', headers=SECRET)
    unknown = client.post(url, content=b'{"event": "labels.edit", "data": {}}', headers=SECRET)
    answers = await asyncio.gather(*good, wrong, malformed, unknown)

    assert [a.status_code for a in answers[:40]] == [200] * 40
    assert all(a.json()["applied"] == 1 for a in answers[:40])
    assert answers[40].status_code == 401
    assert answers[41].status_code == 400
    assert answers[41].headers["content-type"].startswith("application/problem+json")
    assert answers[42].status_code == 202 and answers[42].json()["ignored"] == ["labels.edit"]
    # Every good message stored once; nothing of the refused ones.
    assert await message_count(ctx, sid) == 40
    async with ctx.db.session() as db:
        unread = (
            await db.scalars(
                select(Conversation.unread_count).where(Conversation.session_id == sid)
            )
        ).all()
    assert sorted(unread) == sorted([6, 6, 6, 6, 6, 5, 5])  # 40 messages over 7 chats


async def test_a_failing_batch_is_replayed_one_by_one(
    app: FastAPI,
    ctx: AppContext,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database error on one delivery fails that request only; the others are stored."""
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    real = webhooks.apply_events

    async def poisoned(ctx: AppContext, db: Any, session: Any, events: Any) -> Any:
        if any("POISON" in str(getattr(e, "message", "")) for e in events):
            raise RuntimeError("database refused the row")
        return await real(ctx, db, session, events)

    monkeypatch.setattr(webhooks, "apply_events", poisoned)
    batcher: WebhookBatcher = app.state.webhooks
    blocker = asyncio.Event()
    original_apply = batcher._apply

    async def held(batch: Any) -> None:
        await blocker.wait()  # let every delivery queue up, so they form one batch
        await original_apply(batch)

    monkeypatch.setattr(batcher, "_apply", held)
    url = f"/api/v1/webhooks/evolution/{sid}"
    bodies = [upsert(n) for n in range(5)]
    bodies.insert(2, upsert(99).replace(b"mensagem 99", b"POISON"))
    # A real server answers 500 rather than raising into the client.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://zapsync.test") as client:
        posts = [asyncio.ensure_future(client.post(url, content=b, headers=SECRET)) for b in bodies]
        await asyncio.sleep(0.2)
        blocker.set()
        answers = await asyncio.gather(*posts)

    assert [a.status_code for a in answers] == [200, 200, 500, 200, 200, 200]
    assert await message_count(ctx, sid) == 5


async def test_after_a_busy_batch_the_next_waits_for_the_rest_of_the_wave(
    app: FastAPI,
    ctx: AppContext,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gateways send in waves: a wave still arriving joins one batch (one transaction), while a
    lone delivery is applied at once."""
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    batcher: WebhookBatcher = app.state.webhooks
    batcher.linger = 2.0  # wide, so a loaded machine is not mistaken for a wait
    sizes: list[int] = []
    original_apply = batcher._apply
    # Held after a batch is applied (its requests answered), so what the test sends next is
    # queued behind it: the waves are made by the test, not by how fast the machine is.
    resume = asyncio.Event()
    resume.set()

    async def counted(batch: Any) -> None:
        sizes.append(len(batch))
        await original_apply(batch)
        await resume.wait()

    monkeypatch.setattr(batcher, "_apply", counted)
    url = f"/api/v1/webhooks/evolution/{sid}"

    async def post(n: int) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://zapsync.test") as c:
            return (await c.post(url, content=upsert(n, chat=n % 3), headers=SECRET)).status_code

    def lingering(b: WebhookBatcher) -> bool:
        queue = b.lane_of(sid).queue
        taken = getattr(queue, "_unfinished_tasks", 0) - queue.qsize()
        return taken == 1 and len(sizes) == 2

    async def queue_of(b: WebhookBatcher) -> WebhookBatcher:
        return b

    resume.clear()
    started = time.perf_counter()
    assert await post(0) == 200  # alone: no wait
    assert time.perf_counter() - started < batcher.linger
    # A wave: four together (one batch), then the next one opens while two more are coming.
    four = asyncio.gather(*(post(n) for n in range(1, 5)))
    await eventually(lambda: queue_of(batcher), lambda b: b.lane_of(sid).queue.qsize() == 4)
    resume.set()
    assert await four == [200] * 4
    five = asyncio.ensure_future(post(5))
    await eventually(lambda: queue_of(batcher), lingering)  # 5 taken, not applied yet
    wave = [five, post(6), post(7)]
    assert await asyncio.gather(*wave) == [200] * 3
    assert sizes[0] == 1
    assert sizes[-1] == 3, sizes  # 6 and 7 arrived while 5's batch lingered
    assert await message_count(ctx, sid) == 8


async def test_a_held_batch_of_one_session_does_not_hold_another_session(
    app: FastAPI,
    ctx: AppContext,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL each session's deliveries take a lane of their own: a session waiting
    on its batch (a slow statement, a lock) does not make another session's gateway wait."""
    if ctx.settings.is_sqlite:
        pytest.skip("SQLite has one writer: one lane")
    batcher: WebhookBatcher = app.state.webhooks
    slow = await insert_session(ctx, tenant, "evolution", status="connected")
    other = await insert_session(ctx, tenant, "evolution", status="connected")
    while batcher.lane_of(other) is batcher.lane_of(slow):
        other = await insert_session(ctx, tenant, "evolution", status="connected")
    release = asyncio.Event()
    original_apply = batcher._apply

    async def held(batch: Any) -> None:
        if any(w.delivery.session_id == slow for w in batch):
            await release.wait()
        await original_apply(batch)

    monkeypatch.setattr(batcher, "_apply", held)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://zapsync.test") as client:
        stuck = asyncio.ensure_future(
            client.post(f"/api/v1/webhooks/evolution/{slow}", content=upsert(1), headers=SECRET)
        )
        answer = await client.post(
            f"/api/v1/webhooks/evolution/{other}", content=upsert(2), headers=SECRET
        )
        assert answer.status_code == 200
        assert await message_count(ctx, other) == 1
        assert not stuck.done()
        release.set()
        assert (await stuck).status_code == 200
    assert await message_count(ctx, slow) == 1


async def test_sessions_applied_side_by_side_share_their_contacts(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    """Four numbers of one team hear from the same five customers at once: whatever lanes
    apply them side by side, each customer is one contact and every message is stored."""
    sids = [await insert_session(ctx, tenant, "evolution", status="connected") for _ in range(4)]
    posts = [
        client.post(
            f"/api/v1/webhooks/evolution/{sid}",
            content=upsert(n + 1000 * k, chat=n % 5),
            headers=SECRET,
        )
        for n in range(30)
        for k, sid in enumerate(sids)
    ]
    answers = await asyncio.gather(*posts)
    assert [a.status_code for a in answers] == [200] * len(posts)
    for sid in sids:
        assert await message_count(ctx, sid) == 30
    async with ctx.db.session() as db:
        phones = (
            await db.scalars(
                select(Contact.phone_e164).where(Contact.organization_id == tenant.organization_id)
            )
        ).all()
    assert sorted(p or "" for p in phones) == sorted(f"+5511987{n:06d}" for n in range(5))

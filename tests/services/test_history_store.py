"""The import's bulk write (`store_history`) against the live path's `store_messages`."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests.conftest import Tenant
from tests.services.helpers import sandbox_session
from zapsync.domain.gateway import Ack, Message, MessageType
from zapsync.runtime.context import AppContext
from zapsync.services.ingest.messages import StoreResult, apply_ack, store_history, store_messages
from zapsync.store.models import Conversation, PendingAck
from zapsync.store.models import Message as MessageRow

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
ACKS = (Ack.PENDING, Ack.SENT, Ack.DELIVERED, Ack.READ, Ack.PLAYED)


def msg(pid: str, chat: str, *, minutes: int = 0, ack: Ack | None = None) -> Message:
    return Message(
        provider_message_id=pid,
        chat_jid=chat,
        from_me=minutes % 3 == 0,
        type=MessageType.TEXT,
        timestamp=T0 + timedelta(minutes=minutes),
        body=f"body of {pid}",
        sender_name=f"Person of {chat[:13]}",
        ack=ack,
    )


async def history(
    ctx: AppContext, tenant: Tenant, session_id: int, *pages: list[Message]
) -> list[StoreResult]:
    async with ctx.db.session() as db:
        results = await store_history(
            db,
            ctx.bus,
            organization_id=tenant.organization_id,
            session_id=session_id,
            pages=list(pages),
        )
        await db.commit()
        return results


async def live_false(
    ctx: AppContext, tenant: Tenant, session_id: int, page: list[Message]
) -> StoreResult:
    async with ctx.db.session() as db:
        result = await store_messages(
            db,
            ctx.bus,
            organization_id=tenant.organization_id,
            session_id=session_id,
            messages=page,
            live=False,
        )
        await db.commit()
        return result


async def park_ack(ctx: AppContext, session_id: int, pid: str, ack: Ack) -> None:
    async with ctx.db.session() as db:
        await apply_ack(db, ctx.bus, session_id=session_id, provider_message_id=pid, ack=ack)
        await db.commit()


def counts(result: StoreResult) -> tuple[int, int, int, int, int]:
    created = len(result.conversations_created)
    return (result.created, result.updated, result.skipped, result.ignored, created)


async def stored_state(ctx: AppContext, session_id: int) -> dict[str, Any]:
    """What a session's rows say, without ids and write times."""
    async with ctx.db.session() as db:
        keys = dict(
            (
                await db.execute(
                    select(Conversation.id, Conversation.chat_key).where(
                        Conversation.session_id == session_id
                    )
                )
            ).all()
        )
        messages = (
            await db.execute(
                select(
                    MessageRow.provider_message_id,
                    MessageRow.conversation_id,
                    MessageRow.ack,
                    MessageRow.body,
                    MessageRow.direction,
                    MessageRow.sent_at,
                ).where(MessageRow.session_id == session_id)
            )
        ).all()
        conversations = (
            await db.execute(
                select(
                    Conversation.chat_key,
                    Conversation.name,
                    Conversation.last_message_at,
                    Conversation.last_message_preview,
                    Conversation.unread_count,
                    Conversation.status,
                ).where(Conversation.session_id == session_id)
            )
        ).all()
        pending = (
            await db.execute(
                select(PendingAck.provider_message_id, PendingAck.ack).where(
                    PendingAck.session_id == session_id
                )
            )
        ).all()
    return {
        "messages": sorted(
            (m.provider_message_id, keys[m.conversation_id], *m[2:]) for m in messages
        ),
        "conversations": sorted(tuple(c) for c in conversations),
        "pending": sorted(tuple(p) for p in pending),
    }


async def test_history_has_the_outcome_of_store_messages_page_by_page(
    ctx: AppContext, tenant: Tenant
) -> None:
    """Shuffled repeats, later and earlier acks, acks parked before their messages, repeats
    inside a page and the Status pseudo-chat: the same counts after every page, the same rows
    at the end."""
    live = await sandbox_session(ctx, tenant, "live")
    imported = await sandbox_session(ctx, tenant, "import")
    rng = random.Random(5)
    chats = [f"55119{n:08d}@s.whatsapp.net" for n in range(5)] + ["status@broadcast"]
    messages = [msg(f"H{n:03d}", chats[n % 6], minutes=n) for n in range(90)]
    for step in range(40):
        if step % 5 == 4:  # an ack, maybe before its message
            pid = rng.choice(messages).provider_message_id
            ack = rng.choice(ACKS)
            for session_id in (live, imported):
                await park_ack(ctx, session_id, pid, ack)
            continue
        page = [
            replace(m, ack=rng.choice((None, *ACKS)))
            for m in rng.sample(messages, rng.randint(1, 30))
        ]
        page += rng.sample(page, rng.randint(0, 3))  # the same message twice in one page
        expected = await live_false(ctx, tenant, live, page)
        (result,) = await history(ctx, tenant, imported, page)
        assert counts(result) == counts(expected), f"step {step}"
        assert result.message_ids == []

    assert await stored_state(ctx, imported) == await stored_state(ctx, live)


async def test_history_counts_each_page_apart(ctx: AppContext, tenant: Tenant) -> None:
    session_id = await sandbox_session(ctx, tenant)
    ana, bia = "5511911110000@s.whatsapp.net", "5511922220000@s.whatsapp.net"
    first = [msg("A1", ana, minutes=1), msg("A2", ana, minutes=2), msg("A3", ana, minutes=3)]
    second = [msg("B1", bia, minutes=4), msg("B2", bia, minutes=5), msg("A1", ana, minutes=1)]
    second.append(msg("S1", "status@broadcast"))

    one, two = await history(ctx, tenant, session_id, first, second)

    assert counts(one) == (3, 0, 0, 0, 1)
    # A1 again: skipped here; the Status chat: ignored. Both conversations are new to it.
    assert counts(two) == (2, 0, 1, 1, 2)
    assert one.conversations_created < two.conversations_created

    # Again, with a later ack on A2 and an earlier one on B1, and a new B3 whose ack came
    # first: A2 moves, B1 stays, B3 arrives with its parked ack.
    await park_ack(ctx, session_id, "B3", Ack.PLAYED)
    b3 = msg("B3", bia, minutes=7)
    one, two = await history(
        ctx,
        tenant,
        session_id,
        [replace(first[1], ack=Ack.READ)],
        [replace(second[0], ack=Ack.PENDING), b3],
    )
    assert counts(one) == (0, 1, 0, 0, 0)
    assert counts(two) == (1, 0, 1, 0, 0)
    async with ctx.db.session() as db:
        acks = dict(
            (await db.execute(select(MessageRow.provider_message_id, MessageRow.ack))).all()
        )
        assert (acks["A2"], acks["B1"], acks["B3"]) == ("read", "delivered", "played")
        assert await db.scalar(select(PendingAck.provider_message_id)) is None
        rows = (await db.execute(select(Conversation.chat_jid, Conversation.last_message_at))).all()
        assert {jid: when for jid, when in rows} == {
            ana: T0 + timedelta(minutes=3),
            bia: T0 + timedelta(minutes=7),
        }

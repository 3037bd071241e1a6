"""Storing gateway events: repeats, any order, identities that merge, every message type."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.services.helpers import row_counts, sandbox_session
from zapsync.bus.events import Event
from zapsync.domain.gateway import (
    ACK_RANK,
    Ack,
    ContactSeen,
    Message,
    MessageAcked,
    MessageReceived,
    MessageType,
    WebhookEvent,
)
from zapsync.runtime.context import AppContext
from zapsync.services.ingest.messages import (
    StoreResult,
    apply_ack,
    apply_delete,
    apply_edit,
    link_identity,
    store_messages,
)
from zapsync.store.models import Contact, Conversation, PendingAck
from zapsync.store.models import Message as MessageRow

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def msg(
    pid: str,
    chat: str,
    *,
    minutes: int = 0,
    from_me: bool = False,
    type: MessageType = MessageType.TEXT,
    body: str | None = "oi",
    **extra: object,
) -> Message:
    return Message(
        provider_message_id=pid,
        chat_jid=chat,
        from_me=from_me,
        type=type,
        timestamp=T0 + timedelta(minutes=minutes),
        body=body,
        **extra,  # type: ignore[arg-type]
    )


def collect_events(ctx: AppContext) -> list[Event]:
    seen: list[Event] = []

    async def keep(event: Event) -> None:
        seen.append(event)

    ctx.bus.subscribe(keep)
    return seen


async def store(
    ctx: AppContext, tenant: Tenant, session_id: int, *messages: Message, live: bool = True
) -> StoreResult:
    async with ctx.db.session() as db:
        result = await store_messages(
            db,
            ctx.bus,
            organization_id=tenant.organization_id,
            session_id=session_id,
            messages=list(messages),
            live=live,
        )
        await db.commit()
        return result


async def deliver(ctx: AppContext, tenant: Tenant, session_id: int, event: WebhookEvent) -> None:
    """One webhook delivery, in its own transaction, as the receiver applies it."""
    async with ctx.db.session() as db:
        if isinstance(event, MessageReceived):
            await store_messages(
                db,
                ctx.bus,
                organization_id=tenant.organization_id,
                session_id=session_id,
                messages=[event.message],
                live=True,
            )
        elif isinstance(event, MessageAcked):
            await apply_ack(
                db,
                ctx.bus,
                session_id=session_id,
                provider_message_id=event.provider_message_id,
                ack=event.ack,
            )
        elif isinstance(event, ContactSeen):
            await link_identity(
                db,
                organization_id=tenant.organization_id,
                jid=event.jid,
                alt_jid=event.alt_jid,
                name=event.name,
                bus=ctx.bus,
            )
        await db.commit()


async def test_repeated_shuffled_deliveries_with_early_acks_end_as_one_clean_delivery(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    rng = random.Random(7)
    chats = [f"55119{n:08d}@s.whatsapp.net" for n in range(6)]
    messages: list[Message] = []
    final_ack: dict[str, Ack] = {}
    events: list[WebhookEvent] = []
    for n in range(60):
        from_me = n % 3 == 0
        m = msg(
            f"MSG{n:04d}",
            chats[n % 6],
            minutes=n,
            from_me=from_me,
            body=f"message {n}",
            ack=Ack.SENT if from_me else Ack.DELIVERED,
        )
        messages.append(m)
        last = rng.choice([Ack.DELIVERED, Ack.READ, Ack.PLAYED])
        final_ack[m.provider_message_id] = last
        ladder = [
            a
            for a in (Ack.SENT, Ack.DELIVERED, Ack.READ, Ack.PLAYED)
            if ACK_RANK[a] <= ACK_RANK[last]
        ]
        acks: list[WebhookEvent] = [
            MessageAcked(m.provider_message_id, m.chat_jid, a) for a in ladder
        ]
        events.extend([MessageReceived(m)] * 3 + acks * 3)
    rng.shuffle(events)
    # For a quarter of the messages every ack arrives before the message itself: keep the
    # shuffled slots and reorder who sits in them.
    for n in range(0, 60, 4):
        slots = [i for i, e in enumerate(events) if _pid(e) == f"MSG{n:04d}"]
        own = [events[i] for i in slots]
        ordered = [e for e in own if isinstance(e, MessageAcked)] + [
            e for e in own if isinstance(e, MessageReceived)
        ]
        for slot, moved in zip(slots, ordered, strict=True):
            events[slot] = moved
    # An ack for a message that never comes waits, and does no harm.
    events.append(MessageAcked("NEVER-ARRIVES", chats[0], Ack.READ))
    seen = collect_events(ctx)

    for event in events:
        await deliver(ctx, tenant, session_id, event)

    counts = await row_counts(ctx)
    assert counts["messages"] == 60
    assert counts["conversations"] == 6
    assert counts["contacts"] == 6
    assert counts["pending_acks"] == 1
    async with ctx.db.session() as db:
        rows = (await db.scalars(select(MessageRow))).all()
        assert {r.provider_message_id: r.ack for r in rows} == {
            pid: ack.value for pid, ack in final_ack.items()
        }
        pending = await db.scalar(select(PendingAck))
        assert pending is not None and pending.provider_message_id == "NEVER-ARRIVES"
        for conversation in (await db.scalars(select(Conversation))).all():
            mine = [m for m in messages if m.chat_jid == conversation.chat_jid]
            newest = max(mine, key=lambda m: m.timestamp)
            assert conversation.last_message_at == newest.timestamp
            assert conversation.last_message_preview == newest.body
            assert conversation.unread_count == sum(1 for m in mine if not m.from_me)
    await ctx.bus.drain()
    new = [e for e in seen if e.name == "new_message"]
    assert sorted(e.data["provider_message_id"] for e in new) == sorted(final_ack)
    assert all(e.conversation_id == e.data["conversation_id"] for e in new)


def _pid(event: WebhookEvent) -> str | None:
    if isinstance(event, MessageReceived):
        return event.message.provider_message_id
    if isinstance(event, MessageAcked):
        return event.provider_message_id
    return None


async def test_one_person_under_three_addresses_is_one_contact_with_one_conversation(
    ctx: AppContext, tenant: Tenant
) -> None:
    first = await sandbox_session(ctx, tenant, "Loja")
    second = await sandbox_session(ctx, tenant, "Suporte")
    lid = "123456789012345@lid"

    await store(ctx, tenant, first, msg("A1", "5511987654321@s.whatsapp.net", minutes=1))
    await store(ctx, tenant, first, msg("A2", "551187654321@s.whatsapp.net", minutes=2))
    # WhatsApp hides the number: the lid alone is a person of its own for now.
    await store(ctx, tenant, first, msg("A3", lid, minutes=3, sender_name="Maria"))
    await store(ctx, tenant, second, msg("B1", lid, minutes=4))
    assert (await row_counts(ctx))["contacts"] == 2

    # The gateway gives the pair: the two records become one person.
    await store(
        ctx,
        tenant,
        first,
        msg("A4", lid, minutes=5, chat_alt_jid="551187654321@s.whatsapp.net"),
    )
    # In the second session the link arrives as a contact event.
    await deliver(ctx, tenant, second, ContactSeen(lid, "Maria", "5511987654321@c.us"))
    await store(ctx, tenant, first, msg("A5", lid, minutes=6, from_me=True, body="bom dia"))
    await store(ctx, tenant, second, msg("B2", "5511987654321@s.whatsapp.net", minutes=7))

    async with ctx.db.session() as db:
        contacts = (await db.scalars(select(Contact))).all()
        assert len(contacts) == 1
        person = contacts[0]
        assert person.phone_e164 == "+5511987654321"
        assert person.lid == lid
        assert person.name == "Maria"
        conversations = (
            await db.scalars(select(Conversation).order_by(Conversation.session_id))
        ).all()
        assert [c.session_id for c in conversations] == [first, second]
        for conversation in conversations:
            assert conversation.contact_id == person.id
            assert conversation.chat_key == "+5511987654321"
            assert not conversation.chat_jid.endswith("@lid")  # replies go to the phone
        by_conversation = dict(
            (
                await db.execute(
                    select(MessageRow.conversation_id, func.count()).group_by(
                        MessageRow.conversation_id
                    )
                )
            ).all()
        )
        assert by_conversation == {conversations[0].id: 5, conversations[1].id: 2}
        assert conversations[0].unread_count == 4
        assert conversations[0].last_message_preview == "bom dia"
        assert conversations[1].unread_count == 2


async def test_every_message_type_is_stored_and_unknown_types_are_kept_as_other(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    chat = "5521998765432@s.whatsapp.net"
    await store(
        ctx,
        tenant,
        session_id,
        msg("T1", chat, minutes=1, body="olá"),
        msg(
            "T2",
            chat,
            minutes=2,
            type=MessageType.IMAGE,
            body=None,
            caption="a foto",
            media_url="https://m.example/1.jpg",
            mime_type="image/jpeg",
        ),
        msg(
            "T3",
            chat,
            minutes=3,
            type=MessageType.AUDIO,
            body=None,
            is_voice_note=True,
            mime_type="audio/ogg; codecs=opus",
        ),
        msg(
            "T4",
            chat,
            minutes=4,
            from_me=True,
            type=MessageType.DOCUMENT,
            body=None,
            file_name="boleto.pdf",
            mime_type="application/pdf",
        ),
        msg("T5", chat, minutes=5, type=MessageType.REACTION, body="👍", reaction_to="T4"),
        msg("T6", chat, minutes=6, type=MessageType.LOCATION, body="-23.5,-46.6"),
        msg(
            "T7",
            chat,
            minutes=7,
            type=MessageType.OTHER,
            body=None,
            raw_type="pollCreationMessageV3",
        ),
    )

    async with ctx.db.session() as db:
        rows = {
            r.provider_message_id: r
            for r in (await db.scalars(select(MessageRow).order_by(MessageRow.sent_at))).all()
        }
        conversation = await db.scalar(select(Conversation))
    assert list(rows) == ["T1", "T2", "T3", "T4", "T5", "T6", "T7"]
    assert rows["T1"].type == "text" and rows["T1"].direction == "in"
    assert rows["T1"].sender == "client"
    assert (rows["T2"].type, rows["T2"].caption, rows["T2"].media_url, rows["T2"].mime_type) == (
        "image",
        "a foto",
        "https://m.example/1.jpg",
        "image/jpeg",
    )
    assert rows["T3"].type == "audio" and rows["T3"].is_voice_note
    assert (rows["T4"].direction, rows["T4"].sender, rows["T4"].file_name) == (
        "out",
        "agent",
        "boleto.pdf",
    )
    assert rows["T5"].type == "reaction" and rows["T5"].reaction_to == "T4"
    assert rows["T6"].type == "location"
    assert (rows["T7"].type, rows["T7"].raw_type) == ("other", "pollCreationMessageV3")
    assert conversation is not None
    assert conversation.last_message_preview == "[pollCreationMessageV3]"
    # Reactions and our own messages are not unread.
    assert conversation.unread_count == 5


async def test_groups_have_no_contact_and_the_status_chat_is_ignored(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    group = "120363012345678901@g.us"
    result = await store(
        ctx,
        tenant,
        session_id,
        msg("G1", group, sender_jid="5511911112222@s.whatsapp.net"),
        msg("S1", "status@broadcast", sender_jid="5511911112222@s.whatsapp.net"),
    )
    assert (result.created, result.ignored) == (1, 1)
    async with ctx.db.session() as db:
        conversation = await db.scalar(select(Conversation))
        stored = await db.scalar(select(MessageRow))
    assert conversation is not None and conversation.is_group
    assert conversation.contact_id is None and conversation.chat_jid == group
    assert stored is not None and stored.sender_jid == "5511911112222@s.whatsapp.net"
    assert (await row_counts(ctx))["contacts"] == 0


async def test_history_moves_the_last_message_only_forward_and_is_not_news(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    chat = "5511955554444@s.whatsapp.net"
    seen = collect_events(ctx)
    await store(ctx, tenant, session_id, msg("N1", chat, minutes=50, body="novo"))
    result = await store(
        ctx, tenant, session_id, msg("O1", chat, minutes=1, body="antigo"), live=False
    )
    assert result.created == 1
    async with ctx.db.session() as db:
        conversation = await db.scalar(select(Conversation))
    assert conversation is not None
    assert conversation.last_message_preview == "novo"
    assert conversation.last_message_at == T0 + timedelta(minutes=50)
    assert conversation.unread_count == 1
    await ctx.bus.drain()
    assert [e.data["provider_message_id"] for e in seen if e.name == "new_message"] == ["N1"]


async def test_edits_and_deletions_apply_once_and_ignore_unknown_messages(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    await store(ctx, tenant, session_id, msg("E1", "5511933332222@s.whatsapp.net", body="oi"))
    seen = collect_events(ctx)

    async with ctx.db.session() as db:
        bus = ctx.bus
        assert not await apply_edit(
            db, bus, session_id=session_id, provider_message_id="NOPE", body="x"
        )
        assert not await apply_delete(db, bus, session_id=session_id, provider_message_id="NOPE")
        assert await apply_edit(
            db, bus, session_id=session_id, provider_message_id="E1", body="olá!"
        )
        assert not await apply_edit(
            db, bus, session_id=session_id, provider_message_id="E1", body="olá!"
        )
        assert await apply_delete(db, bus, session_id=session_id, provider_message_id="E1")
        assert not await apply_delete(db, bus, session_id=session_id, provider_message_id="E1")
        assert not await apply_ack(
            db, bus, session_id=session_id, provider_message_id="E1", ack=Ack.SENT
        )
        await db.commit()

    async with ctx.db.session() as db:
        row = await db.scalar(select(MessageRow))
        conversation = await db.scalar(select(Conversation))
    assert row is not None
    assert row.body == "olá!" and row.edited_at is not None and row.deleted_at is not None
    assert conversation is not None and conversation.last_message_preview == "olá!"
    assert (await row_counts(ctx))["messages"] == 1
    await ctx.bus.drain()
    assert [e.name for e in seen] == ["message_updated", "message_updated"]
    assert seen[-1].data["deleted_at"] is not None


async def test_an_ack_never_goes_backward(ctx: AppContext, tenant: Tenant) -> None:
    session_id = await sandbox_session(ctx, tenant)
    chat = "5511922221111@s.whatsapp.net"
    await store(ctx, tenant, session_id, msg("K1", chat, from_me=True, ack=Ack.SENT))
    for ack in (Ack.READ, Ack.DELIVERED, Ack.SENT):
        await deliver(ctx, tenant, session_id, MessageAcked("K1", chat, ack))
    # A repeat of the message itself, with the ack it had when first sent, changes nothing.
    first = msg("K1", chat, from_me=True, ack=Ack.SENT)
    result = await store(ctx, tenant, session_id, first)
    assert (result.created, result.updated, result.skipped) == (0, 0, 1)
    # A repeat carrying a later ack moves it forward.
    result = await store(ctx, tenant, session_id, replace(first, ack=Ack.PLAYED))
    assert (result.created, result.updated, result.skipped) == (0, 1, 0)
    async with ctx.db.session() as db:
        assert await db.scalar(select(MessageRow.ack)) == "played"

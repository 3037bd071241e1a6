"""Gateways deliver at least once and in any order. For each gateway dialect, the webhooks the
sandbox really posts for two dozen messages (from four customers, and answers to them) and
their acks are replayed to zapsync over HTTP three times each, shuffled, with every ack of some
messages ahead of the message, in concurrent groups. Proves that zapsync keeps each message
once with its latest ack, leaves no ack parked, keeps one conversation per customer, and counts
each incoming message once as unread. (MegaAPI posts no ack webhooks: there each message keeps
the ack of its own delivery.)"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Tenant
from tests.support.gateways import SandboxGateway, control, running_sandbox
from tests.support.receiver import Delivery, Receiver
from tests.support.sessions import insert_session
from zapsync.domain.gateway import (
    ACK_RANK,
    Ack,
    ChatSeen,
    ContactSeen,
    MessageAcked,
    MessageReceived,
    WebhookEvent,
)
from zapsync.providers.base import Gateway, WebhookTarget
from zapsync.runtime.context import AppContext
from zapsync.store.models import Conversation, Message, PendingAck

SECRET = "replay-hook-secret"
SEED = 20240611
GROUP = 8  # deliveries posted together, so the server's batches apply several at once
COPIES = 3
EARLY_ACKS = 4  # messages whose every ack is replayed before the message itself
CUSTOMERS = ("5511988887777", "5511977776666", "5521998765432", "5531987654321")
INBOUND = 20
# The sandbox world's ack numbers, as the dialects that report acks mean them.
WORLD_ACK = {1: Ack.SENT, 2: Ack.DELIVERED, 3: Ack.READ, 4: Ack.PLAYED}
INBOUND_FINALS = (3, 2, 4, 3, 3)
OUTBOUND_FINALS = (3, 2, 3, 2)
# MegaAPI documents no ack webhook and its sandbox sends none: messages keep their first ack.
REPORTS_ACKS = {"evolution": True, "waha": True, "megaapi": False}
KEPT = (MessageReceived, MessageAcked, ContactSeen, ChatSeen)


@dataclass
class Planned:
    """One message the test makes in the sandbox, and the acks it then gives it."""

    step: int
    phone: str
    from_me: bool
    world_id: str
    provider_id: str  # as the dialect spells it in its webhooks
    final: int  # the world's last ack for it

    @property
    def jid(self) -> str:
        return f"{self.phone}@s.whatsapp.net"

    @property
    def acks(self) -> list[int]:
        """Delivered first, then on to the final ack: at least one ack for every message."""
        return list(range(2, self.final + 1))

    def expected_ack(self, dialect: str) -> Ack:
        if REPORTS_ACKS[dialect]:
            return WORLD_ACK[self.final]
        return Ack.SENT if self.from_me else Ack.DELIVERED


@dataclass
class Webhook:
    """One captured webhook body with what zapsync's adapter reads in it."""

    body: bytes
    events: list[WebhookEvent]
    order: tuple[int, int, int] = (0, 0, 0)
    received: set[str] = field(default_factory=set)  # provider ids of messages it carries
    acked: set[str] = field(default_factory=set)  # provider ids of messages it acks


def provider_id(dialect: str, phone: str, from_me: bool, world_id: str) -> str:
    if dialect == "waha":  # whatsapp-web.js serialized ids
        return f"{'true' if from_me else 'false'}_{phone}@c.us_{world_id}"
    return world_id


@pytest.fixture(params=["evolution", "waha", "megaapi"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxGateway]:
    with running_sandbox(request.param) as gateway:
        yield gateway


async def make_traffic(
    sandbox: SandboxGateway, gateway: Gateway, instance: str, http: httpx.AsyncClient
) -> list[Planned]:
    """Customers write in, the business answers each once, then the acks come."""
    dialect = sandbox.dialect
    plan: list[Planned] = []
    start = int(time.time()) - 3600
    for n in range(INBOUND):
        phone = CUSTOMERS[n % len(CUSTOMERS)]
        added = await control(
            http,
            f"/instances/{instance}/messages",
            {
                "chat_jid": f"{phone}@s.whatsapp.net",
                "body": f"mensagem {n} do cliente",
                "push_name": f"Cliente {phone[-4:]}",
                "timestamp": start + n * 30,
            },
        )
        world_id = str(added["id"])
        plan.append(
            Planned(
                n,
                phone,
                False,
                world_id,
                provider_id(dialect, phone, False, world_id),
                INBOUND_FINALS[n % len(INBOUND_FINALS)],
            )
        )
    for k, phone in enumerate(CUSTOMERS):
        sent = await gateway.send_text(f"{phone}@s.whatsapp.net", f"resposta {k} da loja")
        world_id = sent.provider_message_id.rsplit("_", 1)[-1]
        planned = Planned(
            len(plan), phone, True, world_id, sent.provider_message_id, OUTBOUND_FINALS[k]
        )
        assert planned.provider_id == provider_id(dialect, phone, True, world_id)
        plan.append(planned)
    for planned in plan:
        for ack in planned.acks:
            await control(
                http,
                f"/instances/{instance}/acks",
                {"chat_jid": planned.jid, "message_id": planned.world_id, "ack": ack},
            )
    return plan


def read(gateway: Gateway, delivery: Delivery) -> Webhook:
    events = gateway.parse_webhook(delivery.body)
    hook = Webhook(delivery.body, events)
    for event in events:
        if isinstance(event, MessageReceived):
            hook.received.add(event.message.provider_message_id)
        elif isinstance(event, MessageAcked):
            hook.acked.add(event.provider_message_id)
    return hook


async def captured(
    receiver: Receiver, gateway: Gateway, plan: list[Planned], dialect: str
) -> list[Webhook]:
    """The message, ack, contact and chat webhooks the sandbox posted for `plan`, once all
    of them arrived, in plan order (arrival order varies; the replay's shuffle must not)."""
    wanted_messages = {p.provider_id for p in plan}
    wanted_acks = {
        (p.provider_id, WORLD_ACK[a]) for p in plan for a in p.acks if REPORTS_ACKS[dialect]
    }
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        hooks = [read(gateway, d) for d in receiver.received()]
        got_messages = {pmid for h in hooks for pmid in h.received}
        got_acks = {
            (e.provider_message_id, e.ack)
            for h in hooks
            for e in h.events
            if isinstance(e, MessageAcked)
        }
        if wanted_messages <= got_messages and wanted_acks <= got_acks:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"missing webhooks: messages {wanted_messages - got_messages}, "
                f"acks {wanted_acks - got_acks}"
            )
        await asyncio.sleep(0.02)
    await receiver.settle(quiet=0.1)  # the contacts and chats posted beside them
    hooks = [read(gateway, d) for d in receiver.received()]
    hooks = [h for h in hooks if h.events and all(isinstance(e, KEPT) for e in h.events)]

    step_of = {p.provider_id: p.step for p in plan}
    first_in_chat: dict[str, int] = {}
    for p in plan:
        first_in_chat.setdefault(p.jid, p.step)
    for hook in hooks:
        event = hook.events[0]
        if isinstance(event, MessageReceived):
            hook.order = (step_of[event.message.provider_message_id], 1, 0)
        elif isinstance(event, MessageAcked):
            hook.order = (step_of[event.provider_message_id], 2, ACK_RANK[event.ack])
        elif isinstance(event, ChatSeen):
            hook.order = (first_in_chat.get(event.chat.jid, len(plan)), 0, 0)
        elif isinstance(event, ContactSeen):
            hook.order = (first_in_chat.get(event.jid, len(plan)), 0, 1)
    hooks.sort(key=lambda h: h.order)

    # What zapsync's adapter reads in them is what the sandbox was told to do.
    assert {pmid for h in hooks for pmid in h.received} == wanted_messages
    if REPORTS_ACKS[dialect]:
        acks = [
            (e.provider_message_id, e.ack)
            for h in hooks
            for e in h.events
            if isinstance(e, MessageAcked)
        ]
        assert sorted(acks) == sorted((p.provider_id, WORLD_ACK[a]) for p in plan for a in p.acks)
    else:
        assert not any(h.acked for h in hooks)
    return hooks


def replay_order(hooks: list[Webhook], rng: random.Random) -> list[Webhook]:
    """Every webhook `COPIES` times, shuffled; then every ack of a few messages moved ahead
    of the first delivery of its message, into an earlier group when there is one."""
    order = [h for h in hooks for _ in range(COPIES)]
    rng.shuffle(order)
    acked = sorted({pmid for h in hooks for pmid in h.acked})
    early = rng.sample(acked, min(EARLY_ACKS, len(acked)))
    for pmid in early:
        acks = [h for h in order if pmid in h.acked]
        order = [h for h in order if pmid not in h.acked]
        first = min(i for i, h in enumerate(order) if pmid in h.received)
        at = max(first - first % GROUP - len(acks), 0)
        order[at:at] = acks
    for pmid in early:
        first = min(i for i, h in enumerate(order) if pmid in h.received)
        assert all(i < first for i, h in enumerate(order) if pmid in h.acked)
    return order


async def replay(
    client: httpx.AsyncClient, provider: str, sid: int, order: list[Webhook]
) -> list[httpx.Response]:
    url = f"/api/v1/webhooks/{provider}/{sid}"
    headers = {"X-Zapsync-Token": SECRET, "content-type": "application/json"}
    answers: list[httpx.Response] = []
    for start in range(0, len(order), GROUP):
        group = order[start : start + GROUP]
        answers += await asyncio.gather(
            *(client.post(url, content=h.body, headers=headers) for h in group)
        )
    return answers


@dataclass
class Replayed:
    """What zapsync holds after the replay of one dialect's webhooks."""

    dialect: str
    plan: list[Planned]
    posted: int  # webhook requests replayed
    answers: list[httpx.Response]
    stored: list[Any]  # (provider_message_id, ack, direction, chat_jid) per message row
    parked: list[str]  # provider ids left in pending_acks
    unread: dict[str, int]  # by conversation chat_jid


@pytest.fixture
async def replayed(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    sandbox: SandboxGateway,
    receiver: Receiver,
) -> Replayed:
    dialect = sandbox.dialect
    instance = sandbox.new_instance()
    config = sandbox.config(instance)
    gateway = ctx.gateways.build(dialect, config, instance)  # the adapter zapsync uses
    async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=10) as http:
        await gateway.create_instance(WebhookTarget(receiver.url, SECRET))
        await control(http, f"/instances/{instance}/scan", {"phone": "5511900000001"})
        plan = await make_traffic(sandbox, gateway, instance, http)
    hooks = await captured(receiver, gateway, plan, dialect)
    order = replay_order(hooks, random.Random(SEED))
    sid = await insert_session(
        ctx, tenant, dialect, status="connected", config=config, secret=SECRET
    )

    answers = await replay(client, dialect, sid, order)

    async with ctx.db.session() as db:
        stored = (
            await db.execute(
                select(
                    Message.provider_message_id,
                    Message.ack,
                    Message.direction,
                    Conversation.chat_jid,
                )
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.session_id == sid)
            )
        ).all()
        parked = (
            await db.scalars(
                select(PendingAck.provider_message_id).where(PendingAck.session_id == sid)
            )
        ).all()
        conversations = (
            await db.execute(
                select(Conversation.chat_jid, Conversation.unread_count).where(
                    Conversation.session_id == sid
                )
            )
        ).all()
    return Replayed(
        dialect,
        plan,
        COPIES * len(hooks),
        answers,
        list(stored),
        list(parked),
        {c.chat_jid: c.unread_count for c in conversations},
    )


async def test_webhooks_delivered_three_times_shuffled_leave_each_message_once_with_its_latest_ack(
    replayed: Replayed,
) -> None:
    plan, dialect = replayed.plan, replayed.dialect
    assert len(replayed.answers) == replayed.posted
    refused = [(a.status_code, a.text) for a in replayed.answers if a.status_code not in (200, 202)]
    assert refused == []
    assert len(replayed.stored) == len(plan)  # each message once
    assert {row.provider_message_id: row.ack for row in replayed.stored} == {
        p.provider_id: p.expected_ack(dialect).value for p in plan
    }
    assert {row.provider_message_id: (row.direction, row.chat_jid) for row in replayed.stored} == {
        p.provider_id: ("out" if p.from_me else "in", p.jid) for p in plan
    }
    assert replayed.parked == []  # every ack that came early found its message
    assert sorted(replayed.unread) == sorted(f"{phone}@s.whatsapp.net" for phone in CUSTOMERS)


async def test_webhooks_delivered_three_times_shuffled_count_each_incoming_message_once_as_unread(
    replayed: Replayed,
) -> None:
    assert replayed.unread == {
        f"{phone}@s.whatsapp.net": sum(
            1 for p in replayed.plan if p.phone == phone and not p.from_me
        )
        for phone in CUSTOMERS
    }

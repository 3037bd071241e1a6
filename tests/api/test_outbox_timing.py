"""When the outbox retries: a retry falls due on time even while the outbox is busy with
another session's slow send, and retries are spread by jitter within their bounds."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Tenant
from tests.support.gateways import SandboxGateway, paired_conversation, running_sandbox
from tests.support.inbox import eventually
from zapsync.domain.backoff import MAX_DELAY_SECONDS, backoff, nominal_delay
from zapsync.runtime.context import AppContext
from zapsync.services.outbox.delivery import retry_delay
from zapsync.services.sessions.status_sync import heal_delay
from zapsync.settings import Settings
from zapsync.store.models import Message, OutboxItem

BASE_DELAY = 0.3
HEAL_DELAY = 30.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "outbox_base_delay": BASE_DELAY,
            "outbox_max_attempts": 4,
            "heal_base_delay_seconds": HEAL_DELAY,
        }
    )


@pytest.fixture
def two_gateways() -> Iterator[tuple[SandboxGateway, SandboxGateway]]:
    with running_sandbox("evolution") as down, running_sandbox("evolution") as slow:
        yield down, slow


async def item_of(ctx: AppContext, conversation_id: int) -> tuple[int, str | None]:
    async with ctx.db.session() as db:
        row = (
            await db.execute(
                select(OutboxItem.attempts, OutboxItem.last_error)
                .join(Message, Message.id == OutboxItem.message_id)
                .where(Message.conversation_id == conversation_id)
            )
        ).one()
    return int(row.attempts), row.last_error


async def test_a_retry_is_on_time_while_another_sessions_send_is_slow(
    client: httpx.AsyncClient,
    tenant: Tenant,
    ctx: AppContext,
    two_gateways: tuple[SandboxGateway, SandboxGateway],
) -> None:
    down, slow = two_gateways
    failing, down_name = await paired_conversation(client, tenant, ctx, down)
    working, _ = await paired_conversation(client, tenant, ctx, slow)
    down.drop(down_name)  # sends answer 500 "Connection Closed" at once
    slow.fault("none", latency_ms=1500)  # answers, but takes its time

    async def send(conversation_id: int) -> None:
        resp = await client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            headers=tenant.headers,
            json={"type": "text", "content": "oi"},
        )
        assert resp.status_code == 202, resp.text

    await asyncio.gather(send(failing), send(working))  # queued in the same second
    await eventually(lambda: item_of(ctx, failing), lambda item: item[1] is not None, 10)
    failed_at = time.monotonic()
    await eventually(lambda: item_of(ctx, failing), lambda item: item[0] >= 2, 10)
    # Due after at most BASE_DELAY; the slow send holds the pass for 1.5 s at most.
    assert time.monotonic() - failed_at < 5


def test_backoff_stays_within_half_and_all_of_the_nominal_delay() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        nominal = nominal_delay(2.0, attempt)
        draws = [backoff(2.0, attempt, rng=rng).total_seconds() for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in draws)
        assert len(set(draws)) > 100, "retries of many sessions must not line up"
    assert nominal_delay(2.0, 1) == 2.0 and nominal_delay(2.0, 4) == 16.0
    assert backoff(30.0, 500).total_seconds() <= MAX_DELAY_SECONDS
    assert backoff(0.0, 3).total_seconds() == 0.0


def test_the_outbox_and_healing_both_wait_with_jitter(ctx: AppContext) -> None:
    outbox = {retry_delay(ctx, 3).total_seconds() for _ in range(50)}
    heal = {heal_delay(ctx, 2).total_seconds() for _ in range(50)}
    assert len(outbox) > 25 and all(BASE_DELAY * 2 <= d <= BASE_DELAY * 4 for d in outbox)
    assert len(heal) > 25 and all(HEAL_DELAY <= d <= HEAL_DELAY * 2 for d in heal)

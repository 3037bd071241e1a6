"""The outbox is a queue by kind: a registered kind's items are served by the running worker as
soon as their transaction commits (woken by whoever queued), not at its next poll."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.conftest import Tenant
from tests.support.inbox import eventually
from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.runtime.outbox_worker import OutboxWorker
from zapsync.services.outbox import kinds
from zapsync.services.outbox.delivery import OutboxReport
from zapsync.services.outbox.kinds import OutboxKind
from zapsync.services.outbox.queue import enqueue
from zapsync.store.models import OutboxItem

KIND = "test.note"


async def deliver_notes(ctx: AppContext) -> OutboxReport:
    report = OutboxReport()
    async with ctx.db.session() as db:
        result = await db.execute(
            update(OutboxItem)
            .where(OutboxItem.kind == KIND, OutboxItem.status == "pending")
            .values(status="done")
        )
        await db.commit()
    report.due = report.delivered = int(getattr(result, "rowcount", 0) or 0)
    return report


async def nothing_waits(ctx: AppContext) -> float | None:
    return None


async def test_an_item_of_a_registered_kind_is_served_once_queued(
    ctx: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kinds.KINDS, KIND, OutboxKind(KIND, deliver_notes, nothing_waits))
    await ctx.bus.drain()

    async with ctx.db.session() as db:
        enqueue(db, kind=KIND, organization_id=tenant.organization_id, payload={"n": 1})
        await db.commit()

    # The poll is 30 s away: only the wake on commit gets it served this soon.
    assert await eventually(lambda: _statuses(ctx), lambda s: s == ["done"], timeout=5) == ["done"]


async def _statuses(ctx: AppContext) -> list[str]:
    async with ctx.db.session() as db:
        return list(await db.scalars(select(OutboxItem.status).where(OutboxItem.kind == KIND)))


async def test_scaled_out_a_wake_defers_a_pass_only_when_the_kind_may_have_work(
    ctx: AppContext, tenant: Tenant
) -> None:
    """Scaled out, each wake-up is a job for a worker: messages stored by a team with no
    Chatwoot integration must not queue a mirror pass (a job and a dozen statements) each."""
    deferred: list[str] = []
    bridged = False

    async def defer(kind: str) -> None:
        deferred.append(kind)

    async def may_have_work(ctx: AppContext) -> bool:
        return bridged

    mirror = OutboxKind(
        KIND, deliver_notes, nothing_waits, wakes_on=frozenset({"new_message"}),
        may_have_work=may_have_work,
    )  # fmt: skip
    worker = OutboxWorker(ctx, kinds={KIND: mirror}, defer=defer)
    worker.start()
    try:
        await eventually(lambda: _idle(worker), lambda idle: idle)  # the start's own wake
        assert deferred == []
        ctx.bus.publish(Event("new_message", tenant.organization_id))
        await ctx.bus.drain()
        await eventually(lambda: _idle(worker), lambda idle: idle)
        assert deferred == []
        bridged = True
        ctx.bus.publish(Event("new_message", tenant.organization_id))
        await ctx.bus.drain()
        assert await eventually(lambda: _deferred(deferred), lambda d: d == [KIND]) == [KIND]
    finally:
        await worker.stop()


async def _idle(worker: OutboxWorker) -> bool:
    return not worker._deferring


async def _deferred(deferred: list[str]) -> list[str]:
    return list(deferred)

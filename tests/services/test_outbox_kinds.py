"""The outbox is a queue by kind: a registered kind's items are served by the running worker as
soon as their transaction commits (woken by whoever queued), not at its next poll."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.conftest import Tenant
from tests.support.inbox import eventually
from zapsync.runtime.context import AppContext
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

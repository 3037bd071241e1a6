"""`qr_updated` is published once its transaction commits, like every other event: a QR
whose webhook batch was rolled back never reaches clients."""

from __future__ import annotations

from tests.conftest import Tenant
from tests.support.sessions import insert_session
from zapsync.bus.events import Event
from zapsync.domain.gateway import QrCode, QrUpdated
from zapsync.runtime.context import AppContext
from zapsync.services.ingest.webhooks import apply_events
from zapsync.store.models import Session


async def test_a_qr_whose_transaction_rolled_back_never_reaches_clients(
    ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "sandbox", status="connecting")
    seen: list[Event] = []

    async def keep(event: Event) -> None:
        seen.append(event)

    ctx.bus.subscribe(keep, names={"qr_updated"})

    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        await apply_events(ctx, db, session, [QrUpdated(QrCode("2@rolled-back"))])
        await db.rollback()  # a later delivery of the batch failed
    await ctx.bus.drain()
    assert seen == []

    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        await apply_events(ctx, db, session, [QrUpdated(QrCode("2@kept"))])
        await ctx.bus.drain()
        assert seen == [], "not before the commit"
        await db.commit()
    await ctx.bus.drain()
    assert [(e.data["session_id"], e.data["code"]) for e in seen] == [(sid, "2@kept")]
